#!/usr/bin/env bash
# Issue 17 item 4: one host at UNITS units (default 500), each figure against Docker measured in
# the same run. Not a test: it prints figures for BENCHMARKS.md.
#   bench/scale.sh [ROUNDS]     (default 20; release binaries must be built)
#   UNITS=200 bench/scale.sh    (fewer units; WINDOW=seconds of each CPU window, default 20;
#                                REBOOTS=reboots per side, default 1; BENCH_SKIP=reboot skips it;
#                                BENCH_ONLY=reboot measures the reboot only, BENCH_ONLY=http the
#                                memory and the HTTP requests only)
#   BENCH_KEEP=1 bench/scale.sh   (the host and its units stay after the run)
#   BENCH_REUSE=1 bench/scale.sh  (a host kept by BENCH_KEEP=1 with its units: the current build
#                                  is installed into it and containerctld restarted; no setup)
#   BENCH_HOST_IP=172.29.77.N bench/scale.sh   (the host's address; default: Docker picks)
#   REBOOT_SIDES=ours bench/scale.sh           (only our side's reboot, e.g. to compare
#                                                PARALLEL_STARTS values; default "ours theirs")
#   PARALLEL_STARTS=N bench/scale.sh           (containerctl.toml's [units] parallel_starts in the
#                                                host; default: unset, four per CPU)
#   REBOOT_STOP_TIMEOUT=S bench/scale.sh       (seconds each reboot's shutdown may take before the
#                                                host is killed; default 600: a real shutdown waits
#                                                for the units; 30 was a power cut half-way)
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null
# Before lib.sh, which takes TB_RUN (default 1) as it is sourced: hosts are labelled with it.
export TB_RUN=${TB_RUN:-benchs}
# shellcheck source=testbed/lib.sh
source testbed/lib.sh
# shellcheck source=tests/system/lib.sh
source tests/system/lib.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

ROUNDS=${1:-20}
UNITS=${UNITS:-500}
WINDOW=${WINDOW:-20}
REBOOTS=${REBOOTS:-1}
REBOOT_STOP_TIMEOUT=${REBOOT_STOP_TIMEOUT:-600}
HOST=benchs
load() { cut -d' ' -f1-3 /proc/loadavg; }

tb_ensure_deps
tb_ensure_dockerd
tb_build_images
[[ -n ${BENCH_KEEP:-}${BENCH_REUSE:-} ]] || trap tb_cleanup EXIT
running=0
if [[ -n ${BENCH_REUSE:-} ]] && docker container inspect "$TB_PREFIX$HOST" >/dev/null 2>&1; then
    # Setting 500 units up takes minutes: a kept host gets the current build instead.
    stage=$(mktemp -d)
    make -s install DESTDIR="$stage" PREFIX=/usr >/dev/null
    tb_host_install "$HOST" "$stage"
    rm -rf "$stage"
    in_host systemctl restart containerctld
    tb_wait_for 60 "containerctld answers" in_host containerctl list
    running=$(in_host docker ps -q --filter label=io.containerctl.unit | wc -l)
    echo "reusing $TB_PREFIX$HOST: the current build installed, containerctld restarted; $running containers running"
else
    bench_host_up "${BENCH_HOST_IP:-}"
fi
# shellcheck disable=SC2016  # the host's shell expands them
in_host sh -ec 'f=/etc/containerctl/containerctl.toml
    sed -i "/^\[units\]\$/,\$d" "$f"
    [ -z "$1" ] || printf "[units]\nparallel_starts = %s\n" "$1" >>"$f"
    systemctl daemon-reload' sh "${PARALLEL_STARTS:-}"
echo "start slots in the host: $(in_host ls /run/containerctl/start-slots | wc -l) ($(in_host nproc) CPUs)"
if ((running != UNITS)); then
    t=$SECONDS
    # Enabled: the reboot below brings them back. 25 at a time: 500 at once on 2 loaded cores ran
    # into the 90 s start timeout (the reboot below starts them all at once, as systemd does).
    bench_units u "$UNITS" true 25
    running=$(in_host docker ps -q --filter label=io.containerctl.unit | wc -l)
    echo "started $UNITS units in $((SECONDS - t)) s; $running containers running; load $(load)"
fi
((running == UNITS)) || { echo "expected $UNITS running containers" >&2; exit 1; }
daemon_pid() { in_host systemctl show -p MainPID --value containerctld; }

steady_state() {
echo
echo "== memory of containerctld with $UNITS units"
pid=$(daemon_pid)
in_host awk '/^VmRSS:/ {printf "containerctld RSS: %.1f MiB (target <= 25 MiB)\n", $2 / 1024}' "/proc/$pid/status"
in_host awk '/^Private_Clean:|^Private_Dirty:/ {p += $2} END {printf "containerctld private memory: %.1f MiB\n", p / 1024}' \
    "/proc/$pid/smaps_rollup"
dpid=$(in_host pgrep -x dockerd | head -1)
in_host awk '/^VmRSS:/ {printf "for scale, dockerd RSS: %.1f MiB\n", $2 / 1024}' "/proc/$dpid/status"

[[ ${BENCH_ONLY:-} == http ]] || list_figures
http_figures
[[ ${BENCH_ONLY:-} == http ]] || stream_figures
}

list_figures() {
echo
echo "== list: containerctl list --json vs docker ps --format json ($UNITS units; the two take turns)"
ours=() theirs=()
for _ in $(seq 1 "$ROUNDS"); do
    ours+=("$(time_in_host containerctl list --json)")
    theirs+=("$(time_in_host docker ps --no-trunc --format '{{json .}}')")
done
a=$(printf '%s\n' "${ours[@]}" | median)
b=$(printf '%s\n' "${theirs[@]}" | median)
echo "containerctl list --json: median ${a} ms, p99 $(printf '%s\n' "${ours[@]}" | p99) ms;" \
    "docker ps: median ${b} ms, p99 $(printf '%s\n' "${theirs[@]}" | p99) ms; ratio $(ratio "$a" "$b") (target <= 0.1); load $(load)"
}

http_figures() {
echo
echo "== HTTP on one kept-alive connection: /metrics and GET /api/v1/units vs Docker's GET /containers/json"
echo "   ($UNITS units, 10 batches of 20 requests each, the three taking turns)"
token=$(in_host containerctl token create --name bench --role viewer --ttl 1h)
auth=(-H "Authorization: Bearer $token")
metrics=() units=() docker_list=()
for _ in $(seq 1 10); do
    mapfile -t -O "${#metrics[@]}" metrics < <(http_ms 20 http://127.0.0.1:5000/metrics "${auth[@]}")
    mapfile -t -O "${#units[@]}" units < <(http_ms 20 http://127.0.0.1:5000/api/v1/units "${auth[@]}")
    mapfile -t -O "${#docker_list[@]}" docker_list < <(http_ms 20 http://localhost/containers/json --unix-socket /var/run/docker.sock)
done
d50=$(printf '%s\n' "${docker_list[@]}" | median)
d99=$(printf '%s\n' "${docker_list[@]}" | p99)
for name in metrics units; do
    declare -n xs=$name
    x50=$(printf '%s\n' "${xs[@]}" | median)
    x99=$(printf '%s\n' "${xs[@]}" | p99)
    echo "$name: p50 ${x50} ms, p99 ${x99} ms (target p99 <= 10 ms); ratio to GET /containers/json" \
        "(p50 ${d50} ms, p99 ${d99} ms): p50 $(ratio "$x50" "$d50"), p99 $(ratio "$x99" "$d99")"
    unset -n xs
done
echo "load $(load)"
}

stream_figures() {
echo
echo "== event stream: containerctld CPU over ${WINDOW} s while units restart one after another,"
echo "   without and with 20 open GET /api/v1/stream clients (utime + stime from /proc/PID/stat)"
# cpu_ticks PID: utime + stime of PID in clock ticks.
cpu_ticks() { in_host awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(in_host getconf CLK_TCK)
# churn_window: restart units u1, u2, ... one after another for WINDOW seconds (systemd restarts
# them, so the daemon only watches), and print the daemon's CPU in % of one core and the restarts.
churn_window() {
    local pid c0 c1 t0 t1 n
    pid=$(daemon_pid)
    c0=$(cpu_ticks "$pid")
    t0=$(now_ms)
    # shellcheck disable=SC2016  # the host shell's variables
    n=$(in_host sh -c 'end=$(($(date +%s) + $1)); i=0
        while [ "$(date +%s)" -lt $end ]; do i=$((i + 1)); systemctl restart "containerctl@u$((i % $2 + 1))"; done
        echo $i' sh "$WINDOW" "$UNITS")
    t1=$(now_ms)
    c1=$(cpu_ticks "$pid")
    awk -v c="$((c1 - c0))" -v hz="$hz" -v ms="$((t1 - t0))" -v n="$n" \
        'BEGIN {printf "%.2f %d\n", c / hz * 100000 / ms, n}'
}
streams_open() {
    # shellcheck disable=SC2016
    in_host sh -c 'for i in $(seq 1 20); do
        curl -sN -H "Authorization: Bearer $1" http://127.0.0.1:5000/api/v1/stream >/tmp/stream$i.out 2>&1 &
        done; sleep 1' sh "$token"
}
streams_close() { in_host sh -c 'pkill -x curl; sleep 1; cat /tmp/stream*.out | grep -c "^event: units" || true'; }
without=() with=()
for r in 1 2; do
    read -r cpu n < <(churn_window)
    without+=("$cpu")
    echo "round $r without clients: ${cpu}% of a core, $n restarts; load $(load)"
    streams_open
    read -r cpu n < <(churn_window)
    with+=("$cpu")
    events=$(streams_close)
    echo "round $r with 20 clients: ${cpu}% of a core, $n restarts, $events unit events delivered in all; load $(load)"
done
a=$(printf '%s\n' "${without[@]}" | median)
b=$(printf '%s\n' "${with[@]}" | median)
echo "daemon CPU: without clients ${a}%, with 20 clients ${b}%; the clients' cost" \
    "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b - a}')% of a core (target <= 5%)"

}
[[ ${BENCH_ONLY:-} == reboot ]] || steady_state
[[ ${BENCH_SKIP:-} == reboot || ${BENCH_ONLY:-} == http ]] && exit 0

echo
echo "== where a unit's start goes with $UNITS containers running: the runner's sandbox"
sandbox_cost

echo
echo "== reboot: $UNITS enabled units until every one is READY vs dockerd bringing back $UNITS"
echo "   --restart=always containers; both from the moment dockerd's process started (the host's"
echo "   own timestamps), and the wall time from the reboot to all running; one side per reboot,"
echo "   each with only its own $UNITS containers on the host; the shutdown may take ${REBOOT_STOP_TIMEOUT} s"
# ts_us TIMESTAMP: microseconds since the epoch of a timestamp date(1) reads.
dockerd_started_us() {
    in_host sh -c 'date -d "$(systemctl show --timestamp=us+utc -p ExecMainStartTimestamp --value docker.service)" +%s%6N'
}
ours_ready() {
    local n
    n=$(in_host systemctl list-units --no-legend --state=active 'containerctl@u*.service' | wc -l)
    ((n == UNITS))
}
theirs_running() {
    local n
    n=$(in_host docker ps -q --filter name='^d[0-9]+$' | wc -l)
    ((n == UNITS))
}
# The last READY: systemd's ActiveEnterTimestamp of every unit (Type=notify: at READY=1).
ours_last_us() {
    # shellcheck disable=SC2016
    in_host sh -c 'systemctl show --timestamp=us+utc -p ActiveEnterTimestamp --value "containerctl@u*.service" |
        grep . | while read -r t; do date -d "$t" +%s%6N; done | sort -n | tail -1'
}
theirs_last_us() {
    # shellcheck disable=SC2016
    in_host sh -c 'docker inspect -f "{{.State.StartedAt}}" $(docker ps -q --filter name="^d[0-9]+\$") |
        while read -r t; do date -d "$t" +%s%6N; done | sort -n | tail -1'
}
ours_boot=() theirs_boot=() ours_wall=() theirs_wall=()
reboot_side() {
    local side=$1 t0 wall first last
    t0=$(now_ms)
    # The boot waits for the enabled units too (multi-user.target): 500 took over 180 s. The
    # shutdown may take REBOOT_STOP_TIMEOUT s, as a real one waits for its units to stop.
    TB_STOP_TIMEOUT=$REBOOT_STOP_TIMEOUT TB_BOOT_TIMEOUT=900 tb_host_reboot "$HOST" >/dev/null
    if [[ $side == ours ]]; then
        tb_wait_for 600 "$UNITS units READY" ours_ready
    else
        tb_wait_for 600 "$UNITS containers running" theirs_running
    fi
    wall=$(($(now_ms) - t0))
    first=$(dockerd_started_us)
    if [[ $side == ours ]]; then last=$(ours_last_us); else last=$(theirs_last_us); fi
    echo "$side: all $UNITS up $(((last - first) / 1000)) ms after dockerd started;" \
        "${wall} ms from the reboot until the benchmark saw them all; load $(load)" >&2
    # Where the time went: when dockerd said READY (systemd starts the units only then), and for
    # ours the first READY unit and how many starts systemd had to repeat (start timeouts).
    # shellcheck disable=SC2016
    in_host sh -c 'ready=$(date -d "$(systemctl show --timestamp=us+utc -p ActiveEnterTimestamp --value docker.service)" +%s%6N)
        echo "  dockerd READY $((($ready - $1) / 1000)) ms after it started"' sh "$first" >&2
    if [[ $side == ours ]]; then
        # shellcheck disable=SC2016
        in_host sh -c 'f=$(systemctl show --timestamp=us+utc -p ActiveEnterTimestamp --value "containerctl@u*.service" |
            grep . | while read -r t; do date -d "$t" +%s%6N; done | sort -n | head -1)
            r=$(systemctl show -p NRestarts --value "containerctl@u*.service" | awk "{n += \$1} END {print n}")
            echo "  first unit READY $((($f - $1) / 1000)) ms after dockerd started; $r starts repeated by systemd"
            l=$(systemctl show --timestamp=us+utc -p ExecMainStartTimestamp --value "containerctl@u*.service" |
                grep . | while read -r t; do date -d "$t" +%s%6N; done | sort -n | tail -1)
            echo "  last runner started by systemd $((($l - $1) / 1000)) ms after dockerd started"
            # Since dockerd started: a test host shares its boot ID with the machine, so -b would
            # count the setup too.
            since="@$(($1 / 1000000))"
            journalctl --since "$since" -o cat -t containerctl-runner --grep "took start slot" |
                awk "{n++; w = \$(NF - 1); s += w; if (w > m) m = w; slots = \$6} END {
                    printf \"  %d starts waited for one of %s start slots: %.1f s on average, %.1f s at most\\n\", n, slots, n ? s / n : 0, m}"
            echo "  start timeouts in the journal: $(journalctl --since "$since" -o cat --grep "start operation timed out" | wc -l)"' sh "$first" >&2
    fi
    # Where the CPU went since the boot: each process's user + system time and its reaped
    # children's (a shim's runc), summed by command; the runners and the shims are still alive.
    # shellcheck disable=SC2016
    in_host sh -c 'cat /proc/[0-9]*/stat 2>/dev/null' |
        awk -v hz="$(in_host getconf CLK_TCK)" '{t[$2] += $14 + $15 + $16 + $17} END {for (c in t) if (t[c] >= hz) printf "%.0f %s\n", t[c] / hz, c}' |
        sort -rn | head -8 | awk '{printf "%s%s %d s", (NR > 1 ? ", " : "  CPU since the boot: "), $2, $1} END {print ""}' >&2
    echo "$(((last - first) / 1000)) $wall"
}
# Each side's reboot has only its own containers on the host: dockerd restores every container
# it has at its start (1000 took it 3 min 16 s), so the other side's would count against this one.
ours_only() {
    # shellcheck disable=SC2016
    in_host sh -ec 'ids=$(docker ps -aq --filter name="^d[0-9]+\$"); [ -z "$ids" ] || docker rm -f $ids >/dev/null
        sed -i "s/^enabled = false/enabled = true/" /etc/containerctl/units/u*.toml
        systemctl daemon-reload'
    if ! ours_ready; then
        bench_units u "$UNITS" true 25
    fi
}
theirs_only() {
    # shellcheck disable=SC2016
    in_host sh -ec 'sed -i "s/^enabled = true/enabled = false/" /etc/containerctl/units/u*.toml
        systemctl daemon-reload
        systemctl stop "containerctl@u*.service"
        ids=$(docker ps -aq --filter label=io.containerctl.unit); [ -z "$ids" ] || docker rm -f $ids >/dev/null
        for i in $(seq 1 "$1"); do docker run -d --init --restart=always --name "d$i" ctl-test/busybox:1 sleep 100000; done >/dev/null' sh "$UNITS"
    theirs_running || { echo "expected $UNITS running containers d1..d$UNITS" >&2; exit 1; }
}
sides=${REBOOT_SIDES:-ours theirs}
for r in $(seq 1 "$REBOOTS"); do
    if [[ $sides == *ours* ]]; then
        ours_only
        read -r x w < <(reboot_side ours)
        ours_boot+=("$x") ours_wall+=("$w")
    fi
    if [[ $sides == *theirs* ]]; then
        t=$SECONDS
        theirs_only
        echo "Docker's side set up in $((SECONDS - t)) s; load $(load)"
        read -r x w < <(reboot_side theirs)
        theirs_boot+=("$x") theirs_wall+=("$w")
    fi
done
[[ $sides == *theirs* && $sides == *ours* ]] || exit 0
a=$(printf '%s\n' "${ours_boot[@]}" | median)
b=$(printf '%s\n' "${theirs_boot[@]}" | median)
c=$(printf '%s\n' "${ours_wall[@]}" | median)
d=$(printf '%s\n' "${theirs_wall[@]}" | median)
echo "reboot, $UNITS units: every unit READY ${a} ms after dockerd started, Docker's containers ${b} ms;" \
    "ratio $(ratio "$a" "$b") (target <= 1.0); from the reboot: ${c} ms vs ${d} ms, ratio $(ratio "$c" "$d")"
