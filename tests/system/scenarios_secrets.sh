# System scenarios for secrets and redaction (issue 13, items 4, 5 and 7): values set from stdin
# and from a file reach the container as a read-only file and a variable, a missing secret fails
# the unit with exit 78, removal is refused while a unit uses a secret, operators are held to
# policy.allowed_secrets (run.sh allows "shared-*"), the values appear in no answer, output,
# journal line, file, revision, audit row or file a non-root user can read, and viewers read
# credential-like env values as <redacted>. Helpers (cli, as, status_of, file_sum, refused_as,
# audit_has, http, code) are in the other scenario files.

SECRETS_DIR=/var/lib/containerctl/secrets

# rand: 16 random hex digits, so that every value grepped for is unique to this run.
rand() { head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
# secret_set NAME VALUE [USER]: `containerctl secret set NAME` with VALUE on stdin (printf '%s').
secret_set() {
    if [[ -n ${3:-} ]]; then
        printf '%s' "$2" | tb_host "$HOST" runuser -u "$3" -- containerctl secret set "$1"
    else
        printf '%s' "$2" | tb_host "$HOST" containerctl secret set "$1"
    fi
}
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
# api_as TOKEN PATH: the body of GET PATH over HTTP with a bearer token (any status).
api_as() { http GET "$2" -H "Authorization: Bearer $1"; }
# sock PATH: GET PATH on the local socket as root.
sock() { tb_host "$HOST" curl -s --unix-socket /run/containerctl/containerctl.sock "http://localhost/api/v1$1" </dev/null; }
# lacks DESCRIPTION HAYSTACK NEEDLE: HAYSTACK does not contain NEEDLE.
lacks() {
    if [[ $2 == *"$3"* ]]; then
        printf 'expected %s not to contain the secret value; it did:\n%s\n' "$1" "$2" >&2
        return 1
    fi
}

# The unit the value scenarios run: it prints digests of what it got, never the values.
secret_unit() {
    unit_write "$1" <<'EOF'
description = "uses secrets"
[container]
image = "ctl-test/busybox"
version = "1"
init = true
user = "1234:1234"
secrets = ["sec-tls"]
env_secrets = { DB_PASSWORD = "sec-db" }
args = ["sh", "-c", 'f=/run/secrets/sec-tls; w=yes; { echo x > $f; } 2>/dev/null || w=no; echo "got file=$(sha256sum < $f | cut -d" " -f1) mode=$(stat -c %a $f) owner=$(stat -c %u:%g $f) env=$(printf %s "$DB_PASSWORD" | sha256sum | cut -d" " -f1) uid=$(id -u) writable=$w"; exec sleep 1000']
EOF
}

t_secrets_reach_the_container_as_file_and_variable() {
    local db tls out file_sha id1 id2
    db="ctlsecret-db-$(rand)"
    tls="ctlsecret-tls-$(rand)"
    # From stdin, exactly the bytes given; from a file (root's, mode 0600), its bytes.
    out=$(secret_set sec-db "$db")
    expect_eq "set from stdin" "$out" "secret sec-db: created (${#db} bytes)"
    tb_host "$HOST" sh -c "umask 077; printf -- '-----BEGIN TEST-----\n%s\n-----END TEST-----\n' '$tls' > /root/tls.pem" </dev/null
    file_sha=$(tb_host "$HOST" sha256sum /root/tls.pem </dev/null | cut -d' ' -f1)
    out=$(cli secret set sec-tls --file /root/tls.pem)
    expect_contains "set from a file" "$out" "secret sec-tls: created ("
    tb_host "$HOST" rm /root/tls.pem </dev/null
    expect_eq "the store's mode" "$(tb_host "$HOST" stat -c %a:%U $SECRETS_DIR </dev/null)" 700:root
    expect_eq "a value's mode" "$(tb_host "$HOST" stat -c %a:%U $SECRETS_DIR/sec-db </dev/null)" 444:root
    expect_eq "the state directory's mode" "$(tb_host "$HOST" stat -c %a /var/lib/containerctl </dev/null)" 700

    secret_unit secuse
    reload
    cli start secuse
    wait_journal 30 secuse "got file=$file_sha mode=444 owner=0:0 env=$(sha "$db") uid=1234 writable=no"
    expect_contains "the bind mount" \
        "$(tb_host "$HOST" docker inspect -f '{{json .HostConfig.Binds}}' containerctl-secuse </dev/null)" \
        "\"$SECRETS_DIR/sec-tls:/run/secrets/sec-tls:ro\""
    local list
    list=$(cli secret list)
    expect_contains "secret list names the user" "$list" "secuse"
    expect_contains "secret list --json" "$(cli secret list --json)" "\"name\":\"sec-db\",\"size\":${#db},"

    # A runner that restarts adopts the container while the secrets are unchanged ...
    id1=$(container_id secuse)
    sctl kill --kill-who=main --signal=KILL containerctl@secuse
    wait_restarts 30 secuse 1
    wait_prop 30 secuse ActiveState active
    expect_eq "adopted: the same container" "$(container_id secuse)" "$id1"
    # ... and replaces it once a value changed: the new value reaches the new container.
    db="ctlsecret-db2-$(rand)"
    out=$(secret_set sec-db "$db" 2>&1)
    expect_contains "set again" "$out" "secret sec-db: replaced (${#db} bytes)"
    expect_contains "who needs a restart" "$out" "secuse get the new value at their next start"
    sctl kill --kill-who=main --signal=KILL containerctl@secuse
    wait_restarts 30 secuse 2
    wait_prop 30 secuse ActiveState active
    id2=$(container_id secuse)
    expect "a new container for the new value" test "$id2" != "$id1"
    wait_journal 30 secuse "replacing stale container containerctl-secuse: its definition changed"
    wait_journal 30 secuse "env=$(sha "$db") uid=1234"
    cli stop secuse
    expect "the audit trail has the set with its size" audit_has "ok: secret sec-db (${#db} bytes) replaced"
}

t_secrets_missing_fails_the_unit_with_78() {
    local out
    cli new secmiss --image ctl-test/busybox --version 1 -- sleep 1000
    out=$(tb_host "$HOST" containerctl set secmiss 'container.secrets=["sec-missing"]' container.init=true </dev/null 2>&1)
    expect_contains "the save warns" "$out" "warning: /etc/containerctl/units/secmiss.toml: secret sec-missing is not set"
    local rc
    rc=$(status_of cli start secmiss)
    expect_eq "exit status of containerctl start" "$rc" 1
    wait_prop 20 secmiss ActiveState failed
    expect_eq "exit status 78" "$(prop secmiss ExecMainStatus)" 78
    expect_contains "StatusText names the secret and the fix" "$(prop secmiss StatusText)" \
        "secret sec-missing does not exist: an admin sets it with \`containerctl secret set sec-missing\`"
    expect_eq "not restarted" "$(prop secmiss NRestarts)" 0
    wait_journal 10 secmiss "secret sec-missing does not exist"
    expect "no container was made" container_absent secmiss
    # Once set, the unit starts.
    secret_set sec-missing "ctlsecret-now-$(rand)" >/dev/null
    cli reset-failed secmiss
    cli start secmiss
    expect_eq "it runs once the secret is set" "$(prop secmiss ActiveState)" active
    cli stop secmiss
    cli rm secmiss --yes
    cli secret rm sec-missing
}

t_secrets_rm_is_refused_while_in_use() {
    local out rc
    secret_set sec-rm "ctlsecret-rm-$(rand)" >/dev/null
    cli new secrm1 --image ctl-test/busybox --version 1 -- sleep 1000
    cli set secrm1 'container.env_secrets.TOKEN=sec-rm'
    cli new secrm2 --image ctl-test/busybox --version 1 -- sleep 1000
    cli set secrm2 'container.secrets=["sec-rm"]'
    rc=0
    out=$(cli secret rm sec-rm 2>&1) || rc=$?
    expect_eq "exit status of a refused rm" "$rc" 1
    expect_contains "the users are named" "$out" "secret sec-rm is used by units secrm1, secrm2"
    expect_contains "the way out" "$out" "--force"
    expect "the value is still stored" tb_host "$HOST" test -f $SECRETS_DIR/sec-rm
    expect_contains "still listed" "$(cli secret list)" "sec-rm"
    expect "the refusal is audited" audit_has "refused: secret sec-rm is in use by secrm1, secrm2"
    rc=$(status_of cli secret rm sec-none)
    expect_eq "exit status for a secret that does not exist" "$rc" 3
    out=$(cli secret rm sec-rm --force 2>&1)
    expect_contains "forced" "$out" "secret sec-rm: removed"
    expect_contains "the users are warned about" "$out" "secrm1, secrm2 still reference secret sec-rm"
    expect "the value is gone" tb_host "$HOST" test ! -e $SECRETS_DIR/sec-rm
    expect "the forced removal is audited" audit_has "removed (forced) while units secrm1, secrm2 use it"
    cli rm secrm1 --yes
    cli rm secrm2 --yes
}

t_secrets_operators_list_and_use_only_allowed_ones() {
    local out sum value
    value="ctlsecret-shared-$(rand)"
    secret_set shared-db "$value" >/dev/null
    secret_set sec-admin "ctlsecret-admin-$(rand)" >/dev/null
    # Operators may list, not set or remove; nothing changes.
    expect_contains "an operator lists secrets" "$(as alice secret list)" "shared-db"
    local rc=0
    out=$(printf 'x' | tb_host "$HOST" runuser -u alice -- containerctl secret set shared-db 2>&1) || rc=$?
    expect_eq "exit status of an operator's set" "$rc" 4
    expect_contains "the rule" "$out" "only an admin may set or remove secrets"
    out=$(refused_as alice secret rm sec-admin)
    expect_contains "an operator's rm" "$out" "only an admin may set or remove secrets"
    expect_eq "the value after refused changes" \
        "$(tb_host "$HOST" sha256sum $SECRETS_DIR/shared-db </dev/null | cut -d' ' -f1)" "$(sha "$value")"
    expect "the refusal is audited" audit_has "refused: only an admin may set or remove secrets"
    # An operator's unit: a secret outside policy.allowed_secrets is refused with its rule, key,
    # place and fix; an allowed one is written and runs.
    as alice new secop --image ctl-test/busybox --version 1 -- sh -c 'echo op-got=$(printf %s "$PW" | sha256sum | cut -d" " -f1); exec sleep 1000'
    sum=$(file_sum secop)
    out=$(refused_as alice set secop 'container.env_secrets.PW=sec-admin')
    expect_contains "the rule" "$out" "policy rule secrets allow-list"
    expect_contains "the key" "$out" "(container.env_secrets.PW)"
    expect_contains "the location" "$out" "at /etc/containerctl/units/secop.toml:"
    expect_contains "the fix" "$out" "add \"sec-admin\" to policy.allowed_secrets in /etc/containerctl/containerctl.toml"
    out=$(refused_as alice set secop 'container.secrets=["shared-db", "sec-admin"]')
    expect_contains "a file secret" "$out" "(container.secrets[1])"
    expect_eq "the file after refused secrets" "$(file_sum secop)" "$sum"
    as alice set secop 'container.env_secrets.PW=shared-db' container.init=true
    as alice start secop
    wait_journal 30 secop "op-got=$(sha "$value")"
    # Viewers do not list secrets.
    local viewer
    viewer=$(cli token create --name sec-viewer --role viewer --ttl 1h)
    expect_eq "a viewer lists no secrets" "$(code "$(api_as "$viewer" /api/v1/secrets)")" 403
    as alice stop secop
    cli rm secop --yes
}

# readable_with USER VALUE: the files USER can read (/proc, /sys and /dev aside) that hold VALUE,
# then how many environment entries of the processes USER may look into hold it.
readable_with() {
    tb_host "$HOST" runuser -u "$1" -- sh -c '
        find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -type f -readable -print0 2>/dev/null |
            xargs -0 -r grep -laF -- "$1" 2>/dev/null
        for e in /proc/[0-9]*/environ; do { tr "\0" "\n" < "$e"; } 2>/dev/null; done | grep -cF -- "$1"
        ' _ "$2" </dev/null || true
}

_journal_holds() {
    tb_host "$HOST" sh -c 'journalctl --no-pager -o verbose | grep -qF -- "$1"' _ "$1" </dev/null
}

t_secrets_values_appear_nowhere() {
    local db tls admin op viewer out where
    db="ctlsecret-nowhere-db-$(rand)"
    tls="ctlsecret-nowhere-tls-$(rand)"
    secret_set sec-db "$db" >/dev/null
    printf '%s\n' "$tls" | tb_host "$HOST" containerctl secret set sec-tls >/dev/null
    secret_unit secnw
    reload
    cli start secnw
    wait_journal 30 secnw "env=$(sha "$db") uid=1234"
    cli set secnw description=edited >/dev/null
    admin=$(cli token create --name nw-admin --role admin --ttl 1h)
    op=$(cli token create --name nw-op --role operator --ttl 1h)
    viewer=$(cli token create --name nw-viewer --role viewer --ttl 1h)
    # Every answer of the API, to every role.
    out=""
    for t in "$admin" "$op" "$viewer"; do
        for p in /units /units/secnw /units/secnw/file /units/secnw/history /units/secnw/revisions/1 \
            /units/secnw/diff /units/secnw/events /units/secnw/logs /audit /secrets /devices /cluster; do
            out+=$(api_as "$t" "/api/v1$p")
        done
        out+=$(tb_host "$HOST" curl -s -N --max-time 2 -H "Authorization: Bearer $t" \
            http://127.0.0.1:5000/api/v1/stream </dev/null || true)
    done
    expect_contains "the answers were read" "$out" '"name":"secnw"'
    expect_contains "the audit was read" "$out" "ok: secret sec-db ("
    # Every CLI command that shows something, as root and as an operator.
    for who in cli "as alice"; do
        out+=$($who list)$($who status secnw)$($who cat secnw)$($who history secnw)$($who secret list)
        out+=$($who secret list --json)$($who logs secnw -n 100)$($who diff secnw 2>&1 || true)
    done
    out+=$(secret_set sec-db "$db" 2>&1)
    for v in "$db" "$tls"; do
        lacks "API answers and CLI output" "$out" "$v"
        where=$(tb_host "$HOST" sh -c 'journalctl --no-pager -o verbose | grep -cF -- "$1"' _ "$v" </dev/null || true)
        expect_eq "journal lines with the value (all fields)" "$where" 0
        where=$(tb_host "$HOST" sh -c 'grep -rlaF -- "$1" /etc/containerctl /run/systemd/generator /var/lib/containerctl/containerctl.db* /run/containerctl' _ "$v" </dev/null || true)
        expect_eq "unit files, drop-ins and the database holding the value" "$where" ""
        for user in alice bob; do
            expect_eq "what $user can read that holds the value" "$(readable_with "$user" "$v")" 0
        done
    done
    # The search finds what is there: a file any user may read, a journal line.
    local control
    control="ctlcontrol-$(rand)"
    tb_host "$HOST" sh -c "printf '%s\n' '$control' > /tmp/control && chmod 644 /tmp/control" </dev/null
    expect_eq "the search's control file" "$(readable_with bob "$control")" "/tmp/control
0"
    tb_host "$HOST" sh -c "rm /tmp/control; echo '$control' | systemd-cat -t control" </dev/null
    tb_wait_for 10 "the control line in the journal" _journal_holds "$control"
    # The value is there for root, where it belongs.
    expect_eq "the stored value" "$(tb_host "$HOST" cat $SECRETS_DIR/sec-db </dev/null)" "$db"
    cli stop secnw
    cli rm secnw --yes
}

t_secrets_viewers_read_credentials_redacted() {
    local pw viewer admin out r
    pw="ctlplain-$(rand)"
    cli new redact --image ctl-test/busybox --version 1 -- sleep 1000
    out=$(tb_host "$HOST" containerctl set redact "container.env.DB_PASSWORD=$pw" container.env.TZ=UTC </dev/null 2>&1)
    expect_contains "set warns" "$out" "warning: /etc/containerctl/units/redact.toml:"
    expect_contains "set suggests env_secrets" "$out" "env_secrets = { DB_PASSWORD = \"NAME\" }"
    lacks "the warning" "$out" "$pw"
    cli set redact container.env.TZ=Europe/Paris >/dev/null 2>&1
    viewer=$(cli token create --name redact-viewer --role viewer --ttl 1h)
    admin=$(cli token create --name redact-admin --role admin --ttl 1h)
    for p in /units/redact/file /units/redact /units/redact/revisions/2 /units/redact/revisions/3 "/units/redact/diff?from=1"; do
        r=$(api_as "$viewer" "/api/v1$p")
        expect_eq "viewer GET $p" "$(code "$r")" 200
        expect_contains "viewer GET $p" "$r" 'DB_PASSWORD = \"<redacted>\"'
        lacks "viewer GET $p" "$r" "$pw"
        expect_contains "admin GET $p" "$(api_as "$admin" "/api/v1$p")" "$pw"
    done
    expect_contains "the diff still shows what changed" "$(api_as "$viewer" "/api/v1/units/redact/diff")" "Europe/Paris"
    expect_contains "an operator reads the file as written" "$(as alice cat redact)" "$pw"
    # A preview tells a viewer nothing about a guess.
    local text right wrong
    text=$(tb_host "$HOST" cat /etc/containerctl/units/redact.toml </dev/null; echo .)
    right=$(printf '%s' "${text%.}" | python3 -c 'import json,sys; print(json.dumps({"text": sys.stdin.read()}))')
    wrong=${right//$pw/guess}
    local r_right r_wrong
    r_right=$(http POST /api/v1/units/redact/preview -H "Authorization: Bearer $viewer" -H 'content-type: application/json' -d "$right")
    lacks "a viewer's preview" "$r_right" "$pw"
    expect_contains "the right guess" "$r_right" '"changed":false'
    r_wrong=$(http POST /api/v1/units/redact/preview -H "Authorization: Bearer $viewer" -H 'content-type: application/json' -d "$wrong")
    expect_eq "the wrong guess's answer" "$r_wrong" "$r_right"
    expect_contains "an admin's preview of the wrong guess" \
        "$(http POST /api/v1/units/redact/preview -H "Authorization: Bearer $admin" -H 'content-type: application/json' -d "$wrong")" \
        '"changed":true'
    # A hand-edited file with an error on the line of the value: its error quotes the line.
    tb_host "$HOST" sh -c "printf '%s\n' '[container]' 'image = \"ctl-test/busybox\"' 'version = \"1\"' \
        'env = { DB_PASSWORD = \"$pw\", N = 5 }' > /etc/containerctl/units/redact.toml" </dev/null
    expect_contains "root's list shows the error" "$(sock /units)" "$pw"
    r=$(api_as "$viewer" /api/v1/units)
    expect_contains "the viewer's list shows the error" "$r" 'redact.toml:4:'
    lacks "the viewer's list" "$r" "$pw"
    r=$(tb_host "$HOST" curl -s -N --max-time 2 -H "Authorization: Bearer $viewer" http://127.0.0.1:5000/api/v1/stream </dev/null || true)
    expect_contains "the viewer's event stream" "$r" '"name":"redact"'
    lacks "the viewer's event stream" "$r" "$pw"
    # validate warns without quoting the value.
    tb_host "$HOST" sh -c "printf '%s\n' '[container]' 'image = \"ctl-test/busybox\"' 'version = \"1\"' \
        'env = { API_TOKEN = \"$pw\" }' > /tmp/warned.toml" </dev/null
    local rc=0
    out=$(tb_host "$HOST" containerctl validate /tmp/warned.toml </dev/null 2>&1) || rc=$?
    expect_eq "validate accepts it" "$rc" 0
    expect_contains "validate warns" "$out" "warning: /tmp/warned.toml:4:9: the value of environment variable API_TOKEN is written in plain text"
    expect_contains "validate suggests env_secrets" "$out" "env_secrets = { API_TOKEN = \"NAME\" }"
    lacks "validate's output" "$out" "$pw"
    expect_contains "validate --json" "$(tb_host "$HOST" containerctl validate --json /tmp/warned.toml </dev/null)" '"warnings": ['
    cli rm redact --yes
}

_swarm_secret_gone() {
    ! tb_host "$HOST" docker secret inspect "$1" </dev/null >/dev/null 2>&1
}

t_secrets_deploy_units_get_swarm_secrets() {
    trap 'sctl stop containerctl@secswarm </dev/null 2>/dev/null || true
        tb_host "$HOST" docker swarm leave --force </dev/null >/dev/null 2>&1 || true' EXIT
    tb_host "$HOST" docker swarm init </dev/null >/dev/null
    local v1 v2 first out rc
    v1="ctlsecret-swarm-$(rand)"
    secret_set sec-swarm "$v1" >/dev/null
    unit_write secswarm <<'EOF'
[container]
image = "ctl-test/busybox"
version = "1"
secrets = ["sec-swarm"]
args = ["sh", "-c", 'f=/run/secrets/sec-swarm; echo "task got=$(sha256sum < $f | cut -d" " -f1) mode=$(stat -c %a $f) owner=$(stat -c %u:%g $f)"; exec sleep 1000']
[service]
stop_timeout = "3s"
[deploy]
replicas = 1
EOF
    reload
    sctl start containerctl@secswarm
    wait_journal 30 secswarm "task got=$(sha "$v1") mode=444 owner=0:0"
    swarm_secrets() {
        tb_host "$HOST" docker secret ls --filter label=io.containerctl.unit=secswarm --format '{{.Name}}' </dev/null
    }
    first=$(swarm_secrets)
    expect_eq "one Swarm secret" "$(wc -l <<<"$first")" 1
    expect_eq "its name" "${first:0:13}" containerctl-
    # A new value: a runner that restarts updates the service in place with a new Swarm secret,
    # and removes the old one once the service runs with the new one.
    v2="ctlsecret-swarm2-$(rand)"
    secret_set sec-swarm "$v2" >/dev/null
    sctl kill --kill-who=main --signal=KILL containerctl@secswarm
    wait_restarts 30 secswarm 1
    wait_journal 60 secswarm "updating service containerctl-secswarm"
    wait_journal 60 secswarm "task got=$(sha "$v2")"
    tb_wait_for 30 "the old Swarm secret to go" _swarm_secret_gone "$first"
    expect_eq "one Swarm secret after the update" "$(swarm_secrets | wc -l)" 1
    # Stopped: the service and its secrets are gone.
    cli stop secswarm
    expect_eq "no Swarm secret left" "$(swarm_secrets)" ""
    # Swarm takes secrets as files only.
    tb_host "$HOST" sh -c "printf '%s\n' '[container]' 'image = \"ctl-test/busybox\"' 'version = \"1\"' \
        'env_secrets = { PW = \"sec-swarm\" }' '[deploy]' > /tmp/swarmenv.toml" </dev/null
    rc=0
    out=$(tb_host "$HOST" containerctl validate /tmp/swarmenv.toml </dev/null 2>&1) || rc=$?
    expect_eq "env_secrets with [deploy] is invalid" "$rc" 1
    expect_contains "the reason" "$out" "Swarm services get secrets as files only, not as environment variable PW"
    unit_rm secswarm
    reload
}

t_secrets_names_and_values_are_checked() {
    local rc r key_before
    # The CLI refuses before sending anything: a bad name, an empty value, one over 500 KiB.
    rc=0
    printf 'x' | tb_host "$HOST" containerctl secret set 'bad/name' >/dev/null 2>&1 || rc=$?
    expect_eq "exit status for a bad name" "$rc" 2
    rc=0
    printf '' | tb_host "$HOST" containerctl secret set sec-empty >/dev/null 2>&1 || rc=$?
    expect_eq "exit status for an empty value" "$rc" 2
    rc=0
    head -c 512001 /dev/zero | tb_host "$HOST" containerctl secret set sec-big >/dev/null 2>&1 || rc=$?
    expect_eq "exit status for a value over 500 KiB" "$rc" 2
    # The API refuses the same, and a name that would reach the digest key or leave the store.
    key_before=$(tb_host "$HOST" sha256sum $SECRETS_DIR/.key </dev/null)
    for name in .key ..%2Fcontainerctl.db bad%2Fname "$(printf 'a%.0s' $(seq 1 65))"; do
        r=$(tb_host "$HOST" curl -s --path-as-is -w ' %{http_code}' -X PUT --data-binary x \
            --unix-socket /run/containerctl/containerctl.sock "http://localhost/api/v1/secrets/$name" </dev/null)
        expect_eq "status of PUT /secrets/$name" "${r##* }" 400
        expect_contains "the rule for $name" "$r" "is not a valid secret name: use 1-64 characters"
    done
    expect_eq "the digest key after refused names" "$(tb_host "$HOST" sha256sum $SECRETS_DIR/.key </dev/null)" "$key_before"
    r=$(tb_host "$HOST" curl -s -w ' %{http_code}' -X PUT --data-binary '' \
        --unix-socket /run/containerctl/containerctl.sock http://localhost/api/v1/secrets/sec-empty </dev/null)
    expect_eq "status of an empty value" "${r##* }" 400
    tb_host "$HOST" sh -c 'head -c 512001 /dev/zero > /tmp/big-secret' </dev/null
    r=$(tb_host "$HOST" curl -s -w ' %{http_code}' -X PUT --data-binary @/tmp/big-secret \
        --unix-socket /run/containerctl/containerctl.sock http://localhost/api/v1/secrets/sec-big </dev/null)
    expect_eq "status of a value over 500 KiB" "${r##* }" 413
    expect_contains "the limit is named" "$r" "the most a secret may hold"
    expect "nothing was stored" tb_host "$HOST" test ! -e $SECRETS_DIR/sec-big
    # Exactly 500 KiB of any bytes is fine.
    tb_host "$HOST" sh -c 'head -c 512000 /dev/urandom > /tmp/big-secret' </dev/null
    expect_contains "500 KiB from a file" "$(cli secret set sec-big --file /tmp/big-secret)" "(512000 bytes)"
    expect_eq "stored as given" "$(tb_host "$HOST" sh -c "cmp /tmp/big-secret $SECRETS_DIR/sec-big && echo same" </dev/null)" same
    tb_host "$HOST" rm /tmp/big-secret </dev/null
    cli secret rm sec-big
}
