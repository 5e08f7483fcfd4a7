# System scenarios for unit files changed by hand (issue 12): hand edits in the history, and the
# file on disk against what systemd loaded. Uses the helpers of scenarios_daemon.sh (cli, as,
# status_of) and scenarios_policy.sh (audit_has).

# history_has NAME TEXT: `history NAME --json` (spaces removed) contains TEXT.
history_has() {
    tb_host "$HOST" sh -c "containerctl history $1 --json | tr -d ' \n'" </dev/null | has_text "$2"
}

# revision_of NAME REV: `"action":"…","actor":"…"` of one revision, from `history --json`.
revision_of() {
    tb_host "$HOST" sh -c "containerctl history $1 --json | tr -d '\n'" </dev/null |
        grep -o "{[^}]*\"rev\": *$2[,}][^}]*}" | grep -o '"actor": *"[^"]*"\|"action": *"[^"]*"' |
        tr -d ' ' | sort | paste -sd, -
}

hand_edit() {
    tb_host "$HOST" sed -i "$2" "/etc/containerctl/units/$1.toml" </dev/null
}

t_files_hand_written_unit_has_history() {
    unit_write handw <<'EOF'
[container]
image = "ctl-test/busybox"
version = "1"
args = ["sleep", "1000"]
EOF
    reload
    tb_wait_for 20 "a revision of handw by its file" history_has handw '"actor":"file(uid0root)"'
    expect_eq "revision 1 of handw" "$(revision_of handw 1)" '"action":"file","actor":"file(uid0root)"'
    expect "the audit has the hand edit" audit_has '"actor":"file (uid 0 root)"'
    expect_contains "history" "$(cli history handw)" "file (uid 0 root)"
    unit_rm handw
    reload
    tb_wait_for 20 "the removal of handw's file in its history" history_has handw '"action":"rm"'
    expect_eq "revision 2 of handw" "$(revision_of handw 2)" '"action":"rm","actor":"file"'
}

# A stop keeps the unit's container for its next start; once the unit file is removed by hand
# nothing would start it again, so the daemon-reload that follows removes it, but never one
# that still runs.
t_files_hand_removed_unit_loses_its_stopped_container() {
    local name
    for name in handc handr; do
        unit_write $name <<'EOF'
[container]
image = "ctl-test/busybox"
version = "1"
init = true
args = ["sleep", "1000"]
[service]
enabled = false
EOF
    done
    reload
    sctl start containerctl@handc containerctl@handr
    sctl stop containerctl@handc
    expect "handc's stopped container is kept" test -n "$(tb_host "$HOST" docker ps -aq --filter 'name=^containerctl-handc$' </dev/null)"
    unit_rm handc
    unit_rm handr
    reload
    tb_wait_for 30 "handc's container removed after its file was" container_absent handc
    expect "handr's container, which runs, is kept" test -n "$(container_id handr)"
    expect_eq "handr is still active" "$(prop handr ActiveState)" active
    sctl stop containerctl@handr
    tb_host "$HOST" docker rm -f containerctl-handr >/dev/null </dev/null
}

t_files_hand_edit_then_api_edit_then_revert() {
    cli new handa --image ctl-test/busybox --version 1 -- sleep 1000
    hand_edit handa 's/sleep", "1000/sleep", "2000/'
    # No daemon-reload: the API edit must record the hand edit first, as its own revision.
    cli set handa description=from-the-api
    expect_eq "revision 2 of handa" "$(revision_of handa 2)" '"action":"file","actor":"file(uid0root)"'
    expect_contains "revision 3 of handa" "$(revision_of handa 3)" '"action":"set"'
    expect_contains "the API edit keeps the hand edit" "$(cli cat handa)" 2000
    local diff
    diff=$(cli diff handa 2 3)
    expect_contains "diff of the API edit" "$diff" "+description"
    expect "the API edit's diff leaves the hand edit out" test "$(grep -c '^[-+]args' <<<"$diff")" == 0
    cli revert handa 2
    local text
    text=$(cli cat handa)
    expect_contains "the file after reverting the API edit" "$text" 2000
    expect "no description after the revert" test "${text/from-the-api/}" == "$text"
    expect_contains "the revert's revision" "$(revision_of handa 4)" '"action":"revert"'
}

t_files_edit_while_daemon_stopped_is_recorded_at_start() {
    cli new handd --image ctl-test/busybox --version 1 -- sleep 1000
    sctl stop containerctld
    hand_edit handd 's/sleep", "1000/sleep", "3000/'
    sctl start containerctld
    tb_wait_for 30 "containerctld answers" cli list
    # Recorded at start, before any daemon-reload.
    expect_eq "revision 2 of handd" "$(revision_of handd 2)" '"action":"file","actor":"file(uid0root)"'
    expect_contains "history" "$(cli history handd)" "file (uid 0 root)"
}

t_files_changed_on_disk_is_shown() {
    cli new handc --image ctl-test/busybox --version 1 -- sleep 1000
    expect "status before a hand edit" test "$(cli status handc | grep -c 'changed on disk')" == 0
    hand_edit handc 's/sleep", "1000/sleep", "4000/'
    # shellcheck disable=SC2016 # the backquotes are the message's
    local note='changed on disk: run `systemctl daemon-reload`'
    expect_contains "status" "$(cli status handc)" "$note"
    expect_contains "list" "$(tb_host "$HOST" containerctl list </dev/null 2>&1)" "handc: $note"
    expect_contains "cat" "$(tb_host "$HOST" containerctl cat handc </dev/null 2>&1)" "handc: $note"
    expect_contains "list --json" "$(cli list --json | tr -d ' \n')" '"changed_on_disk":true'
    reload
    expect "status after daemon-reload" test "$(cli status handc | grep -c 'changed on disk')" == 0
}

t_files_restart_refuses_an_invalid_file() {
    cli new handr --image ctl-test/busybox --version 1 -- sleep 1000
    cli set handr container.init=true
    cli start handr
    local id rc out
    id=$(container_id handr)
    hand_edit handr 's/^version/versoin/'
    rc=0
    out=$(tb_host "$HOST" containerctl restart handr </dev/null 2>&1) || rc=$?
    expect_eq "exit status of a restart into an invalid file" "$rc" 1
    expect_contains "the refusal" "$out" "is not valid: not restarting handr"
    expect_contains "the diagnostic" "$out" versoin
    expect_eq "the container after the refused restart" "$(container_id handr)" "$id"
    expect_eq "ActiveState after the refused restart" "$(prop handr ActiveState)" active
    # A valid edit not loaded yet: the restart runs the old definition and says so.
    hand_edit handr 's/^versoin/version/; s/sleep", "1000/sleep", "5000/'
    out=$(tb_host "$HOST" containerctl restart handr </dev/null 2>&1)
    expect_contains "the restart's warning" "$out" "restarted with its old definition"
    cli stop handr
}

# metric_lines NAME: the /metrics lines of unit NAME (viewer token in /tmp/files-viewer).
metric_lines() {
    tb_host "$HOST" sh -c 'curl -sf -H "Authorization: Bearer $(cat /tmp/files-viewer)" http://127.0.0.1:5000/metrics |
        grep -F "unit=\"$1\"" || true' sh "$1" </dev/null
}
# units_entry NAME: unit NAME's object in GET /api/v1/units over HTTP (viewer token), spaces removed.
units_entry() {
    tb_host "$HOST" sh -c 'curl -sf -H "Authorization: Bearer $(cat /tmp/files-viewer)" http://127.0.0.1:5000/api/v1/units |
        tr -d " \n" | grep -o "{\"name\":\"$1\"[^}]*}" || true' sh "$1" </dev/null
}
_stream_has() { tb_host "$HOST" grep -qF -- "$1" /tmp/files-stream.out </dev/null; }
_units_entry_has() { [[ $(units_entry "$1") == *"$2"* ]]; }

# The daemon keeps its unit list between requests (daemon/listing.rs): hand edits, with and
# without a daemon-reload, API edits, and state changes must all be in the next listing of
# GET /units and /metrics, and reach an open event stream without any request.
t_files_hand_edits_show_in_the_next_listing() {
    cli token create --name files-viewer --role viewer --ttl 1h | tb_host "$HOST" sh -c 'cat > /tmp/files-viewer'
    # Listed once before each change, so what follows is the kept list brought up to date.
    units_entry handl >/dev/null
    tb_host "$HOST" sh -c 'printf "%s\n" "description = \"by hand\"" "[container]" "image = \"ctl-test/busybox\"" \
        "version = \"1\"" "args = [\"sleep\", \"1000\"]" "[service]" "restart = \"no\"" \
        > /etc/containerctl/units/handl.toml' </dev/null
    local e
    e=$(units_entry handl)
    expect_contains "a new file by hand, GET /units" "$e" '"description":"byhand"'
    expect_contains "a new file by hand is not loaded yet" "$e" '"changed_on_disk":true'
    expect_contains "a new file by hand, /metrics" "$(metric_lines handl)" 'containerctl_unit_active{unit="handl"} 0'
    reload
    expect_contains "loaded after a daemon-reload" "$(units_entry handl)" '"changed_on_disk":false'
    # An edit in place (sed -i replaces the file), then a write into the same file.
    hand_edit handl 's/by hand/edited by hand/'
    e=$(units_entry handl)
    expect_contains "an edit by hand" "$e" '"description":"editedbyhand"'
    expect_contains "an edit by hand is not loaded yet" "$e" '"changed_on_disk":true'
    tb_host "$HOST" sh -c 'sed "s/edited by hand/written in place/" /etc/containerctl/units/handl.toml > /tmp/handl.toml &&
        cat /tmp/handl.toml > /etc/containerctl/units/handl.toml' </dev/null
    expect_contains "a write into the file" "$(units_entry handl)" '"description":"writteninplace"'
    reload
    expect_contains "loaded again" "$(units_entry handl)" '"changed_on_disk":false'
    # An invalid edit shows its error; the API's own edit shows at once.
    hand_edit handl 's/^version/versoin/'
    expect_contains "an invalid edit" "$(units_entry handl)" '"valid":false'
    hand_edit handl 's/^versoin/version/'
    cli set handl description=from-the-api >/dev/null
    e=$(units_entry handl)
    expect_contains "an API edit" "$e" '"description":"from-the-api"'
    expect_contains "an API edit is loaded" "$e" '"changed_on_disk":false'
    # State: started, stopped, a container that dies.
    cli start handl
    expect_contains "started, GET /units" "$(units_entry handl)" '"active_state":"active"'
    expect_contains "started, /metrics" "$(metric_lines handl)" 'containerctl_unit_active{unit="handl"} 1'
    tb_host "$HOST" docker kill containerctl-handl >/dev/null </dev/null
    # restart = "no": the unit fails with its container, and both lists say so.
    tb_wait_for 20 "the killed container's unit listed as failed" _units_entry_has handl '"active_state":"failed"'
    expect_contains "failed, /metrics" "$(metric_lines handl)" 'containerctl_unit_state{unit="handl",state="failed"} 1'
    expect_contains "failed, /metrics" "$(metric_lines handl)" 'containerctl_unit_last_exit_status{unit="handl"} 137'
    # An open event stream gets a hand edit with no request in between.
    tb_host "$HOST" sh -c 'curl -sN -H "Authorization: Bearer $(cat /tmp/files-viewer)" http://127.0.0.1:5000/api/v1/stream \
        > /tmp/files-stream.out 2>&1 & echo $! > /tmp/files-stream.pid' </dev/null
    tb_wait_for 10 "the stream's first list" _stream_has '"name":"handl"'
    hand_edit handl 's/from-the-api/seen-by-the-stream/'
    tb_wait_for 10 "the hand edit in the open stream" _stream_has 'seen-by-the-stream'
    tb_host "$HOST" sh -c 'kill "$(cat /tmp/files-stream.pid)"' </dev/null
    # Removed by hand (a failed unit stays listed while it is failed): gone from both at once.
    cli reset-failed handl >/dev/null
    unit_rm handl
    expect_eq "removed by hand, GET /units" "$(units_entry handl)" ""
    expect_eq "removed by hand, /metrics" "$(metric_lines handl)" ""
    reload
}
