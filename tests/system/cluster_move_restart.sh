# shellcheck shell=bash
# SC2016: scripts for the hosts are single-quoted on purpose; SC2086: host names are plain words.
# shellcheck disable=SC2016,SC2086
# Moves whose source daemon is killed (issue 15), sourced by tests/system/cluster.sh after
# cluster_move.sh: the source's containerctld killed (SIGKILL) during a warm move's first pass
# stops nothing and the target gives the pass up; killed during the copy, it starts the unit
# there again when systemd restarts it, leaves nothing of it on the target, and a new move of the
# unit to the same member resumes from what the target staged; the target gives the staging up
# after its expiry when no move comes; the source's daemon killed right after the target
# answered the commit finishes the move when it starts again (never a second copy).
#   tests/system/cluster.sh c_init c_join c_registry c_move_source_killed

# restarter_sums HOST: every file's SHA-256 of the volume restarter-data on HOST.
restarter_sums() { move_volume_sums "$1" restarter-data; }

# restarter_kill_during_copy FROM TO MB: starts a move of restarter from FROM to TO, kills FROM's
# containerctld once MB arrived on TO, and waits for the CLI to end (its output in $OUT).
restarter_kill_during_copy() {
    local pid rc=0
    tb_host "$1" containerctl move restarter --to "$2" >"$OUT" 2>&1 &
    pid=$!
    tb_wait_for 60 "$3 MB arrived on $2" check "(( \$(move_staged_mb $2) > $3 ))" || { cat "$OUT"; return 1; }
    tb_host "$1" systemctl kill -s KILL containerctld
    wait "$pid" || rc=$?
    cat "$OUT"
    expect "the CLI on $1 lost its daemon" check "(( $rc != 0 ))"
    tb_wait_for 60 "containerctld restarted by systemd on $1" check "ctl $1 list >/dev/null"
}

c_move_source_killed() {
    local inv rc kept copied before
    tb_host $H2 docker tag ctl-test/busybox:1 ctl-test/moveonly:1
    # 1000 MB in files of 10 MB: a kill during the copy leaves some whole on the target.
    move_parts_volume $H2 restarter-data 100
    move_unit_write $H2 restarter 18086
    ctl $H2 start restarter
    before=$(restarter_sums $H2)
    inv=$(move_invocation $H2 restarter)

    # 0. Killed during a warm move's first pass: nothing was stopped, the target gives it up.
    tb_host $H2 containerctl move restarter --to c3 --warm >"$OUT" 2>&1 &
    local pid=$!
    tb_wait_for 60 "the first pass arriving on c3" check "(( \$(move_staged_mb $H3) > 100 ))" || { cat "$OUT"; return 1; }
    tb_host $H2 systemctl kill -s KILL containerctld
    wait "$pid" || true
    tb_wait_for 60 "containerctld restarted by systemd on c2" check "ctl $H2 list >/dev/null"
    tb_wait_for 60 "c3 was told to give the first pass up" check "[[ -z \$(tb_host $H3 docker volume ls -q --filter label=io.containerctl.move) ]]"
    expect_eq "the unit was never stopped (same invocation)" "$(move_invocation $H2 restarter)" "$inv"
    tb_wait_for 30 "c2's moves say nothing was stopped" check "move_list $H2 | grep -F >/dev/null 'restarter source c3 interrupted containerctld restarted during the move; nothing was stopped'"

    # 1. The source's daemon killed during the copy: the unit runs on the source again.
    restarter_kill_during_copy $H2 c3 600
    tb_wait_for 60 "restarter active on c2 again" check "[[ \$(tb_host $H2 systemctl is-active containerctl@restarter) == active ]]"
    expect "a new invocation (started again by the restarted daemon)" check "[[ \$(move_invocation $H2 restarter) != '$inv' ]]"
    tb_wait_for 30 "c2's moves say why" check "move_list $H2 | grep -F >/dev/null 'restarter source c3 interrupted containerctld restarted during the move; restarter runs here again'"
    move_list $H2 | sed -n 1,3p
    expect "no unit file on c3" check "! tb_host $H3 test -e /etc/containerctl/units/restarter.toml"
    expect "no volume on c3" check "! tb_host $H3 docker volume inspect restarter-data >/dev/null 2>&1"
    expect "c3 keeps the staging for a resume" check "[[ -n \$(tb_host $H3 docker volume ls -q --filter label=io.containerctl.move) ]]"

    # 2. A new move to the same member resumes: only what is missing is sent again.
    rc=$(run_status $H2 move restarter --to c3 --soak 2s)
    cat "$OUT"
    expect_eq "the resumed move" "$rc" 0
    kept=$(sed -n 's/.*resuming the move a restart interrupted: \([0-9]*\) MB.*/\1/p' "$OUT" | head -1)
    copied=$(sed -n 's/.*copy: copying \([0-9]*\) MB.*/\1/p' "$OUT" | head -1)
    echo "resumed after the restart: ${kept} MB kept on c3, ${copied} MB sent again of 1000"
    expect "what c3 staged before the restart was reused (${kept} MB)" check "(( ${kept:-0} >= 550 ))"
    expect "only what was missing was sent again (${copied} MB)" check "(( ${copied:-1000} <= 1000 - ${kept:-0} + 10 ))"
    expect_eq "the unit runs on c3" "$(tb_host $H3 systemctl is-active containerctl@restarter)" active
    expect_eq "checksums equal on c3" "$(restarter_sums $H3)" "$before"
    expect "nothing staged is left on c3" check "[[ -z \$(tb_host $H3 docker volume ls -q --filter label=io.containerctl.move) ]]"
    tb_wait_for 60 "c2's copy removed after the soak" check "! tb_host $H2 test -e /etc/containerctl/units/restarter.toml && ! tb_host $H2 docker volume inspect restarter-data >/dev/null 2>&1"

    # 3. Killed again (c3 the source now), and no move comes: c2 gives the staging up at its expiry.
    tb_host $H2 sh -c 'printf "%s\n" "[cluster]" "report_interval = \"2s\"" "move_staging_expiry = \"5s\"" > /etc/containerctl/containerctl.toml && systemctl restart containerctld'
    tb_wait_for 60 "containerctld back on c2" check "ctl $H2 list >/dev/null"
    restarter_kill_during_copy $H3 c2 100
    tb_wait_for 60 "restarter active on c3 again" check "[[ \$(tb_host $H3 systemctl is-active containerctl@restarter) == active ]]"
    tb_wait_for 60 "c2 gave the staging up" check "[[ -z \$(tb_host $H2 docker volume ls -q --filter label=io.containerctl.move) ]]"
    expect "no unit file on c2" check "! tb_host $H2 test -e /etc/containerctl/units/restarter.toml"
    expect "no volume on c2" check "! tb_host $H2 docker volume inspect restarter-data >/dev/null 2>&1"
    expect "no move record on c2" check "[[ -z \$(tb_host $H2 ls /var/lib/containerctl/cluster/moves) ]]"
    expect_contains "c2's moves say it expired" "$(move_list $H2)" "restarter target c3 expired"
    expect_contains "c3's moves say why it stopped" "$(move_list $H3)" "restarter source c2 interrupted containerctld restarted during the move"
    expect_contains "c3's audit says so" "$(move_audit $H3 restarter)" "containerctld restarted during the move"

    # 4. Killed right after c2 answered the commit (a test-only hook in the daemon's drop-in): the
    #    restarted daemon asks c2, which runs the unit, and finishes the move; nothing starts on c3.
    tb_host $H3 sh -c 'mkdir -p /etc/systemd/system/containerctld.service.d && printf "%s\n" "[Service]" "Environment=CONTAINERCTLD_TEST_ABORT_AFTER_COMMIT=1" > /etc/systemd/system/containerctld.service.d/test-abort.conf && systemctl daemon-reload && systemctl restart containerctld'
    tb_wait_for 60 "containerctld back on c3" check "ctl $H3 list >/dev/null"
    rc=$(run_status $H3 move restarter --to c2 --soak 2s)
    cat "$OUT"
    expect "the CLI on c3 lost its daemon" check "(( $rc != 0 ))"
    tb_host $H3 sh -c 'rm /etc/systemd/system/containerctld.service.d/test-abort.conf && systemctl daemon-reload'
    tb_wait_for 60 "containerctld restarted by systemd on c3" check "ctl $H3 list >/dev/null"
    tb_wait_for 60 "c3's moves say it moved" check "move_list $H3 | grep -F >/dev/null 'restarter source c2 moved moved to c2; containerctld restarted during the move'"
    expect_eq "the unit runs on c2" "$(tb_host $H2 systemctl is-active containerctl@restarter)" active
    expect_eq "checksums equal on c2" "$(restarter_sums $H2)" "$before"
    expect_eq "the unit is stopped on c3" "$(tb_host $H3 systemctl is-active containerctl@restarter || true)" inactive
    tb_wait_for 60 "c3's copy removed after the soak" check "! tb_host $H3 test -e /etc/containerctl/units/restarter.toml"
    tb_host $H3 systemctl restart containerctld
    tb_wait_for 60 "containerctld back on c3 (without the hook)" check "ctl $H3 list >/dev/null"
    tb_host $H2 sh -c 'printf "%s\n" "[cluster]" "report_interval = \"2s\"" > /etc/containerctl/containerctl.toml && systemctl restart containerctld'
    tb_wait_for 60 "containerctld back on c2" check "ctl $H2 list >/dev/null"
    ctl $H2 rm restarter >/dev/null
    tb_host $H2 docker volume rm restarter-data >/dev/null
}

CLUSTER_STEPS_EXTRA+=(c_move_source_killed)
