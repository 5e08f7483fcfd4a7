#!/usr/bin/env bash
# A cluster manager under 100 members: a real manager (`containerctl cluster init` in a test host
# with the release build) and a load generator in a second test host that plays the members
# (examples/fleet.rs, built here; not part of the packages).
#   make && bench/fleet.sh
# What it does, in order:
#   1. `containerctl cluster token create` FLEET_MEMBERS times on the manager (real single-use
#      join tokens, through the CLI and the local API);
#   2. `fleet join`: each simulated member joins with its own token from its own address
#      (FLEET_NET.0.1 upwards, on the generator host's loopback, routed from the manager through
#      the generator host), then fetches its member certificate, as a member does at start. The
#      manager's side of every join is real: the token used in one transaction, `docker swarm
#      inspect` for the Swarm token, Gluster's auth.allow set to the members, the node recorded,
#      the wait for the node in the Swarm and the Swarm token rotation after it. What is simulated:
#      the members' own side (no `docker swarm join`, no Gluster mount);
#   3. `fleet load` for FLEET_DURATION seconds: every member reports its inventory (FLEET_UNITS
#      units) with its node credential over TLS presenting its member certificate, at the
#      manager's report interval (FLEET_INTERVAL s, written to the manager's [cluster]
#      report_interval), one second after a unit changed (FLEET_CHANGES a minute across the
#      fleet) and in FLEET_BURSTS bursts where every member reports at once. Meanwhile the
#      manager's nodes page (GET /api/v1/cluster/nodes) and a node's page with its history
#      (GET /api/v1/cluster/nodes/ID) are fetched twice a second with curl, and so is dockerd's
#      own `GET /nodes` (what `docker node ls` asks) on the same host for the ratio. And
#      FLEET_PAGES open Cluster pages are played as the web page does it: each holds the event
#      stream (`GET /api/v1/stream`) and loads the nodes at every `cluster` event.
# It prints the generator's latencies (per request, as a member sees them: connect, TLS handshake,
# request, answer), containerctld's CPU (utime+stime from /proc over each phase, % of one core)
# and RSS, the pages' p99 and the ratio to dockerd's /nodes, against the targets of issue 17.
# Not a test: it fails only if it cannot measure (a join or report refused, a host not up).
# Variables: FLEET_MEMBERS (100), FLEET_INTERVAL (15), FLEET_DURATION (120), FLEET_UNITS (5),
# FLEET_BURSTS (2), FLEET_CHANGES (30), FLEET_PAGES (10), FLEET_NET (10.77: members at 10.77.0.1 and up).
# Hosts: manager $BENCH_MANAGER_IP (default 172.29.77.225), generator $BENCH_LOADGEN_IP (.226);
# TB_RUN (default bench-fleet) and TB_PREFIX as for every test host.
# BENCH_KEEP=1 keeps the hosts afterwards; remove them with
# `TB_RUN=bench-fleet bash -c 'source testbed/lib.sh; tb_cleanup'`.
# SC2016: scripts for the hosts are single-quoted on purpose.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null
# Before lib.sh, which takes TB_RUN (default 1) as it is sourced: hosts are labelled with it.
export TB_RUN=${TB_RUN:-bench-fleet}
# shellcheck source=testbed/lib.sh
source testbed/lib.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

MANAGER=fmgr
LOADGEN=fgen
MANAGER_IP=${BENCH_MANAGER_IP:-172.29.77.225}
LOADGEN_IP=${BENCH_LOADGEN_IP:-172.29.77.226}
MEMBERS=${FLEET_MEMBERS:-100}
INTERVAL=${FLEET_INTERVAL:-15}
DURATION=${FLEET_DURATION:-120}
UNITS=${FLEET_UNITS:-5}
BURSTS=${FLEET_BURSTS:-2}
CHANGES=${FLEET_CHANGES:-30}
PAGES=${FLEET_PAGES:-10}
NET=${FLEET_NET:-10.77}
GEN_BIN=target/release/examples/fleet
STATE=/root/fleet.json

# cpu_ticks: containerctld's utime+stime on the manager, in clock ticks.
cpu_ticks() {
    tb_host "$MANAGER" sh -c 'pid=$(systemctl show -p MainPID --value containerctld)
        set -- $(sed "s/^.*) //" /proc/$pid/stat); echo $((${12} + ${13}))'
}

# rss_kib FIELD: VmRSS or VmHWM of containerctld on the manager.
rss_kib() {
    tb_host "$MANAGER" sh -c 'pid=$(systemctl show -p MainPID --value containerctld)
        awk -v f="$1:" "\$1 == f {print \$2}" /proc/$pid/status' sh "$1"
}

# percent TICKS SECONDS: CPU % of one core.
percent() { awk -v t="$1" -v s="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz / s * 100}'; }

manager_up() {
    tb_host_with_project "$MANAGER" "$MANAGER_IP"
    tb_host "$MANAGER" sh -c 'printf "\n[cluster]\nreport_interval = \"%ss\"\n" "$1" >>/etc/containerctl/containerctl.toml' \
        sh "$INTERVAL"
    tb_daemon_start "$MANAGER"
    tb_host "$MANAGER" containerctl cluster init --advertise-addr "$MANAGER_IP" >/dev/null 2>&1 ||
        tb_die "containerctl cluster init failed on $MANAGER" || return 1
    # The members' addresses are on the generator's loopback: the manager reaches them through it.
    tb_host "$MANAGER" ip route replace "$NET.0.0/16" via "$LOADGEN_IP"
}

loadgen_up() {
    tb_host_start "$LOADGEN" "$LOADGEN_IP"
    docker cp "$GEN_BIN" "$TB_PREFIX$LOADGEN:/usr/local/bin/fleet"
    tb_host "$LOADGEN" sh -ec 'n=$1 net=$2
        i=1
        while [ "$i" -le "$n" ]; do echo "address add $net.$((i / 256)).$((i % 256))/32 dev lo"; i=$((i + 1)); done |
            ip -batch -' sh "$MEMBERS" "$NET"
}

# page_sampler SECONDS TOKEN NODE: on the manager, twice a second until SECONDS passed, the nodes
# page, a node's page (with its history) and dockerd's /nodes; prints "nodes|node|docker MS".
page_sampler() {
    tb_host "$MANAGER" sh -c 'end=$(($(date +%s) + $1)) auth="authorization: Bearer $2"
        while [ "$(date +%s)" -lt "$end" ]; do
            curl -fsS -o /dev/null -w "nodes %{time_total}\n" -H "$auth" http://127.0.0.1:5000/api/v1/cluster/nodes
            curl -fsS -o /dev/null -w "node %{time_total}\n" -H "$auth" "http://127.0.0.1:5000/api/v1/cluster/nodes/$3"
            curl -fsS -o /dev/null -w "docker %{time_total}\n" --unix-socket /var/run/docker.sock http://docker/nodes
            sleep 0.5
        done' sh "$@" | awk '{printf "%s %.2f\n", $1, $2 * 1000}'
}

# open_pages SECONDS TOKEN: on the manager, FLEET_PAGES Cluster pages for SECONDS: each holds
# the event stream and loads the nodes at every `cluster` event, as web/cluster.js does; prints
# one line per load.
open_pages() {
    tb_host "$MANAGER" sh -c 'auth="authorization: Bearer $3" i=0
        while [ "$i" -lt "$2" ]; do
            i=$((i + 1))
            timeout "$1" curl -sN -H "$auth" http://127.0.0.1:5000/api/v1/stream | while IFS= read -r line; do
                if [ "$line" = "event: cluster" ]; then
                    curl -fsS -o /dev/null -H "$auth" http://127.0.0.1:5000/api/v1/cluster/nodes && echo load
                fi
            done &
        done
        wait' sh "$1" "$PAGES" "$2" || true
}

# column NAME FILE: the times of NAME in a sampler's output.
column() { awk -v n="$1" '$1 == n {print $2}' "$2"; }

main() {
    ((MEMBERS >= 1 && MEMBERS <= 65000)) || tb_die "FLEET_MEMBERS must be 1 to 65000"
    tb_ensure_deps
    tb_ensure_dockerd
    tb_build_images
    command -v python3 >/dev/null || tb_die "python3 is needed to read the members' state"
    tb_log "building the load generator (cargo build --locked --release --example fleet)"
    cargo build --locked --release --example fleet -q
    if [[ ${BENCH_KEEP:-} != 1 ]]; then trap tb_cleanup EXIT; fi
    manager_up &
    local m=$!
    loadgen_up || tb_die "the generator host did not come up"
    wait "$m" || tb_die "the manager did not come up"
    local out tmp t0 t1 c0 c1 secs join_cpu load_cpu rss hwm node api
    tmp=$(mktemp -d)
    out=$tmp/out

    echo "== $MEMBERS join tokens (containerctl cluster token create, single use)"
    t0=$(now_ms)
    tb_host "$MANAGER" sh -ec 'i=0; while [ "$i" -lt "$1" ]; do containerctl cluster token create --ttl 1h 2>/dev/null; i=$((i + 1)); done' \
        sh "$MEMBERS" >"$tmp/tokens"
    echo "created $(wc -l <"$tmp/tokens") in $(($(now_ms) - t0)) ms"
    docker cp "$tmp/tokens" "$TB_PREFIX$LOADGEN:/root/tokens"

    echo "== $MEMBERS joins (the manager's admission path; members one after another)"
    c0=$(cpu_ticks) t0=$(now_ms)
    tb_host "$LOADGEN" fleet join --tokens /root/tokens --first-addr "$NET.0.1" --members "$MEMBERS" --state "$STATE"
    c1=$(cpu_ticks) t1=$(now_ms)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1000}')
    join_cpu=$(percent $((c1 - c0)) "$secs")
    echo "joins took ${secs}s; containerctld CPU over them: $join_cpu % of a core"
    tb_host "$MANAGER" containerctl cluster nodes >/dev/null

    api=$(tb_host "$MANAGER" containerctl token create --name fleet-bench --role viewer 2>/dev/null)
    node=$(tb_host "$LOADGEN" cat "$STATE" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["node_id"])')

    echo "== load: $MEMBERS members, ${DURATION}s, interval ${INTERVAL}s, $UNITS units each," \
        "$CHANGES unit changes a minute, $BURSTS bursts"
    page_sampler "$DURATION" "$api" "$node" >"$tmp/pages" &
    local sampler=$!
    open_pages "$DURATION" "$api" >"$tmp/loads" &
    local pages=$!
    c0=$(cpu_ticks) t0=$(now_ms)
    tb_host "$LOADGEN" fleet load --state "$STATE" --interval "$INTERVAL" --duration "$DURATION" \
        --units "$UNITS" --bursts "$BURSTS" --changes-per-min "$CHANGES" | tee "$out"
    c1=$(cpu_ticks) t1=$(now_ms)
    wait "$sampler" || tb_die "the page sampler failed"
    wait "$pages"
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1000}')
    load_cpu=$(percent $((c1 - c0)) "$secs")
    rss=$(rss_kib VmRSS) hwm=$(rss_kib VmHWM)
    local reports per_report
    reports=$(sed -n 's/^every report: \([0-9]*\) ok.*/\1/p' "$out")
    per_report=$(awk -v t=$((c1 - c0)) -v n="$reports" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz * 1000 / n}')

    local report_p99 nodes_p99 node_p99 docker_p99 nodes_med docker_med
    report_p99=$(sed -n 's/^report at the interval: .* p99 \([0-9.]*\) ms.*/\1/p' "$out")
    nodes_p99=$(column nodes "$tmp/pages" | p99)
    node_p99=$(column node "$tmp/pages" | p99)
    docker_p99=$(column docker "$tmp/pages" | p99)
    nodes_med=$(column nodes "$tmp/pages" | median)
    docker_med=$(column docker "$tmp/pages" | median)
    echo
    echo "== pages while the load ran ($(column nodes "$tmp/pages" | wc -l) samples each)"
    echo "GET /api/v1/cluster/nodes: median $nodes_med ms, p99 $nodes_p99 ms"
    echo "GET /api/v1/cluster/nodes/ID (with history): median $(column node "$tmp/pages" | median) ms, p99 $node_p99 ms"
    echo "dockerd GET /nodes (docker node ls): median $docker_med ms, p99 $docker_p99 ms"
    echo "$PAGES open Cluster pages loaded the nodes $(wc -l <"$tmp/loads") times in all on \`cluster\` events" \
        "($reports reports in the same ${DURATION}s)"
    echo
    echo "== summary ($MEMBERS members, load average $(cut -d' ' -f1-3 /proc/loadavg))"
    printf '%-44s %10s %10s\n' what measured target
    printf '%-44s %10s %10s\n' "containerctld CPU during the load, % core" "$load_cpu" "<= 10"
    printf '%-44s %10s %10s\n' "containerctld CPU during the joins, % core" "$join_cpu" "-"
    printf '%-44s %10s %10s\n' "containerctld CPU per report (all of it), ms" "$per_report" "-"
    printf '%-44s %10s %10s\n' "containerctld RSS after the load, MiB" "$((rss / 1024))" "<= 40"
    printf '%-44s %10s %10s\n' "containerctld peak RSS (VmHWM), MiB" "$((hwm / 1024))" "<= 40"
    printf '%-44s %10s %10s\n' "report p99 at the interval, ms" "$report_p99" "<= 20"
    printf '%-44s %10s %10s\n' "nodes page p99, ms" "$nodes_p99" "<= 50"
    printf '%-44s %10s %10s\n' "node page (history) p99, ms" "$node_p99" "<= 50"
    echo "ratio nodes page / dockerd /nodes: median $(ratio "$nodes_med" "$docker_med"), p99 $(ratio "$nodes_p99" "$docker_p99")"
    rm -rf "$tmp"
}

main
