# System scenarios for starts at scale (issue 17 item 4): the host-wide limit on starts, a start
# timeout that does not count the waits, and a stop during a start that keeps the container.

# _parallel_starts [N]: [units] parallel_starts = N in containerctl.toml (none: the default),
# applied by a daemon-reload (the generator passes N to every unit; their runners make the slot
# files). The section is kept last.
_parallel_starts() {
    # shellcheck disable=SC2016  # the host's shell expands them
    tb_host "$HOST" sh -ec 'f=/etc/containerctl/containerctl.toml
        sed -i "/^\[units\]\$/,\$d" "$f"
        [ -z "$1" ] || printf "[units]\nparallel_starts = %s\n" "$1" >>"$f"
        systemctl daemon-reload' sh "${1:-}" </dev/null
}

_slot_held() {
    ! tb_host "$HOST" flock -n /run/containerctl/start-slots/0 true </dev/null
}

# _start_slots NAME: the number of start slots containerctl@NAME's runner is told of.
_start_slots() {
    prop "$1" Environment | tr ' ' '\n' | sed -n 's/^CONTAINERCTL_START_SLOTS=//p'
}

_status_text_has() {
    [[ $(prop "$1" StatusText) == *"$2"* ]]
}

# _activating_for SECONDS SINCE NAME...: every unit is still activating, SECONDS after SINCE.
_activating_for() {
    local seconds=$1 since=$2 n
    shift 2
    for n in "$@"; do
        [[ $(prop "$n" ActiveState) == activating ]] || return 1
    done
    (($(date +%s) - since >= seconds))
}

# With one slot, three units started at once queue for it, far past a 3 s TimeoutStartSec=,
# without a timeout or a restart; dockerd then sees them made one at a time.
t_parallel_starts_queue_without_start_timeouts() {
    local i units=(slot1 slot2 slot3)
    for i in "${units[@]}"; do
        unit_write "$i" <<EOF
[container]
$BUSYBOX
args = ["sleep", "1000"]
EOF
        # A start timeout far shorter than the wait below (the admin's drop-in wins over ours).
        tb_host "$HOST" sh -ec "mkdir -p /etc/systemd/system/containerctl@$i.service.d
            printf '[Service]\nTimeoutStartSec=3s\n' >/etc/systemd/system/containerctl@$i.service.d/90-short.conf" </dev/null
    done
    _parallel_starts 1
    expect_eq "one start slot" "$(_start_slots slot1)" 1
    # Made by the package's tmpfiles.d entry, before any runner.
    expect_eq "the slots' directory is root's alone" "$(tb_host "$HOST" stat -c '%U %a' /run/containerctl/start-slots </dev/null)" "root 700"
    expect_eq "the short start timeout applies" "$(prop slot1 TimeoutStartUSec)" 3s
    # The only slot is held, as by a long start.
    tb_host "$HOST" systemd-run -q --unit=slot-holder --collect flock /run/containerctl/start-slots/0 sleep infinity </dev/null
    tb_wait_for 20 "the slot is held" _slot_held
    local since
    since=$(tb_host "$HOST" date +%s </dev/null)
    sctl start --no-block containerctl@slot1 containerctl@slot2 containerctl@slot3
    for i in "${units[@]}"; do
        tb_wait_for 20 "containerctl@$i waits for a slot" _status_text_has "$i" "waiting for a start slot: all 1 are taken"
    done
    tb_wait_for 30 "3 x the start timeout passed with every unit still starting" \
        _activating_for 9 "$since" "${units[@]}"
    sctl stop slot-holder
    for i in "${units[@]}"; do
        wait_prop 60 "$i" ActiveState active
        expect_eq "containerctl@$i was not restarted" "$(prop "$i" NRestarts)" 0
        if journal "$i" | grep -q "timed out"; then
            echo "containerctl@$i hit its start timeout" >&2
            return 1
        fi
        expect_contains "containerctl@$i's journal" "$(journal "$i")" "took start slot 0 of 1 after waiting"
    done
    # --until is whole seconds and excludes what came later in that second, so it is a second past
    # now: the last start may have come in this very second.
    local events until
    until=$(($(tb_host "$HOST" date +%s </dev/null) + 1))
    events=$(tb_host "$HOST" docker events --since "$since" --until "$until" \
        --filter type=container --filter event=create --filter event=start \
        --format '{{.Action}} {{.Actor.Attributes.name}}' </dev/null | grep ' containerctl-slot')
    # One at a time: each container created and started before the next one is created.
    expect_eq "dockerd's create and start events, in order (${events//$'\n'/, })" \
        "$(awk 'NR % 2 == 1 {c = $2; if ($1 != "create") bad = 1} NR % 2 == 0 {if ($1 != "start" || $2 != c) bad = 1}
            END {print (NR == 6 && !bad) ? "one at a time" : "interleaved"}' <<<"$events")" "one at a time"
    for i in "${units[@]}"; do
        sctl stop "containerctl@$i"
        tb_host "$HOST" rm -rf "/etc/systemd/system/containerctl@$i.service.d" </dev/null
    done
    _parallel_starts
    local n
    n=$(_start_slots slot1)
    expect "the default slots are back" test "$n" -ge 4
    # The runner makes the slot files it lacks (slot 0 above was the holder's, made by flock(1)).
    sctl start containerctl@slot1
    expect_eq "slot $((n - 1)), made by a runner, is root's alone" \
        "$(tb_host "$HOST" stat -c '%U %a' "/run/containerctl/start-slots/$((n - 1))" </dev/null)" "root 600"
    sctl stop containerctl@slot1
}

_created() {
    [[ $(tb_host "$HOST" docker ps -a --filter "name=^containerctl-$1\$" --format '{{.State}}' </dev/null) == created ]]
}

# A stop that comes while the runner waits on dockerd to start the container (containerd frozen
# right after the create) keeps the container, and the next start starts that same container.
t_stop_while_starting_keeps_the_container() {
    unit_write midstart <<EOF
[container]
$BUSYBOX
args = ["sleep", "1000"]

[service]
stop_timeout = "1s"
EOF
    reload
    local containerd since rc=0
    containerd=$(tb_host "$HOST" pidof containerd </dev/null)
    tb_host "$HOST" kill -STOP "$containerd" </dev/null
    # dockerd stays busy with the start for twice TimeoutStopSec= (6 s): the stop waits for it.
    {
        _stop_while_starting && since=$(date +%s) &&
            tb_wait_for 30 "twice TimeoutStopSec= passed with the unit still stopping" \
                _deactivating_for 12 "$since" midstart &&
            tb_wait_for 20 "the status says what the stop waits for" \
                _status_text_has midstart "stopping container: waiting for dockerd"
    } || rc=$?
    tb_host "$HOST" kill -CONT "$containerd" </dev/null
    ((rc == 0)) || return "$rc"
    wait_prop 60 midstart ActiveState inactive
    expect_eq "the stop ended without a timeout" "$(prop midstart Result)" success
    local id
    id=$(tb_host "$HOST" docker ps -aq --no-trunc --filter "name=^containerctl-midstart\$" </dev/null)
    expect "the container made before the stop is kept" test -n "$id"
    expect_eq "the kept container is stopped" "$(container_state midstart)" false
    wait_journal 20 midstart "stopped while starting: container containerctl-midstart kept for the next start"
    sctl start containerctl@midstart
    expect_eq "the next start starts the kept container" "$(container_id midstart)" "$id"
    wait_journal 20 midstart "restarted container ${id:0:12}"
    sctl stop containerctl@midstart
}

# With containerd frozen: start the unit, wait for dockerd's create, stop the unit meanwhile.
# Called in a condition (bash ignores set -e there), so every step returns on failure itself.
_stop_while_starting() {
    sctl start --no-block containerctl@midstart || return 1
    tb_wait_for 30 "containerctl-midstart created (its start hangs in containerd)" _created midstart || return 1
    expect_eq "the unit is still starting" "$(prop midstart ActiveState)" activating || return 1
    sctl stop --no-block containerctl@midstart || return 1
    wait_prop 20 midstart ActiveState deactivating
}


# _deactivating_for SECONDS SINCE NAME: the unit is still stopping, SECONDS after SINCE.
_deactivating_for() {
    [[ $(prop "$3" ActiveState) == deactivating ]] || return 1
    (($(date +%s) - $2 >= $1))
}

# A stop that dockerd cannot carry out within TimeoutStopSec= (containerd frozen, as a dockerd
# stopping hundreds of containers at a host's shutdown is slow to get to each) is waited for: the
# runner is not killed, and the container is stopped cleanly once dockerd gets to it.
t_stop_waits_for_a_busy_dockerd() {
    unit_write slowstop <<EOF
[container]
$BUSYBOX
args = ["sleep", "1000"]

[service]
stop_timeout = "1s"
EOF
    reload
    sctl start containerctl@slowstop
    expect_eq "TimeoutStopSec= is stop_timeout + 5 s" "$(prop slowstop TimeoutStopUSec)" 6s
    local containerd since rc=0
    containerd=$(tb_host "$HOST" pidof containerd </dev/null)
    since=$(date +%s)
    tb_host "$HOST" kill -STOP "$containerd" </dev/null
    {
        sctl stop --no-block containerctl@slowstop &&
            tb_wait_for 30 "twice TimeoutStopSec= passed with the unit still stopping" \
                _deactivating_for 12 "$since" slowstop &&
            tb_wait_for 20 "the status says what the stop waits for" \
                _status_text_has slowstop "stopping container: waiting for dockerd"
    } || rc=$?
    tb_host "$HOST" kill -CONT "$containerd" </dev/null
    ((rc == 0)) || return "$rc"
    wait_prop 60 slowstop ActiveState inactive
    expect_eq "the stop ended without a timeout" "$(prop slowstop Result)" success
    expect_eq "the container was stopped, not left running" "$(container_state slowstop)" false
    if journal slowstop | grep -q "timed out"; then
        echo "containerctl@slowstop hit its stop timeout" >&2
        return 1
    fi
}

# A unit stopped by systemd is stopped once dockerd is done with its container, not at its `die`:
# dockerd's cleanup (here: the container's endpoint on the bridge network) comes after it, and
# docker.service, stopped after the last unit at a host's shutdown, must not be stopped in the
# middle of hundreds of them. (The network namespace's file is no sign: dockerd removes those
# in a sweep up to a minute later.)
t_a_stopped_unit_is_one_dockerd_is_done_with() {
    unit_write donestop <<EOF
[container]
$BUSYBOX
args = ["sleep", "1000"]
EOF
    reload
    sctl start containerctl@donestop
    expect_contains "the bridge network's endpoints" "$(_bridge_endpoints)" containerctl-donestop
    sctl stop containerctl@donestop
    local left
    left=$(_bridge_endpoints)
    if [[ $left == *containerctl-donestop* ]]; then
        echo "containerctl-donestop is still on the bridge network once the stop returned: $left" >&2
        return 1
    fi
}

# The names of the containers on dockerd's bridge network (read without the containers' locks).
_bridge_endpoints() {
    tb_host "$HOST" docker network inspect bridge -f '{{range .Containers}}{{.Name}} {{end}}' </dev/null
}
