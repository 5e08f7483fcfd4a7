#!/usr/bin/env bash
# Benchmarks for container units, each printed against Docker itself measured in the same run.
# Not a test: it prints figures (record them in BENCHMARKS.md) and fails only if it cannot measure.
#   bench/units.sh [ROUNDS]      (default 10 rounds per timing; release binaries must be built)
#   BENCH_ONLY=generator bench/units.sh 20    (the generator only: no test host needed)
#   BENCH_ONLY=crash bench/units.sh 20        (one part: generator, start, crash, sandbox, memory;
#                                               several separated by commas)
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null
# Before lib.sh, which takes TB_RUN (default 1) as it is sourced: hosts are labelled with it.
export TB_RUN=${TB_RUN:-bench}
# shellcheck source=testbed/lib.sh
source testbed/lib.sh
# shellcheck source=tests/system/lib.sh
source tests/system/lib.sh

ROUNDS=${1:-10}
HOST=bench
# Another run's hosts are not this one's: TB_RUN and TB_PREFIX from the environment win.

# shellcheck source=bench/lib.sh
source bench/lib.sh
_is_running() { [[ $(prop "$1" ActiveState) == active && -n $(container_id "$1") ]]; }
_docker_restarted() {
    [[ $(in_host docker inspect -f '{{.RestartCount}} {{.State.Running}}' "$1") =~ ^[1-9][0-9]*\ true$ ]]
}

# only PART: whether BENCH_ONLY (comma-separated) names PART, or is unset.
only() { [[ -z ${BENCH_ONLY:-} || ,$BENCH_ONLY, == *,$1,* ]]; }

# The generator part is a script of its own (runnable alone, no test host).
if only generator; then bench/generator.sh "$ROUNDS"; fi
[[ ${BENCH_ONLY:-} == generator ]] && exit 0

tb_ensure_deps
tb_ensure_dockerd
tb_build_images
trap tb_cleanup EXIT
bench_host_up

if only start; then
echo
echo "== start: systemctl start (returns at READY=1) vs docker run -d (returns once running)"
unit_write bstart <<EOF
[container]
image = "ctl-test/busybox"
version = "1"
args = ["sleep", "1000"]
init = true
[service]
enabled = false
EOF
reload
ours=() theirs=()
for _ in $(seq 1 "$ROUNDS"); do
    t=$(now_ms)
    in_host systemctl start containerctl@bstart
    ours+=($(($(now_ms) - t)))
    in_host systemctl stop containerctl@bstart
    t=$(now_ms)
    in_host docker run -d --init --name bstart-docker ctl-test/busybox:1 sleep 1000 >/dev/null
    theirs+=($(($(now_ms) - t)))
    in_host docker rm -f bstart-docker >/dev/null
done
start_ours=$(printf '%s\n' "${ours[@]}" | median)
start_docker=$(printf '%s\n' "${theirs[@]}" | median)
echo "systemctl start -> READY: median ${start_ours} ms; docker run -d: median ${start_docker} ms;" \
    "ratio $(ratio "$start_ours" "$start_docker") (target <= 1.5; both include one docker exec)"
fi

if only crash; then
echo
echo "== crash -> running again: restart=on-failure (restart_sec=100ms) vs docker --restart=on-failure"
echo "   (die -> start of the next container, from the engine's own event timestamps; Docker's"
echo "    first restart delay is 100 ms, so both wait the same)"
unit_write bcrash <<EOF
[container]
image = "ctl-test/busybox"
version = "1"
args = ["sh", "-c", "sleep 1; exit 1"]
[service]
restart = "on-failure"
restart_sec = "100ms"
enabled = false
EOF
reload
# gap NAME_FILTER SINCE: ms between the first die and the following start.
gap() {
    in_host docker events --since "$2" --until "$(in_host date +%s.%N)" --filter "$1" \
        --filter event=die --filter event=start --format '{{.TimeNano}} {{.Action}}' |
        awk '$2 == "die" && !d {d = $1} $2 == "start" && d {printf "%d\n", ($1 - d) / 1000000; exit}'
}
# scheduled SINCE: ms between the unit's first die and systemd's "Scheduled restart job" (the
# restart timer firing: RestartSec= plus however late PID 1 ran it).
scheduled() {
    local die at
    die=$(in_host docker events --since "$1" --until "$(in_host date +%s.%N)" --filter label=io.containerctl.unit=bcrash \
        --filter event=die --format '{{.TimeNano}}' | head -1)
    at=$(in_host journalctl -u containerctl@bcrash --since "@${1%.*}" -o short-unix --no-pager |
        awk '/Scheduled restart job/ {print $1; exit}')
    awk -v d="$die" -v s="$at" 'BEGIN {printf "%d\n", (s * 1e9 - d) / 1e6}'
}
# starts_seen FILTER SINCE: blocks until the engine has reported a second `start` of the container
# FILTER names since SINCE, or 30 s passed. It reads `docker events` in the host and polls nothing,
# so neither side's restart competes with a waiter's `docker exec` for the two cores.
starts_seen() {
    # shellcheck disable=SC2016  # the host's shell expands these
    in_host bash -c 'exec 3< <(exec docker events --since "$2" --filter "$1" --filter event=start --format x)
        pid=$! n=0
        while ((n < 2)) && read -r -t 30 _ <&3; do n=$((n + 1)); done
        kill "$pid"
        ((n == 2))' _ "$1" "$2"
}
ours=() theirs=() sched=()
for _ in $(seq 1 "$ROUNDS"); do
    since=$(in_host date +%s.%N)
    in_host systemctl start containerctl@bcrash
    starts_seen label=io.containerctl.unit=bcrash "$since"
    wait_restarts 30 bcrash 1
    tb_wait_for 30 "bcrash running again" _is_running bcrash
    ours+=("$(gap label=io.containerctl.unit=bcrash "$since")")
    sched+=("$(scheduled "$since")")
    in_host systemctl stop containerctl@bcrash
    in_host systemctl reset-failed containerctl@bcrash 2>/dev/null || true

    since=$(in_host date +%s.%N)
    in_host docker run -d --name bcrash-docker --restart=on-failure ctl-test/busybox:1 sh -c 'sleep 1; exit 1' >/dev/null
    starts_seen container=bcrash-docker "$since"
    tb_wait_for 30 "docker restarted bcrash-docker" _docker_restarted bcrash-docker
    theirs+=("$(gap container=bcrash-docker "$since")")
    in_host docker rm -f bcrash-docker >/dev/null
done
crash_ours=$(printf '%s\n' "${ours[@]}" | median)
crash_docker=$(printf '%s\n' "${theirs[@]}" | median)
echo "crash -> running: median ${crash_ours} ms; docker: median ${crash_docker} ms;" \
    "ratio $(ratio "$crash_ours" "$crash_docker") (target <= 1.0)"
echo "die -> systemd's \"Scheduled restart job\" (restart_sec=100ms): median $(printf '%s\n' "${sched[@]}" | median) ms," \
    "each round: ${sched[*]}"
fi

if only sandbox; then
echo
echo "== where a start's time goes: the runner's sandbox (the template's hardening, set up by systemd"
echo "   at every start) vs none, each a transient /bin/true in containerctl.slice, best of 3"
sandbox_cost
fi

only memory || exit 0
echo
echo "== memory: 50 units running, per runner process"
bench_units m 50
# shellcheck disable=SC2016
in_host sh -c '
    for i in $(seq 1 50); do
        pid=$(systemctl show -p MainPID --value containerctl@m$i.service)
        awk "/^Rss:/ {r=\$2} /^Private_Clean:/ {p+=\$2} /^Private_Dirty:/ {p+=\$2} END {print r, p}" /proc/$pid/smaps_rollup
    done' >/tmp/containerctl-bench-mem
awk '{r+=$1; p+=$2; n++} END {
    printf "runner RSS: %.2f MiB average; private (clean + dirty): %.2f MiB average over %d runners (target <= 3 MiB)\n", r/n/1024, p/n/1024, n}' \
    /tmp/containerctl-bench-mem
# Docker's own per-container supervisor, for scale: containerd-shim's private memory.
in_host sh -c 'for pid in $(pgrep -f containerd-shim | head -50); do
        awk "/^Private_Clean:/ {p+=\$2} /^Private_Dirty:/ {p+=\$2} END {print p}" /proc/$pid/smaps_rollup; done' |
    awk '{p+=$1; n++} END {if (n) printf "for scale, containerd-shim (Docker'"'"'s per-container process): %.2f MiB private average over %d\n", p/n/1024, n}'
rm -f /tmp/containerctl-bench-mem
