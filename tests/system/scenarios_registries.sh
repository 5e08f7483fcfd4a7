# shellcheck shell=bash
# System scenarios for private registry credentials (issue 13): a real docker-registry with
# htpasswd (bcrypt) authentication behind TLS from a test CA that this host's dockerd trusts
# through /etc/docker/certs.d, an image that exists only there, and `containerctl registry`.
# The operator alice and the policy come from tests/system/run.sh; `cli` and `as` from
# scenarios_daemon.sh.

PRIV_USER=tester
# Runs of ?, ~ and > put `/` and `+` into the standard base64 of the X-Registry-Auth JSON, which
# dockerd cannot decode (it decodes URL-safe base64) and would silently drop on a pull.
PRIV_PASSWORD='ctl-PW?~>???~~~>>>-9f3e'
PRIV_PORT=5443
# Every CLI output of the scenario, checked for the password at the end.
PRIV_OUT=$(mktemp)

# pcli ARGS...: containerctl as root; stdout and stderr are printed and kept in $PRIV_OUT.
pcli() {
    local rc=0
    tb_host "$HOST" containerctl "$@" </dev/null >"$PRIV_OUT.1" 2>&1 || rc=$?
    tee -a "$PRIV_OUT" <"$PRIV_OUT.1"
    return "$rc"
}

# plogin PASSWORD ARGS...: `containerctl registry login ARGS --password-stdin` with PASSWORD on
# stdin; prints its exit status, its output goes to $PRIV_OUT.1 and $PRIV_OUT.
plogin() {
    local password=$1 rc=0
    shift
    printf '%s\n' "$password" | tb_host "$HOST" containerctl registry login "$@" --password-stdin \
        >"$PRIV_OUT.1" 2>&1 || rc=$?
    cat "$PRIV_OUT.1" >>"$PRIV_OUT"
    echo "$rc"
}

# priv_start_fails NAME WHAT: starting the unit fails for want of a login, exit 78, no restart;
# the status text and the journal name the registry and the command.
priv_start_fails() {
    local name=$1 reg=$2 want=$3
    sctl reset-failed "containerctl@$name" </dev/null 2>/dev/null || true
    sctl start "containerctl@$name" </dev/null 2>/dev/null || true
    wait_prop 30 "$name" ActiveState failed
    expect_eq "exit status of a refused pull" "$(prop "$name" ExecMainStatus)" 78
    expect_eq "no restart after a refused pull" "$(prop "$name" NRestarts)" 0
    expect_contains "StatusText names the registry" "$(prop "$name" StatusText)" "registry $reg refused"
    expect_contains "StatusText says what to run" "$(prop "$name" StatusText)" "$want"
    wait_journal 10 "$name" "$want"
}

t_private_registry_login_pull_logout() {
    local ip reg rc out list file audit
    ip=$(tb_host "$HOST" ip -4 -o addr show eth0 </dev/null | awk '{print $4}' | cut -d/ -f1)
    reg=$ip:$PRIV_PORT
    private_registry_start "$HOST" "$ip" "$PRIV_PORT" "$PRIV_USER" "$PRIV_PASSWORD"
    private_registry_trust "$HOST" "$HOST" "$reg"
    private_registry_push "$HOST" "$reg" private/app "$PRIV_USER" "$PRIV_PASSWORD"
    expect "the image is only in the registry" \
        test -z "$(tb_host "$HOST" docker images -q "$reg/private/app:1" </dev/null)"
    unit_write privapp <<EOF
[container]
image = "$reg/private/app"
version = "1"
init = true
args = ["sh", "-c", "echo private-image-runs; exec sleep 1000"]
[service]
restart = "on-failure"
restart_sec = "1s"
EOF
    reload

    # Before any login: the pull is refused, the unit fails clearly and is not restarted.
    priv_start_fails privapp "$reg" "containerctl registry login $reg --username USER --password-stdin"
    expect_contains "the journal quotes the registry's answer" "$(journal privapp)" "no basic auth credentials"

    # Registry credentials are an admin's: an operator can neither list nor store them.
    expect_eq "an operator's registry list" "$(status_of as alice registry list)" 4
    rc=0
    printf '%s\n' "$PRIV_PASSWORD" | tb_host "$HOST" runuser -u alice -- containerctl registry login "$reg" \
        -u "$PRIV_USER" --password-stdin >/dev/null 2>&1 || rc=$?
    expect_eq "an operator's registry login" "$rc" 4

    # Hostile REGISTRY arguments are refused naming the rule, by the CLI and by the API.
    expect_eq "a scheme is a usage error" "$(plogin x "https://$reg" -u "$PRIV_USER")" 2
    expect_contains "the rule is named" "$(cat "$PRIV_OUT.1")" "rule: registry name"
    out=$(tb_host "$HOST" curl -s -w '\n%{http_code}' --unix-socket /run/containerctl/containerctl.sock \
        -H 'content-type: application/json' -X POST http://localhost/api/v1/registries \
        -d "{\"registry\": \"$reg/../x\", \"username\": \"$PRIV_USER\", \"password\": \"$PRIV_PASSWORD\"}" </dev/null)
    echo "$out" >>"$PRIV_OUT"
    expect_eq "the API refuses .. in REGISTRY" "$(tail -n1 <<<"$out")" 400
    expect_contains "naming the rule" "$out" "rule: registry name"
    expect_eq "an empty password" "$(plogin '' "$reg" -u "$PRIV_USER")" 1
    expect_contains "an empty password is refused naming the rule" "$(cat "$PRIV_OUT.1")" "rule: registry password"

    # A wrong password is refused with the registry's answer, and nothing is stored.
    expect_eq "login with a wrong password" "$(plogin "${PRIV_PASSWORD}x" "$reg" -u "$PRIV_USER")" 1
    out=$(cat "$PRIV_OUT.1")
    echo "$out"
    expect_contains "the refusal names the registry and the user" "$out" "registry $reg refused the credential of $PRIV_USER"
    expect_contains "it quotes the registry's answer" "$out" "401 Unauthorized"
    expect_contains "and says nothing was stored" "$out" "nothing was stored"
    expect_eq "nothing listed after the refused login" "$(pcli registry list --json)" "[]"
    expect "no credential file after the refused login" tb_host "$HOST" test ! -e /var/lib/containerctl/registries.json

    # A credential for another namespace of the registry does not apply (component boundary).
    expect_eq "login for $reg/priv" "$(plogin "$PRIV_PASSWORD" "$reg/priv" -u "$PRIV_USER")" 0
    priv_start_fails privapp "$reg" "containerctl registry login $reg --username USER --password-stdin"
    pcli registry logout "$reg/priv"

    # The right credential for the namespace: stored root-only, listed without the password.
    expect_eq "login for $reg/private" "$(plogin "$PRIV_PASSWORD" "$reg/private" --username "$PRIV_USER")" 0
    expect_contains "login says where it applies" "$(cat "$PRIV_OUT.1")" "logged in to $reg/private as $PRIV_USER"
    file=/var/lib/containerctl/registries.json
    expect_eq "the credential file is root's, mode 0600" "$(tb_host "$HOST" stat -c '%U %a' $file </dev/null)" "root 600"
    expect_eq "its directory is root's, mode 0700" \
        "$(tb_host "$HOST" stat -c '%U %a' /var/lib/containerctl </dev/null)" "root 700"
    list=$(pcli registry list --json)
    expect_contains "list --json names the registry" "$list" "\"registry\":\"$reg/private\""
    expect_contains "list --json names the user" "$list" "\"username\":\"$PRIV_USER\""
    expect_contains "not used yet" "$list" '"last_used_ms":null'
    expect_contains "the table" "$(pcli registry list)" "$reg/private"
    # Over HTTP too: an operator's or a viewer's token is refused, an admin's lists (no password).
    local op viewer admin r
    op=$(cli token create --name reg-operator --role operator)
    viewer=$(cli token create --name reg-viewer --role viewer)
    admin=$(cli token create --name reg-admin --role admin)
    r=$(http GET /api/v1/registries -H "Authorization: Bearer $op")
    expect_eq "an operator token lists registries" "$(code "$r")" 403
    expect_contains "refused by the roles rule" "$r" '"rule":"roles"'
    expect_eq "a viewer token tests a registry" "$(code "$(http POST /api/v1/registries/test -H "Authorization: Bearer $viewer" \
        -H 'content-type: application/json' -d "{\"registry\": \"$reg/private\"}")")" 403
    r=$(http GET /api/v1/registries -H "Authorization: Bearer $admin")
    echo "$r" >>"$PRIV_OUT"
    expect_eq "an admin token lists registries" "$(code "$r")" 200
    expect_contains "with the entry" "$r" "\"registry\":\"$reg/private\""

    # Now the unit pulls with it (the runner reads the file under its sandbox) and runs.
    sctl reset-failed containerctl@privapp </dev/null
    sctl start containerctl@privapp </dev/null
    wait_prop 30 privapp ActiveState active
    wait_journal 20 privapp private-image-runs
    expect_contains "the runner pulled" "$(journal privapp)" "pulled $reg/private/app:1"
    tb_wait_for 20 "last used set from dockerd's pull event" _priv_last_used_set
    expect_contains "test accepts the stored credential" "$(pcli registry test "$reg/private")" \
        "registry $reg/private accepts the stored credential of $PRIV_USER"
    expect_eq "test of a registry without a credential" "$(status_of pcli registry test "$reg/other")" 3

    # Nothing shows the password: no API answer, CLI output, journal line, unit file, audit row,
    # database page, or any file an operator can read.
    audit=$(tb_host "$HOST" curl -s --unix-socket /run/containerctl/containerctl.sock \
        'http://localhost/api/v1/audit?limit=100' </dev/null)
    expect_contains "the audit has the login with registry and user" "$audit" "ok: $reg/private (user $PRIV_USER)"
    expect_contains "and the refused one" "$audit" "refused: $reg (user $PRIV_USER)"
    expect_contains "and the test" "$audit" "registry test"
    priv_no_password "the audit trail" "$audit"
    priv_no_password "the registries API" "$(tb_host "$HOST" curl -s --unix-socket /run/containerctl/containerctl.sock \
        http://localhost/api/v1/registries </dev/null)"
    priv_no_password "the CLI's output" "$(cat "$PRIV_OUT")"
    priv_no_password "the whole journal" "$(tb_host "$HOST" journalctl --no-pager -o verbose </dev/null)"
    priv_no_password "the unit file" "$(tb_host "$HOST" cat /etc/containerctl/units/privapp.toml </dev/null)"
    expect_eq "the password in the database files" \
        "$(tb_host "$HOST" sh -c 'cat /var/lib/containerctl/containerctl.db* | grep -caF -- "$1" || true' sh "$PRIV_PASSWORD" </dev/null)" 0
    expect "the password is in the credential file (the test searches the right thing)" \
        tb_host "$HOST" grep -qF -- "$PRIV_PASSWORD" "$file"
    # Every directory but the kernel's (/proc, /sys, /dev), also in the base64 form of Docker's
    # config.json.
    out=$(tb_host "$HOST" runuser -u alice -- sh -c '
        for d in /*; do
            case $d in /proc | /sys | /dev) ;; *) grep -rlsF -e "$1" -e "$2" "$d" ;; esac
        done' sh "$PRIV_PASSWORD" "$(printf '%s' "$PRIV_USER:$PRIV_PASSWORD" | base64 -w0)" </dev/null || true)
    expect_eq "files an operator can read that hold the password" "$out" ""
    expect "the search reads what an operator can read" \
        tb_host "$HOST" runuser -u alice -- grep -rqsF "$reg/private/app" /etc/containerctl/units

    # Logout removes it; the next pull is refused again.
    expect_contains "logout" "$(pcli registry logout "$reg/private")" "removed the credential for $reg/private"
    expect_eq "nothing listed after logout" "$(pcli registry list --json)" "[]"
    expect_eq "a second logout finds nothing" "$(status_of pcli registry logout "$reg/private")" 3
    expect "the password left the credential file" tb_host "$HOST" sh -c "! grep -qF -- \"\$1\" $file" sh "$PRIV_PASSWORD"
    sctl stop containerctl@privapp </dev/null
    tb_host "$HOST" docker rmi "$reg/private/app:1" </dev/null >/dev/null
    priv_start_fails privapp "$reg" "containerctl registry login $reg --username USER --password-stdin"
    sctl reset-failed containerctl@privapp </dev/null 2>/dev/null || true
    unit_rm privapp
    reload
}

_priv_last_used_set() {
    [[ $(tb_host "$HOST" containerctl registry list --json </dev/null) =~ \"last_used_ms\":[0-9]+ ]]
}

# priv_no_password WHAT TEXT
priv_no_password() {
    if [[ $2 == *"$PRIV_PASSWORD"* ]]; then
        echo "expected no password in $1" >&2
        return 1
    fi
}
