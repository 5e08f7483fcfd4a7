# shellcheck shell=bash
# SC2016: scripts for the hosts are single-quoted on purpose; SC2086: host names are plain words.
# shellcheck disable=SC2016,SC2086
# A move whose target daemon is killed during the commit, and a soak across a restart of the
# source's daemon (issue 15), sourced by tests/system/cluster.sh after cluster_move.sh: the
# target's containerctld killed right after it renamed the data into place, before it wrote the
# unit (a test-only hook), leaves the unit running on the source and, once systemd restarted it,
# nothing of the move on the target (no volume, unit, staging or record), so that the same move
# then works; the source's containerctld restarted during the soak still removes its copy when
# the soak ends.
#   tests/system/cluster.sh c_init c_join c_registry c_move_target_killed_placed c_move_commit_unanswered c_move_soak_restart

# move_hook HOST VAR: containerctld on HOST restarted with the test-only VAR=1 ("" removes it).
move_hook() {
    if [[ -n $2 ]]; then
        tb_host "$1" sh -c "mkdir -p /etc/systemd/system/containerctld.service.d && printf '%s\n' '[Service]' 'Environment=$2=1' > /etc/systemd/system/containerctld.service.d/test-abort.conf"
    else
        tb_host "$1" rm -f /etc/systemd/system/containerctld.service.d/test-abort.conf
    fi
    tb_host "$1" sh -c 'systemctl daemon-reload && systemctl restart containerctld'
    tb_wait_for 60 "containerctld back on $1" check "ctl $1 list >/dev/null"
}

# move_with_target_hook NAME PORT PARTS VAR: a running unit NAME on c2 with a volume NAME-data of
# PARTS 10 MB parts, moved to c3 whose containerctld has the test-only VAR set; sets `before` (the
# volume's sums on c2) and `rc` (the move's status), and checks that the hook fired on c3.
move_with_target_hook() {
    tb_host $H2 docker tag ctl-test/busybox:1 ctl-test/moveonly:1
    move_parts_volume $H2 "$1-data" "$3"
    move_unit_write $H2 "$1" "$2"
    ctl $H2 start "$1"
    before=$(move_volume_sums $H2 "$1-data")
    move_hook $H3 "$4"
    rc=$(run_status $H2 move "$1" --to c3 --soak 2s)
    cat "$OUT"
    tb_wait_for 60 "containerctld restarted by systemd on c3" check "ctl $H3 list >/dev/null"
    tb_host $H3 journalctl -u containerctld --no-pager | grep -F "$4 is set" >/dev/null ||
        { echo "the hook did not fire on c3"; return 1; }
}

c_move_target_killed_placed() {
    local rc before
    move_with_target_hook placed 18087 5 CONTAINERCTLD_TEST_ABORT_AFTER_PLACE || return 1
    expect "the move failed" check "(( $rc != 0 ))"
    expect_contains "it says c3 did not answer the commit" "$(cat "$OUT")" "c3 did not answer"
    tb_wait_for 60 "placed active on c2 again" check "[[ \$(tb_host $H2 systemctl is-active containerctl@placed) == active ]]"
    # The data was renamed into place before the daemon died: the restarted one removes it.
    tb_wait_for 60 "c3 removed the volume its commit had placed" check "! tb_host $H3 docker volume inspect placed-data >/dev/null 2>&1"
    expect "no unit file on c3" check "! tb_host $H3 test -e /etc/containerctl/units/placed.toml"
    expect "nothing staged is left on c3" check "[[ -z \$(tb_host $H3 docker volume ls -q --filter label=io.containerctl.move) ]]"
    expect "no move record left on c3" check "[[ -z \$(tb_host $H3 ls /var/lib/containerctl/cluster/moves) ]]"
    expect_contains "c3's moves say it was interrupted" "$(move_list $H3)" "placed target c2 interrupted"
    expect_eq "checksums unchanged on c2" "$(move_volume_sums $H2 placed-data)" "$before"
    move_hook $H3 ""
    # Nothing is in the way: the same move now works.
    rc=$(run_status $H2 move placed --to c3 --soak 2s)
    cat "$OUT"
    expect_eq "the move again" "$rc" 0
    expect_eq "the unit runs on c3" "$(tb_host $H3 systemctl is-active containerctl@placed)" active
    expect_eq "checksums equal on c3" "$(move_volume_sums $H3 placed-data)" "$before"
    tb_wait_for 60 "c2's copy removed after the soak" check "! tb_host $H2 test -e /etc/containerctl/units/placed.toml && ! tb_host $H2 docker volume inspect placed-data >/dev/null 2>&1"
    ctl $H3 rm placed >/dev/null
    tb_host $H3 docker volume rm placed-data >/dev/null
}

# The target's containerctld dies after the commit (the unit runs there) but before it answers:
# the source must not start the unit again (two copies); it asks c3 once systemd restarted it,
# and finishes the move.
c_move_commit_unanswered() {
    local rc before
    move_with_target_hook unans 18089 2 CONTAINERCTLD_TEST_ABORT_BEFORE_COMMIT_ANSWER || return 1
    expect_eq "the move ends as moved, once c3 was asked" "$rc" 0
    expect_eq "the unit runs on c3" "$(tb_host $H3 systemctl is-active containerctl@unans)" active
    expect "the unit does not run on c2" check "[[ \$(tb_host $H2 systemctl is-active containerctl@unans) != active ]]"
    expect "no container runs on c2" check "[[ -z \$(tb_host $H2 docker ps -q --filter name=^containerctl-unans\$) ]]"
    expect_eq "checksums equal on c3" "$(move_volume_sums $H3 unans-data)" "$before"
    expect_contains "c2's moves say moved" "$(move_list $H2)" "unans source c3 moved"
    move_hook $H3 ""
    ctl $H3 rm unans >/dev/null
    tb_host $H3 docker volume rm unans-data >/dev/null
}

c_move_soak_restart() {
    local rc
    tb_host $H2 docker tag ctl-test/busybox:1 ctl-test/moveonly:1
    move_parts_volume $H2 soaker-data 2
    move_unit_write $H2 soaker 18088
    ctl $H2 start soaker
    rc=$(run_status $H2 move soaker --to c3 --soak 20s)
    cat "$OUT"
    expect_eq "the move" "$rc" 0
    # The soak is under way: the source's daemon restarts in it.
    tb_host $H2 systemctl restart containerctld
    tb_wait_for 60 "containerctld back on c2" check "ctl $H2 list >/dev/null"
    expect "c2 keeps its copy during the soak" check "tb_host $H2 docker volume inspect soaker-data >/dev/null && tb_host $H2 test -e /etc/containerctl/units/soaker.toml"
    tb_host $H2 journalctl -u containerctld --no-pager | grep -F 'move of soaker to c3: its soak resumes' >/dev/null ||
        { echo "c2 did not say the soak resumes"; return 1; }
    tb_wait_for 60 "c2's copy removed when the soak ended, across the restart" check "! tb_host $H2 test -e /etc/containerctl/units/soaker.toml && ! tb_host $H2 docker volume inspect soaker-data >/dev/null 2>&1"
    expect_eq "the unit runs on c3" "$(tb_host $H3 systemctl is-active containerctl@soaker)" active
    ctl $H3 rm soaker >/dev/null
    tb_host $H3 docker volume rm soaker-data >/dev/null
}

CLUSTER_STEPS_EXTRA+=(c_move_target_killed_placed c_move_commit_unanswered c_move_soak_restart)
