# System scenarios for container units (issue 2). Each t_* function is one test; it returns
# non-zero (with a message on stderr) on failure. Unit names are unique per scenario so
# scenarios never see each other's units.

# init = true: tini forwards SIGTERM, so `sleep` stops at once instead of after stop_timeout.
BUSYBOX='image = "ctl-test/busybox"
version = "1"
init = true'

t_start_stop_restart_status() {
    unit_write web <<EOF
description = "Web test unit"
[container]
$BUSYBOX
args = ["sh", "-c", "echo serving; exec httpd -f -p 8080"]
EOF
    reload
    sctl start containerctl@web
    expect_eq "ActiveState after start" "$(prop web ActiveState)" active
    local id1 id2 status
    id1=$(container_id web)
    expect "a running container containerctl-web" test -n "$id1"
    status=$(sctl status --no-pager containerctl@web || true)
    expect_contains "systemctl status" "$status" "Web test unit"
    expect_contains "systemctl status" "$status" "Status: \"running container ${id1:0:12}\""
    sctl restart containerctl@web
    id2=$(container_id web)
    expect_eq "a restart of an unchanged definition starts the same container" "$id2" "$id1"
    wait_journal 20 web "restarted container ${id1:0:12}"
    sctl stop containerctl@web
    expect_eq "ActiveState after stop" "$(prop web ActiveState)" inactive
    expect_eq "stop keeps the container, stopped" "$(container_state web)" "false"
}

container_state() {
    tb_host "$HOST" docker inspect -f '{{.State.Running}}' "containerctl-$1" </dev/null
}

# A stopped container is started again only while it is what the definition and its image make
# (issue 17): a hand edit + daemon-reload, or image:version naming another image, replaces it.
t_stopped_container_is_reused_only_while_unchanged() {
    unit_write reuse <<EOF
[container]
image = "ctl-test/reuse"
version = "1"
init = true
args = ["sh", "-c", "echo reuse-one; exec sleep 1000"]
EOF
    tb_host "$HOST" docker tag ctl-test/busybox:1 ctl-test/reuse:1 </dev/null
    reload
    sctl start containerctl@reuse
    local id1 id2 id3 id4
    id1=$(container_id reuse)
    sctl stop containerctl@reuse
    sctl start containerctl@reuse
    id2=$(container_id reuse)
    expect_eq "stop + start of an unchanged definition: the same container" "$id2" "$id1"
    sctl stop containerctl@reuse
    # A hand edit, then daemon-reload: the next start makes a new container from the new text.
    tb_host "$HOST" sed -i 's/reuse-one/reuse-two/' /etc/containerctl/units/reuse.toml </dev/null
    reload
    sctl start containerctl@reuse
    id3=$(container_id reuse)
    expect "a changed definition gets a new container" test -n "$id3" -a "$id3" != "$id1"
    wait_journal 20 reuse reuse-two
    wait_journal 20 reuse "replacing stale container containerctl-reuse: its definition changed"
    sctl stop containerctl@reuse
    # The tag now names another image (a pull of a moved tag, a docker tag): a new container.
    tb_host "$HOST" sh -ec 'docker create --name reuse-commit ctl-test/busybox:1 true >/dev/null
        docker commit reuse-commit ctl-test/reuse:1 >/dev/null; docker rm reuse-commit >/dev/null' </dev/null
    sctl start containerctl@reuse
    id4=$(container_id reuse)
    expect "a moved tag gets a new container" test -n "$id4" -a "$id4" != "$id3"
    expect_eq "the new container runs the image the tag names" \
        "$(tb_host "$HOST" docker inspect -f '{{.Image}}' containerctl-reuse </dev/null)" \
        "$(tb_host "$HOST" docker image inspect -f '{{.Id}}' ctl-test/reuse:1 </dev/null)"
    sctl stop containerctl@reuse
}

t_output_reaches_the_journal() {
    unit_write logs <<EOF
[container]
$BUSYBOX
args = ["sh", "-c", "echo to-stdout-1; echo to-stderr-1 >&2; exec sleep 1000"]
EOF
    reload
    sctl start containerctl@logs
    wait_journal 20 logs to-stdout-1
    wait_journal 20 logs to-stderr-1
    local warnings
    warnings=$(tb_host "$HOST" journalctl --no-pager -o cat -p warning -u containerctl@logs.service </dev/null)
    expect_contains "warning-priority lines" "$warnings" to-stderr-1
    if [[ $warnings == *to-stdout-1* ]]; then
        echo "stdout must not be logged at warning priority" >&2
        return 1
    fi
    sctl stop containerctl@logs
}

t_restart_on_failure_restarts_and_no_leaves_it_down() {
    unit_write crash <<EOF
[container]
$BUSYBOX
args = ["sh", "-c", "echo crashing; sleep 0.5; exit 3"]
[service]
restart = "on-failure"
restart_sec = "500ms"
EOF
    unit_write once <<EOF
[container]
$BUSYBOX
args = ["sh", "-c", "echo failing-once; exit 4"]
[service]
restart = "no"
EOF
    reload
    sctl start containerctl@crash
    wait_restarts 30 crash 2
    expect_eq "restarts reuse one container" \
        "$(tb_host "$HOST" docker ps -aq --filter label=io.containerctl.unit=crash </dev/null | wc -l)" 1
    sctl stop containerctl@crash
    sctl reset-failed containerctl@crash 2>/dev/null || true
    sctl start containerctl@once || true
    wait_prop 20 once ActiveState failed
    expect_eq "ExecMainStatus of a unit with restart=no" "$(prop once ExecMainStatus)" 4
    expect_eq "NRestarts of a unit with restart=no" "$(prop once NRestarts)" 0
    local status
    status=$(sctl status --no-pager containerctl@once || true)
    expect_contains "systemctl status" "$status" "status=4"
    expect_eq "the exited container is kept for inspection" \
        "$(tb_host "$HOST" docker inspect -f '{{.State.Running}} {{.State.ExitCode}}' containerctl-once </dev/null)" \
        "false 4"
}

# restart_sec counts from the container's exit (runner/exits.rs): systemd waits all but 250 ms of
# it, the runner prepares and holds the start for the rest; a start after a stop is not held.
t_restart_sec_counts_from_the_exit() {
    unit_write fromexit <<EOF
[container]
$BUSYBOX
args = ["sh", "-c", "if [ -e /once ]; then exec sleep 1000; fi; touch /once; sleep 0.3; exit 3"]
[service]
restart = "on-failure"
restart_sec = "1s"
EOF
    reload
    expect_eq "systemd's RestartSec= is restart_sec less the runner's lead" "$(prop fromexit RestartUSec)" 750ms
    local since
    since=$(tb_host "$HOST" date +%s.%N </dev/null)
    sctl start containerctl@fromexit
    wait_restarts 30 fromexit 1
    wait_prop 30 fromexit ActiveState active
    local gap
    gap=$(tb_host "$HOST" docker events --since "$since" --until "$(tb_host "$HOST" date +%s.%N </dev/null)" \
        --filter container=containerctl-fromexit --filter event=die --filter event=start \
        --format '{{.TimeNano}} {{.Action}}' </dev/null |
        awk '$2 == "die" && !d {d = $1} $2 == "start" && d {printf "%d\n", ($1 - d) / 1000000; exit}')
    expect "the restart comes no earlier than restart_sec after the exit (die -> start ${gap:-none} ms)" \
        test "${gap:-0}" -ge 1000
    expect "and not restart_sec plus systemd's delay (die -> start ${gap:-none} ms)" test "${gap:-99999}" -lt 4000
    local journal
    journal=$(journal fromexit)
    expect_contains "the runner says how long after the exit it restarted" "$journal" "ms after it exited (restart_sec 1000 ms)"
    local asked
    asked=$(grep -o '[0-9]* ms after it exited' <<<"$journal" | head -1 | cut -d' ' -f1)
    # systemd waited 750 ms, so without the runner's hold the start would be asked for at ~800 ms.
    expect "the runner asked for the start restart_sec after the exit, not earlier (${asked:-none} ms)" \
        test "${asked:-0}" -ge 1000
    expect_eq "the exit records are root's alone" \
        "$(tb_host "$HOST" stat -c '%a %U' /run/containerctl/exits /run/containerctl/exits/fromexit </dev/null | tr '\n' ' ')" \
        "700 root 600 root "
    # A stop records nothing: the start after it is not held.
    local before last
    before=$(restarted_lines fromexit | wc -l)
    sctl restart containerctl@fromexit
    tb_wait_for 20 "the runner's line for the start after the stop" more_restarted_lines fromexit "$before"
    last=$(restarted_lines fromexit | tail -1)
    expect "a start after a stop is not held: $last" not_held "$last"
    sctl stop containerctl@fromexit
}
# A failed run (here a pull from a registry that is not there, which restarting may mend) is held
# before anything by the next runner, so failing runs come restart_sec apart, not systemd's 750 ms.
t_a_failed_run_restarts_restart_sec_after_it_ended() {
    unit_write nopull <<EOF
[container]
image = "127.0.0.1:9/nothing"
version = "1"
[service]
restart = "on-failure"
restart_sec = "1s"
EOF
    reload
    sctl start containerctl@nopull || true
    tb_wait_for 30 "two pull attempts of nopull" pulls_at_least nopull 2
    sctl stop containerctl@nopull
    sctl reset-failed containerctl@nopull 2>/dev/null || true
    local gap
    gap=$(pull_times nopull | awk 'NR == 1 {a = $1} NR == 2 {printf "%d\n", ($1 - a) * 1000; exit}')
    expect "failing runs restart_sec apart: ${gap:-none} ms between the pulls" test "${gap:-0}" -ge 1000
}
pull_times() {
    tb_host "$HOST" journalctl -u "containerctl@$1" --no-pager -o short-unix </dev/null |
        awk '/pulling 127.0.0.1:9\/nothing:1$/ {print $1}'
}
pulls_at_least() { (($(pull_times "$1" | wc -l) >= $2)); }
restarted_lines() { journal "$1" | grep 'restarted container'; }
more_restarted_lines() { (( $(restarted_lines "$1" | wc -l) > $2 )); }
not_held() { [[ $1 == 'restarted container '* && $1 != *'after it exited'* ]]; }

t_unhealthy_container_is_restarted() {
    unit_write sick <<EOF
[container]
$BUSYBOX
args = ["sh", "-c", "touch /tmp/ok; echo healthy-for-a-while; sleep 4; rm /tmp/ok; exec sleep 1000"]
[health]
cmd = ["test", "-f", "/tmp/ok"]
interval = "1s"
timeout = "1s"
retries = 2
EOF
    reload
    sctl start containerctl@sick
    expect_eq "ActiveState once healthy" "$(prop sick ActiveState)" active
    expect_contains "StatusText" "$(prop sick StatusText)" healthy
    wait_journal 30 sick "unhealthy: 2 checks failed in a row"
    wait_restarts 30 sick 1
    # Its restart_sec (the default, 2 s) counts from the unhealthy container's exit too.
    wait_journal 30 sick "ms after it exited (restart_sec 2000 ms)"
    sctl stop containerctl@sick
}

t_ready_waits_for_health() {
    unit_write slow <<EOF
[container]
$BUSYBOX
args = ["sh", "-c", "sleep 3; touch /tmp/ready; exec sleep 1000"]
[health]
cmd = ["test", "-f", "/tmp/ready"]
interval = "1s"
retries = 10
EOF
    reload
    local start end
    start=$(date +%s%N)
    sctl start containerctl@slow
    end=$(date +%s%N)
    expect "systemctl start returns only after the health check passed (took $(((end - start) / 1000000)) ms)" \
        test $(((end - start) / 1000000)) -ge 2500
    expect_eq "ActiveState" "$(prop slow ActiveState)" active
    sctl stop containerctl@slow
}

t_requires_and_after_ordering() {
    unit_write store <<EOF
[container]
$BUSYBOX
args = ["sh", "-c", "sleep 2; touch /tmp/up; exec sleep 1000"]
[health]
cmd = ["test", "-f", "/tmp/up"]
interval = "1s"
[service]
enabled = false
EOF
    unit_write app <<EOF
[container]
$BUSYBOX
args = ["sleep", "1000"]
[service]
requires = ["store"]
after = ["store"]
enabled = false
EOF
    reload
    sctl start containerctl@app
    expect_eq "store pulled in by requires" "$(prop store ActiveState)" active
    local store_ready app_start
    store_ready=$(prop store ActiveEnterTimestampMonotonic)
    app_start=$(prop app ExecMainStartTimestampMonotonic)
    expect "app started ($app_start) after store was ready ($store_ready)" test "$app_start" -gt "$store_ready"
    sctl stop containerctl@store
    expect_eq "app stopped with the unit it requires" "$(prop app ActiveState)" inactive
}

t_devices_are_mapped_and_missing_ones_fail_clearly() {
    unit_write dev <<EOF
[container]
$BUSYBOX
devices = ["/dev/zero:/dev/xzero:r"]
args = ["sh", "-c", "head -c 3 /dev/xzero | od -An -tx1; exec sleep 1000"]
EOF
    unit_write nodev <<EOF
[container]
$BUSYBOX
devices = ["/dev/ttyUSB9"]
args = ["sleep", "1000"]
EOF
    reload
    sctl start containerctl@dev
    wait_journal 20 dev "00 00 00"
    sctl stop containerctl@dev
    sctl start containerctl@nodev 2>/dev/null || true
    wait_prop 20 nodev ActiveState failed
    expect_eq "exit status for a missing device" "$(prop nodev ExecMainStatus)" 78
    expect_contains "StatusText" "$(prop nodev StatusText)" "device /dev/ttyUSB9 is missing"
    expect_eq "no restart loop for a configuration error" "$(prop nodev NRestarts)" 0
}

t_digest_pin_is_enforced() {
    local id
    id=$(tb_host "$HOST" docker image inspect --format '{{.Id}}' ctl-test/busybox:1 </dev/null)
    unit_write pinned <<EOF
[container]
$BUSYBOX
digest = "$id"
args = ["sleep", "1000"]
EOF
    unit_write wrongpin <<EOF
[container]
$BUSYBOX
digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
args = ["sleep", "1000"]
EOF
    reload
    sctl start containerctl@pinned
    expect_eq "ActiveState with the right digest" "$(prop pinned ActiveState)" active
    sctl stop containerctl@pinned
    sctl start containerctl@wrongpin 2>/dev/null || true
    wait_prop 20 wrongpin ActiveState failed
    expect_contains "StatusText" "$(prop wrongpin StatusText)" \
        "refusing to start: ctl-test/busybox:1 is $id, but the unit pins digest sha256:0000"
    expect "no container for a refused digest" container_absent wrongpin
}

t_invalid_unit_is_skipped_and_others_start() {
    unit_write broken <<EOF
[container]
imgae = "ctl-test/busybox"
version = "1"
EOF
    unit_write fine <<EOF
[container]
$BUSYBOX
args = ["sleep", "1000"]
EOF
    reload
    tb_wait_for 10 "generator message in the journal" _generator_logged "broken.toml:2:1: unknown key"
    local log
    log=$(tb_host "$HOST" journalctl --no-pager -o cat -t containerctl-generator </dev/null)
    expect_contains "generator message" "$log" "did you mean \`image\`?"
    sctl start containerctl@fine
    expect_eq "the valid unit runs" "$(prop fine ActiveState)" active
    sctl start containerctl@broken 2>/dev/null || true
    wait_prop 20 broken ActiveState failed
    expect_contains "StatusText of the broken unit" "$(prop broken StatusText)" "no valid definition for unit broken"
    sctl stop containerctl@fine
    unit_rm broken
    reload
}

_generator_logged() {
    tb_host "$HOST" journalctl --no-pager -o cat -t containerctl-generator </dev/null | has_text "$1"
}

t_changed_args_apply_after_reload_and_restart() {
    unit_write args <<EOF
[container]
$BUSYBOX
args = ["sh", "-c", "echo version-one; exec sleep 1000"]
EOF
    reload
    sctl start containerctl@args
    wait_journal 20 args version-one
    unit_write args <<EOF
[container]
$BUSYBOX
args = ["sh", "-c", "echo version-two; exec sleep 1000"]
EOF
    reload
    sctl restart containerctl@args
    wait_journal 20 args version-two
    sctl stop containerctl@args
}

t_broken_edit_keeps_the_running_definition() {
    unit_write keep <<EOF
[container]
$BUSYBOX
args = ["sh", "-c", "echo keep-running; exec sleep 1000"]
EOF
    reload
    sctl start containerctl@keep
    local id
    id=$(container_id keep)
    unit_write keep <<EOF
[container]
$BUSYBOX
args = "not a list"
EOF
    reload
    expect_eq "the running unit is untouched" "$(prop keep ActiveState)" active
    expect_eq "the same container runs" "$(container_id keep)" "$id"
    sctl stop containerctl@keep
}

t_killed_runner_is_replaced_and_adopts_the_container() {
    unit_write adopt <<EOF
[container]
$BUSYBOX
args = ["sh", "-c", "echo adopt-me; exec sleep 1000"]
[service]
restart_sec = "1s"
EOF
    reload
    sctl start containerctl@adopt
    local id
    id=$(container_id adopt)
    sctl kill --kill-who=main --signal=KILL containerctl@adopt
    wait_restarts 30 adopt 1
    wait_prop 30 adopt ActiveState active
    expect_eq "the container survived the runner" "$(container_id adopt)" "$id"
    wait_journal 20 adopt "adopted running container ${id:0:12}"
    sctl stop containerctl@adopt
    expect_eq "stop after adoption stops the container" "$(container_state adopt)" "false"
}

t_enabled_units_come_back_after_reboot() {
    unit_write boot <<EOF
[container]
$BUSYBOX
args = ["sleep", "1000"]
EOF
    unit_write manual <<EOF
[container]
$BUSYBOX
args = ["sleep", "1000"]
[service]
enabled = false
EOF
    reload
    tb_host_reboot "$HOST"
    wait_prop 60 boot ActiveState active
    expect "the enabled unit's container runs" test -n "$(container_id boot)"
    expect_eq "a unit with enabled = false stays down" "$(prop manual ActiveState)" inactive
    sctl stop containerctl@boot
}

t_foreign_container_is_not_touched() {
    tb_host "$HOST" docker run -d --name containerctl-foreign ctl-test/busybox:1 sleep 1000 </dev/null >/dev/null
    unit_write foreign <<EOF
[container]
$BUSYBOX
args = ["sleep", "1000"]
EOF
    reload
    sctl start containerctl@foreign 2>/dev/null || true
    wait_prop 20 foreign ActiveState failed
    expect_contains "StatusText" "$(prop foreign StatusText)" "exists that containerctl did not create"
    expect_eq "the foreign container still runs" \
        "$(tb_host "$HOST" docker inspect -f '{{.State.Running}}' containerctl-foreign </dev/null)" true
    tb_host "$HOST" docker rm -f containerctl-foreign </dev/null >/dev/null
}

t_stop_timeout_kills_a_container_that_ignores_sigterm() {
    unit_write stubborn <<EOF
[container]
image = "ctl-test/busybox"
version = "1"
args = ["sh", "-c", "trap '' TERM; echo ignoring-term; while true; do sleep 0.2; done"]
[service]
stop_timeout = "2s"
EOF
    reload
    sctl start containerctl@stubborn
    wait_journal 20 stubborn ignoring-term
    local start elapsed
    start=$(date +%s%N)
    sctl stop containerctl@stubborn
    elapsed=$((($(date +%s%N) - start) / 1000000))
    expect "stop waited for stop_timeout (${elapsed} ms)" test "$elapsed" -ge 1900
    expect "stop did not wait much longer than stop_timeout (${elapsed} ms)" test "$elapsed" -lt 8000
    expect_eq "a deliberate stop is not a failure" "$(prop stubborn ActiveState)" inactive
    expect_eq "the container is stopped" "$(container_state stubborn)" "false"
}

# Issue 12: journald's default rate limit (10000 per 30s) dropped most of a fast container's
# output; log_rate_limit defaults to off, so every line is in the journal.
t_fast_output_keeps_every_line() {
    unit_write flood <<EOF
[container]
$BUSYBOX
args = ["seq", "200000"]
[service]
restart = "no"
EOF
    reload
    sctl start containerctl@flood </dev/null || true
    wait_prop 120 flood ActiveState inactive
    tb_wait_for 120 "200000 lines of seq in the journal" _flood_lines 200000
    expect_eq "lines of seq in the journal" "$(_flood_count)" 200000
    local suppressed
    suppressed=$(tb_host "$HOST" journalctl --no-pager -o cat MESSAGE_ID=a596d6fe7bfa4994828e72309e95d61e </dev/null |
        grep -cF 'containerctl@flood.service' || true)
    expect_eq "journald's drop reports for the unit" "$suppressed" 0
}

_flood_count() {
    tb_host "$HOST" journalctl --no-pager -o cat -u containerctl@flood.service -t flood </dev/null |
        grep -cE '^[0-9]+$' || true
}

_flood_lines() {
    (($(_flood_count) >= $1))
}
