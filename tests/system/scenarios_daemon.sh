# System scenarios for containerctld and the CLI (issue 3). The host has the daemon running
# under systemd, an operator `alice` (group containerctl), an outsider `bob`, and a policy that
# allows host paths below /srv/containers and the device /dev/zero (see tests/system/run.sh).

# cli ARGS...: containerctl as root (admin).
cli() { tb_host "$HOST" containerctl "$@" </dev/null; }
# as USER ARGS...: containerctl as another user.
as() {
    local user=$1
    shift
    tb_host "$HOST" runuser -u "$user" -- containerctl "$@" </dev/null
}
# status_of CMD...: the exit status of CMD (never fails the scenario by itself).
status_of() {
    local rc=0
    "$@" >/dev/null 2>&1 || rc=$?
    echo "$rc"
}
file_sum() { tb_host "$HOST" sha256sum "/etc/containerctl/units/$1.toml" </dev/null | cut -d' ' -f1; }

t_cli_new_start_list_status_stop() {
    cli new clia --image ctl-test/busybox --version 1 -- sh -c 'echo clia-says-hi; exec sleep 1000'
    cli set clia container.init=true
    cli start clia
    local json status
    json=$(cli list --json)
    expect_contains "list --json" "$json" '"name":"clia"'
    expect_eq "clia active in list --json" \
        "$(tb_host "$HOST" sh -c "containerctl list --json | tr -d ' \n' | grep -o '\"name\":\"clia\"[^}]*\"active_state\":\"[a-z]*\"' | grep -o 'active_state\":\"[a-z]*' | cut -d'\"' -f3" </dev/null)" \
        active
    status=$(cli status clia)
    expect_contains "status" "$status" "active"
    expect_contains "status" "$status" "ctl-test/busybox:1"
    wait_journal 20 clia clia-says-hi
    expect_contains "logs" "$(cli logs clia -n 20)" clia-says-hi
    cli stop clia
    expect_eq "ActiveState after containerctl stop" "$(prop clia ActiveState)" inactive
}

t_cli_invalid_edit_changes_nothing() {
    cli new clib --image ctl-test/busybox --version 1 -- sleep 1000
    local before after rc revs_before revs_after
    before=$(file_sum clib)
    revs_before=$(cli history clib --json)
    rc=$(status_of cli set clib service.restart=sometimes)
    expect_eq "exit status of an invalid set" "$rc" 1
    rc=$(status_of tb_host "$HOST" env EDITOR="sed -i s/version/versoin/" containerctl edit clib)
    expect_eq "exit status of an invalid non-interactive edit" "$rc" 1
    after=$(file_sum clib)
    revs_after=$(cli history clib --json)
    expect_eq "file after refused edits" "$after" "$before"
    expect_eq "history after refused edits" "$revs_after" "$revs_before"
}

t_cli_edit_history_diff_revert() {
    cli new clic --image ctl-test/busybox --version 1 -- sh -c 'echo first-args; exec sleep 1000'
    cli set clic container.init=true
    cli start clic
    wait_journal 20 clic first-args
    tb_host "$HOST" env EDITOR="sed -i s/first-args/second-args/" containerctl edit clic --restart </dev/null
    wait_journal 20 clic second-args
    local hist diff
    hist=$(cli history clic)
    expect_contains "history" "$hist" edit
    expect_contains "history" "$hist" new
    diff=$(cli diff clic)
    expect_contains "diff" "$diff" "-args = [\"sh\", \"-c\", \"echo first-args; exec sleep 1000\"]"
    expect_contains "diff" "$diff" "+args = [\"sh\", \"-c\", \"echo second-args; exec sleep 1000\"]"
    cli revert clic 2 --restart
    expect_contains "file after revert" "$(cli cat clic)" first-args
    tb_wait_for 20 "first-args twice in the journal" _journal_count_at_least clic first-args 2
    cli stop clic
}

_journal_count_at_least() {
    (($(journal "$1" | grep -cF -- "$2") >= $3))
}

t_operator_restarts_but_cannot_escalate() {
    cli new ops --image ctl-test/busybox --version 1 -- sleep 1000
    cli set ops container.init=true service.protected=true
    cli start ops
    local id sum rc started
    id=$(container_id ops)
    started=$(tb_host "$HOST" docker inspect -f '{{.State.StartedAt}}' containerctl-ops </dev/null)
    as alice restart ops
    expect_eq "operator restart: the same, unchanged container" "$(container_id ops)" "$id"
    expect "operator restart started it again" test \
        "$(tb_host "$HOST" docker inspect -f '{{.State.StartedAt}}' containerctl-ops </dev/null)" != "$started"
    sum=$(file_sum ops)
    for assignment in container.privileged=true 'container.capabilities=["NET_ADMIN"]' \
        'container.volumes=["/etc:/host-etc"]' 'container.devices=["/dev/mem"]' \
        'container.network=host' service.protected=false 'container.volumes=["/srv/containers/missing:/data"]'; do
        rc=$(status_of as alice set ops "$assignment")
        expect_eq "operator exit status for $assignment" "$rc" 4
    done
    expect_eq "the file after refused operator edits" "$(file_sum ops)" "$sum"
    rc=$(status_of as alice stop ops)
    expect_eq "operator stopping a protected unit" "$rc" 4
    expect_eq "the protected unit still runs" "$(prop ops ActiveState)" active
    # A protected unit is edited by admins only, even within the allow-lists (issue 11).
    rc=$(status_of as alice set ops 'container.volumes=["/srv/containers/ops:/data"]' 'container.devices=["/dev/zero"]')
    expect_eq "operator exit status for an allowed edit of a protected unit" "$rc" 4
    expect_eq "the protected unit's file after that edit" "$(file_sum ops)" "$sum"
    # Once root unprotects it, each escalation is still refused by its own rule, and the allowed
    # edit is the operator's.
    cli set ops service.protected=false
    sum=$(file_sum ops)
    for assignment in container.privileged=true 'container.capabilities=["NET_ADMIN"]' \
        'container.volumes=["/etc:/host-etc"]' 'container.devices=["/dev/mem"]' \
        'container.network=host' service.protected=true 'container.volumes=["/srv/containers/missing:/data"]'; do
        rc=$(status_of as alice set ops "$assignment")
        expect_eq "operator exit status for $assignment on the unprotected unit" "$rc" 4
    done
    expect_eq "the file after refused operator edits of the unprotected unit" "$(file_sum ops)" "$sum"
    as alice set ops 'container.volumes=["/srv/containers/ops:/data"]' 'container.devices=["/dev/zero"]'
    cli stop ops
}

t_outsider_is_refused() {
    local rc out
    rc=$(status_of as bob list)
    expect "bob (not in group containerctl) is refused" test "$rc" -ne 0
    out=$(tb_host "$HOST" runuser -u bob -- containerctl list </dev/null 2>&1 || true)
    expect_contains "the refusal" "$out" "ermission"
}

t_daemon_killed_units_keep_running_and_history_catches_up() {
    cli new kept --image ctl-test/busybox --version 1 -- sleep 1000
    cli set kept container.init=true
    cli start kept
    local id pid_before
    id=$(container_id kept)
    pid_before=$(tb_host "$HOST" systemctl show -p MainPID --value containerctld </dev/null)
    sctl kill --signal=KILL containerctld
    # While the daemon is down: the container keeps running and systemd still restarts units.
    expect_eq "container after the daemon died" "$(container_id kept)" "$id"
    sctl restart containerctl@kept
    tb_wait_for 30 "containerctld back" _daemon_back "$pid_before"
    expect_contains "history after the daemon came back" "$(cli history kept)" new
    tb_wait_for 30 "the restart while the daemon was down in the events" _has_event kept exited
    cli stop kept
}

_daemon_back() {
    local pid
    pid=$(tb_host "$HOST" systemctl show -p MainPID --value containerctld </dev/null)
    [[ $pid != "$1" && $pid != 0 ]] && tb_host "$HOST" containerctl list </dev/null >/dev/null 2>&1
}

_has_event() {
    tb_host "$HOST" containerctl status "$1" --json </dev/null | has_text "\"kind\":\"$2\""
}

t_dockerd_restart_brings_enabled_units_back() {
    cli new dockback --image ctl-test/busybox --version 1 -- sleep 1000
    cli set dockback container.init=true
    cli start dockback
    local id started
    id=$(container_id dockback)
    started=$(_started_at dockback)
    sctl restart docker
    wait_prop 60 dockback ActiveState active
    # The unit was stopped with docker.service and started after it: its unchanged container
    # is started again.
    tb_wait_for 30 "the dockback container started again" _started_again dockback "$started"
    expect_eq "the same container" "$(container_id dockback)" "$id"
    tb_wait_for 30 "containerctld answering" _cli_answers
    cli stop dockback
}

_started_at() { tb_host "$HOST" docker inspect -f '{{.State.StartedAt}}' "containerctl-$1" </dev/null; }

_started_again() {
    [[ -n $(container_id "$1") && $(_started_at "$1") != "$2" ]]
}

_cli_answers() { tb_host "$HOST" containerctl list </dev/null >/dev/null 2>&1; }

t_rm_keeps_history_and_devices_are_listed() {
    cli new gone --image ctl-test/busybox --version 1 -- sleep 1000
    cli set gone 'container.devices=["/dev/zero", "/dev/ttyNOPE7"]'
    local devices
    devices=$(cli devices --json)
    expect_contains "devices" "$devices" '"/dev/ttyNOPE7"'
    expect_contains "devices" "$(cli devices)" "/dev/ttyNOPE7"
    cli rm gone --yes
    expect "the file is gone" test -z "$(tb_host "$HOST" ls /etc/containerctl/units/gone.toml 2>/dev/null </dev/null)"
    expect_contains "history after rm" "$(cli history gone)" rm
    expect_eq "status of a removed unit" "$(status_of cli status gone)" 3
}

# api METHOD PATH [CURL ARGS...]: "STATUS BODY" of a request to the socket API as root.
api() {
    local method=$1 path=$2
    shift 2
    tb_host "$HOST" curl -s -o /tmp/api-body -w '%{http_code}' -X "$method" \
        --unix-socket /run/containerctl/containerctl.sock "$@" "http://localhost$path" </dev/null
    printf ' '
    tb_host "$HOST" cat /tmp/api-body </dev/null
}

t_api_refuses_hostile_input_without_side_effects() {
    local before after r
    before=$(tb_host "$HOST" sh -c 'ls -la /etc/containerctl/units /etc | sha256sum' </dev/null)
    for path in '/api/v1/units/..%2F..%2Fetc%2Fpasswd/file' '/api/v1/units/%2e%2e/file' \
        '/api/v1/units/a%5Cb/file' '/api/v1/units/a%00b/file' "/api/v1/units/$(printf 'a%.0s' $(seq 1 65))/file" \
        '/api/v1/units/Web/file'; do
        r=$(api PUT "$path" -H 'content-type: application/json' -d '{"text": "[container]\nimage = \"a\"\nversion = \"1\"\n"}')
        expect "PUT $path is refused with 400 or 404 ($r)" test "${r%% *}" = 400 -o "${r%% *}" = 404
        expect_contains "error shape for $path" "$r" '"error"'
    done
    r=$(api PUT /api/v1/units//file -d '{}' -H 'content-type: application/json')
    expect "a double slash is refused (${r%% *})" test "${r%% *}" -ge 400 -a "${r%% *}" -lt 500
    tb_host "$HOST" sh -c 'head -c 400000 /dev/zero | tr "\0" a > /tmp/big && printf "{\"text\": \"%s\"}" "$(cat /tmp/big)" > /tmp/big.json' </dev/null
    r=$(api PUT /api/v1/units/big/file -H 'content-type: application/json' --data-binary @/tmp/big.json)
    expect_eq "status of an oversized body" "${r%% *}" 413
    r=$(api PUT /api/v1/units/bad/file -H 'content-type: application/json' -d '{"text": ')
    expect_eq "status of malformed JSON" "${r%% *}" 400
    r=$(api GET /api/v1/nope)
    expect_eq "status of an unknown route" "${r%% *}" 404
    expect_contains "unknown route body" "$r" '"kind":"not_found"'
    r=$(api DELETE /api/v1/units)
    expect "a wrong method is refused (${r%% *})" test "${r%% *}" = 400 -o "${r%% *}" = 405
    after=$(tb_host "$HOST" sh -c 'ls -la /etc/containerctl/units /etc | sha256sum' </dev/null)
    expect_eq "files after hostile requests" "$after" "$before"
}

t_cli_enable_disable_and_completions() {
    cli new togl --image ctl-test/busybox --version 1 -- sleep 1000
    local link=/run/systemd/generator/multi-user.target.wants/containerctl@togl.service
    expect "an enabled unit is wanted at boot" tb_host "$HOST" test -L "$link"
    cli disable togl
    expect_contains "the file after disable" "$(cli cat togl)" "enabled = false"
    expect "a disabled unit is not wanted at boot" tb_host "$HOST" test ! -e "$link"
    cli enable togl
    expect "an enabled unit is wanted again" tb_host "$HOST" test -L "$link"
    expect_contains "bash completions" "$(cli completions bash)" "containerctl"
    expect "installed bash completions" tb_host "$HOST" test -s /usr/share/bash-completion/completions/containerctl
    cli rm togl --yes
}

t_repeated_restarts_are_not_refused_by_the_start_limit() {
    cli new often --image ctl-test/busybox --version 1 -- sleep 1000
    cli set often container.init=true
    cli start often
    local i
    for i in 1 2 3 4 5 6 7; do
        cli restart often >/dev/null
    done
    expect_eq "ActiveState after seven quick restarts" "$(prop often ActiveState)" active
    cli rm often --yes
}

t_preview_checks_what_the_write_checks() {
    # A directory below the allowed root that is a symlink to /etc: the write refuses it after
    # resolving the link, and the preview must say the same instead of approving it.
    tb_host "$HOST" sh -ec 'mkdir -p /srv/containers && ln -sfn /etc /srv/containers/sneaky' </dev/null
    local unit body out rc
    unit="[container]\\nimage = 'ctl-test/busybox'\\nversion = '1'\\nvolumes = ['/srv/containers/sneaky:/data']\\n"
    body="{\"text\": \"$unit\"}"
    out=$(tb_host "$HOST" runuser -u alice -- curl -s --unix-socket /run/containerctl/containerctl.sock \
        -X POST -H 'content-type: application/json' -d "$body" http://localhost/api/v1/units/sneak/preview </dev/null)
    expect_contains "the preview names the allow-list rule" "$out" '"rule":"host paths allow-list"'
    expect_contains "the preview names the resolved path" "$out" '/etc'
    rc=$(status_of as alice new sneak --image ctl-test/busybox --version 1)
    expect_eq "operator creates the plain unit" "$rc" 0
    rc=$(status_of as alice set sneak 'container.volumes=["/srv/containers/sneaky:/data"]')
    expect_eq "the write refuses what the preview refused" "$rc" 4
    cli rm sneak
    tb_host "$HOST" rm /srv/containers/sneaky </dev/null
}

# Issue 11, item 3: what is checked is what runs.

# A directory below the allowed root passes the daemon's check when the unit is saved, then
# becomes a symlink to / (as another of the operator's containers, with the parent mounted, could
# make it). The runner walks the path again right before Docker gets it: exit 78, nothing mounted.
t_host_path_swapped_for_a_symlink_after_saving_is_refused_at_start() {
    tb_host "$HOST" sh -ec 'rm -rf /srv/containers/swap && mkdir -p /srv/containers/swap' </dev/null
    as alice new swap --image ctl-test/busybox --version 1 -- sh -c 'ls /data; exec sleep 1000'
    as alice set swap 'container.volumes=["/srv/containers/swap:/data"]' container.init=true
    tb_host "$HOST" sh -ec 'rmdir /srv/containers/swap && ln -s / /srv/containers/swap' </dev/null
    local rc status
    rc=$(status_of as alice start swap)
    expect "starting the swapped unit fails" test "$rc" -ne 0
    wait_prop 20 swap ActiveState failed
    expect_eq "the runner's exit status" "$(prop swap ExecMainStatus)" 78
    status=$(prop swap StatusText)
    expect_contains "STATUS= names the symlink" "$status" "/srv/containers/swap (-> /) is a symbolic link"
    expect_contains "STATUS= says what to do" "$status" "ask an admin"
    expect_contains "the journal names the path" "$(journal swap)" "host path /srv/containers/swap is refused"
    expect_eq "78 is not restarted" "$(prop swap NRestarts)" 0
    expect "no container was created, so the host's root was not mounted" container_absent swap
    # Put back as it was checked: the same unit starts.
    tb_host "$HOST" sh -ec 'rm /srv/containers/swap && mkdir /srv/containers/swap' </dev/null
    sctl reset-failed containerctl@swap.service
    as alice start swap
    wait_prop 20 swap ActiveState active
    expect_eq "the real directory is what Docker mounted" \
        "$(tb_host "$HOST" docker inspect -f '{{range .Mounts}}{{.Source}}{{end}}' containerctl-swap </dev/null)" \
        /srv/containers/swap
    cli rm swap --yes
    tb_host "$HOST" rmdir /srv/containers/swap </dev/null
}

# The allowed root is bind-mounted nosuid,nodev by the generator: a container running as root
# that makes a setuid-root program or a device node there gives the host neither.
t_allowed_host_paths_give_the_host_no_setuid_programs_or_devices() {
    tb_host "$HOST" sh -ec 'rm -rf /srv/containers/suid && mkdir -p /srv/containers/suid &&
        cp /usr/bin/id /srv/containers/suid/id && chown bob /srv/containers/suid/id' </dev/null
    as alice new suid --image ctl-test/busybox --version 1 -- \
        sh -c 'chown 0:0 /data/id && chmod 4755 /data/id && mknod /data/null c 1 3 && echo suid-made; exec sleep 1000'
    as alice set suid 'container.volumes=["/srv/containers/suid:/data"]' container.init=true
    as alice start suid
    wait_prop 20 suid ActiveState active
    wait_journal 20 suid suid-made
    local options
    options=$(tb_host "$HOST" findmnt -no OPTIONS /srv/containers </dev/null)
    expect_contains "the allowed root is nosuid" "$options" nosuid
    expect_contains "the allowed root is nodev" "$options" nodev
    expect_contains "the setuid bit is on the file" \
        "$(tb_host "$HOST" stat -c %A /srv/containers/suid/id </dev/null)" "rws"
    expect_eq "a setuid-root program from the container runs as bob on the host" \
        "$(tb_host "$HOST" runuser -u bob -- /srv/containers/suid/id -u </dev/null)" \
        "$(tb_host "$HOST" id -u bob </dev/null)"
    expect "a device node from the container cannot be opened on the host" \
        _fails tb_host "$HOST" sh -c 'echo x > /srv/containers/suid/null' </dev/null
    cli rm suid --yes
    tb_host "$HOST" rm -rf /srv/containers/suid </dev/null
}

# Containers run with no-new-privileges; only an admin may turn it off.
t_containers_run_with_no_new_privileges() {
    as alice new nnp --image ctl-test/busybox --version 1 -- \
        sh -c 'grep NoNewPrivs /proc/self/status; exec sleep 1000'
    as alice set nnp container.init=true
    as alice start nnp
    wait_prop 20 nnp ActiveState active
    wait_journal 20 nnp NoNewPrivs
    expect "the container's processes have NoNewPrivs: 1" _journal_matches nnp 'NoNewPrivs:[[:space:]]+1'
    local rc
    rc=$(status_of as alice set nnp container.no_new_privileges=false)
    expect_eq "an operator may not turn no-new-privileges off" "$rc" 4
    cli rm nnp --yes
}

_fails() { ! "$@"; }

_journal_matches() {
    local all
    all=$(journal "$1")
    grep -qE -- "$2" <<<"$all"
}

# Issue 12: a low log_rate_limit drops lines, and status shows journald's report of the drop.
t_log_rate_limit_drop_shows_in_status() {
    unit_write lograte <<EOF
[container]
image = "ctl-test/busybox"
version = "1"
init = true
args = ["sh", "-c", "seq 20000; exec sleep 1000"]
[service]
log_rate_limit = "100/2s"
EOF
    reload
    expect_contains "drop-in" "$(tb_host "$HOST" systemctl cat containerctl@lograte.service </dev/null)" \
        $'LogRateLimitIntervalSec=2s\nLogRateLimitBurst=100'
    cli start lograte
    # No more output after seq: journald would report the drop only with the unit's next line,
    # which the runner writes right after the window.
    tb_wait_for 20 "the drop in containerctl status" _status_has lograte "Log drop: "
    expect_contains "the runner's note" "$(journal lograte)" "the output went over log_rate_limit (100 lines per 2s)"
    local status json
    status=$(cli status lograte)
    expect_contains "status" "$status" "by journald's rate limit (service.log_rate_limit)"
    json=$(cli status lograte --json)
    expect_contains "status --json" "$json" '"log_dropped":{'
    expect_contains "status --json" "$json" 'messages from containerctl@lograte.service'
    cli stop lograte
}

_status_has() {
    cli status "$1" | has_text "$2"
}

# Issue 12: a start of a unit that requires a missing unit names it, and leaves no failed entry.
t_requires_missing_unit_names_it_and_reset_failed() {
    unit_write needy <<EOF
[container]
image = "ctl-test/busybox"
version = "1"
init = true
args = ["sleep", "1000"]
[service]
requires = ["ghost"]
EOF
    unit_write needsys <<EOF
[container]
image = "ctl-test/busybox"
version = "1"
init = true
args = ["sleep", "1000"]
[service]
requires = ["nosuch-dependency.service"]
EOF
    reload
    local out rc=0
    out=$(tb_host "$HOST" containerctl start needy </dev/null 2>&1) || rc=$?
    expect_eq "exit status of a start with a missing requirement" "$rc" 1
    expect_contains "start error" "$out" "it requires containerctl@ghost.service, but unit ghost has no unit file"
    expect "no failed ghost in list" _list_lacks ghost
    rc=0
    out=$(tb_host "$HOST" containerctl start needsys </dev/null 2>&1) || rc=$?
    expect_eq "exit status of a start requiring a missing systemd unit" "$rc" 1
    expect_contains "start error" "$out" "it requires nosuch-dependency.service, which does not exist"
    # Started behind the daemon's back, the ghost instance fails (no unit file) and is listed.
    sctl start containerctl@needy </dev/null 2>/dev/null || true
    tb_wait_for 20 "failed ghost in list" _list_has ghost
    out=$(cli reset-failed)
    expect_contains "reset-failed" "$out" "ghost: failed state cleared"
    expect "no failed ghost in list after reset-failed" _list_lacks ghost
    rc=$(status_of as bob reset-failed needy)
    expect "bob may not reset-failed" test "$rc" != 0
    expect_contains "reset-failed NAME" "$(cli reset-failed needy)" "needy: not failed"
    expect_contains "audit in the daemon's journal" \
        "$(tb_host "$HOST" journalctl --no-pager -o cat -u containerctld.service </dev/null)" "reset-failed ghost: ok"
    unit_rm needy
    unit_rm needsys
    reload
}

_list_has() {
    local all
    all=$(cli list)
    grep -qw -- "$1" <<<"$all"
}

_list_lacks() {
    ! cli list | grep -qw -- "$1"
}
