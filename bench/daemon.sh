#!/usr/bin/env bash
# Benchmarks of containerctld and the CLI with 200 units running, each against Docker itself in
# the same run. Not a test: it prints figures for BENCHMARKS.md.
#   bench/daemon.sh [ROUNDS]      (default 20; release binaries must be built)
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null
# Before lib.sh, which takes TB_RUN (default 1) as it is sourced: hosts are labelled with it.
export TB_RUN=${TB_RUN:-benchd}
# shellcheck source=testbed/lib.sh
source testbed/lib.sh
# shellcheck source=tests/system/lib.sh
source tests/system/lib.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

ROUNDS=${1:-20}
UNITS=${UNITS:-200}
HOST=benchd

tb_ensure_deps
tb_ensure_dockerd
tb_build_images
trap tb_cleanup EXIT
bench_host_up

t=$SECONDS
bench_units u "$UNITS"
running=$(in_host docker ps -q --filter label=io.containerctl.unit | wc -l)
echo "started $UNITS units in $((SECONDS - t)) s; $running containers running"
((running == UNITS)) || { echo "expected $UNITS running containers" >&2; exit 1; }

echo
echo "== list: containerctl list --json vs docker ps (both as JSON, $UNITS units)"
ours=() theirs=()
for _ in $(seq 1 "$ROUNDS"); do
    ours+=("$(time_in_host containerctl list --json)")
    theirs+=("$(time_in_host docker ps --no-trunc --format '{{json .}}')")
done
a=$(printf '%s\n' "${ours[@]}" | median)
b=$(printf '%s\n' "${theirs[@]}" | median)
echo "containerctl list --json: median ${a} ms, p99 $(printf '%s\n' "${ours[@]}" | p99) ms;" \
    "docker ps: median ${b} ms, p99 $(printf '%s\n' "${theirs[@]}" | p99) ms; ratio $(ratio "$a" "$b") (target <= 1.0)"

echo
echo "== restart: containerctl restart vs docker restart, and vs docker stop + rm + run -d (what a"
echo "   clean restart is), each of a running sleep container with init; the three take turns"
in_host docker run -d --init --name plain ctl-test/busybox:1 sleep 100000 >/dev/null
in_host docker run -d --init --name plain2 ctl-test/busybox:1 sleep 100000 >/dev/null
ours=() theirs=() fresh=()
for i in $(seq 1 "$ROUNDS"); do
    if ((i % 2)); then ours+=("$(time_in_host containerctl restart u1)"); fi
    theirs+=("$(time_in_host docker restart plain)")
    fresh+=("$(time_in_host sh -c 'docker stop plain2 && docker rm plain2 && docker run -d --init --name plain2 ctl-test/busybox:1 sleep 100000')")
    if ((i % 2 == 0)); then ours+=("$(time_in_host containerctl restart u1)"); fi
done
a=$(printf '%s\n' "${ours[@]}" | median)
b=$(printf '%s\n' "${theirs[@]}" | median)
c=$(printf '%s\n' "${fresh[@]}" | median)
echo "containerctl restart: median ${a} ms; docker restart: median ${b} ms, ratio $(ratio "$a" "$b") (target <= 1.2);" \
    "docker stop + rm + run -d: median ${c} ms, ratio $(ratio "$a" "$c") (target <= 1.0)"

echo
echo "== GET /api/v1/units over HTTP vs Docker's GET /containers/json on its socket ($UNITS units, 200 requests each)"
token=$(in_host containerctl token create --name bench --role viewer --ttl 1h)
ours_http=$(http_ms 200 http://127.0.0.1:5000/api/v1/units -H "Authorization: Bearer $token")
theirs_http=$(http_ms 200 http://localhost/containers/json --unix-socket /var/run/docker.sock)
p50o=$(printf '%s\n' "$ours_http" | median)
p99o=$(printf '%s\n' "$ours_http" | p99)
p50d=$(printf '%s\n' "$theirs_http" | median)
p99d=$(printf '%s\n' "$theirs_http" | p99)
echo "GET /api/v1/units: p50 ${p50o} ms, p99 ${p99o} ms; GET /containers/json: p50 ${p50d} ms, p99 ${p99d} ms;" \
    "ratio p50 $(ratio "$p50o" "$p50d"), p99 $(ratio "$p99o" "$p99d") (target <= 1.0)"

echo
echo "== memory of containerctld with $UNITS units"
pid=$(in_host systemctl show -p MainPID --value containerctld)
in_host awk '/^VmRSS:/ {printf "containerctld RSS: %.1f MiB (target <= 30 MiB)\n", $2 / 1024}' "/proc/$pid/status"
in_host awk '/^Private_Clean:|^Private_Dirty:/ {p += $2} END {printf "containerctld private memory: %.1f MiB\n", p / 1024}' \
    "/proc/$pid/smaps_rollup"
dpid=$(in_host pgrep -x dockerd | head -1)
in_host awk '/^VmRSS:/ {printf "for scale, dockerd RSS: %.1f MiB\n", $2 / 1024}' "/proc/$dpid/status"
