#!/usr/bin/env bash
# Benchmark of `containerctl update` of a [deploy] unit (issue 14): a Swarm rolling update of its
# service over a manager and a worker, against `docker service update --image` of a twin service
# created by hand with the same settings (2 replicas, one per node, the same health check,
# parallelism 1, no delay, stop-first, failure action rollback, monitor = the soak), in the same
# run. Each round moves both to the other of two versions (images of tests/system/update_images.sh
# in the cluster registry); which goes first alternates. Both commands return once Swarm is done
# (containerctl at UpdateStatus completed, the docker CLI once it saw the service converge).
# Not a test: it prints figures (record them in BENCHMARKS.md).
#   make && bench/cluster_update.sh [ROUNDS]     (default 6)
# Hosts: manager $BENCH_MANAGER_IP (default 172.29.77.225), worker $BENCH_WORKER_IP (.226).
# SC2016: scripts for the hosts are single-quoted on purpose.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null
# Before lib.sh, which takes TB_RUN (default 1) as it is sourced: hosts are labelled with it.
export TB_RUN=${TB_RUN:-bench-cluster-update}
# shellcheck source=testbed/lib.sh
source testbed/lib.sh
# shellcheck source=tests/system/update_images.sh
source tests/system/update_images.sh

ROUNDS=${1:-6}
MANAGER=umgr
WORKER=uwrk
MANAGER_IP=${BENCH_MANAGER_IP:-172.29.77.225}
WORKER_IP=${BENCH_WORKER_IP:-172.29.77.226}
REGISTRY=$MANAGER_IP:5002
SOAK=${BENCH_SOAK:-2s}

# shellcheck source=bench/lib.sh
source bench/lib.sh

tb_ensure_deps
tb_ensure_dockerd
tb_build_images
tb_network_ensure
if [[ ${BENCH_KEEP:-} != 1 ]]; then trap tb_cleanup EXIT; fi
bench_hosts_up "$MANAGER:$MANAGER_IP" "$WORKER:$WORKER_IP"
tb_host "$MANAGER" containerctl cluster init --advertise-addr "$MANAGER_IP" >/dev/null 2>&1 </dev/null ||
    tb_die "containerctl cluster init failed on $MANAGER"
tok=$(tb_host "$MANAGER" containerctl cluster token create </dev/null 2>/dev/null)
tb_host "$WORKER" containerctl cluster join "$tok" >/dev/null 2>&1 </dev/null ||
    tb_die "containerctl cluster join failed on $WORKER"

for v in 3.0.0 3.0.1; do
    upd_image_build "$MANAGER" "ctl-test/app:$v" "$v"
    tb_host "$MANAGER" containerctl image push "ctl-test/app:$v" >/dev/null 2>&1 </dev/null ||
        tb_die "containerctl image push ctl-test/app:$v failed"
done
# The raw side logs in with the credential containerctl's services carry (the manager's).
auth=$(tb_host "$MANAGER" cat /var/lib/containerctl/cluster/registry-auth.json </dev/null)
python3 -c 'import json, sys; print(json.load(sys.stdin)["password"])' <<<"$auth" |
    tb_host "$MANAGER" docker login --username "$(python3 -c 'import json, sys; print(json.load(sys.stdin)["username"])' <<<"$auth")" \
        --password-stdin "$REGISTRY" >/dev/null

tb_host "$MANAGER" sh -c 'cat > /etc/containerctl/units/roll.toml' <<EOF
[container]
image = "$REGISTRY/ctl-test/app"
version = "3.0.0"
args = ["sh", "-c", "exec sleep 100000"]
init = true

$UPD_HEALTH

[deploy]
replicas = 2
max_replicas_per_node = 1
EOF
tb_host "$MANAGER" sh -ec 'systemctl daemon-reload; containerctl start roll >/dev/null' </dev/null
tb_host "$MANAGER" docker service create -q --detach=false --name raw --with-registry-auth --replicas 2 \
    --replicas-max-per-node 1 --init --health-cmd 'test ! -e /broken' --health-interval 1s --health-timeout 1s \
    --health-retries 2 --update-parallelism 1 --update-delay 0s --update-failure-action rollback \
    --update-monitor "$SOAK" --update-order stop-first --update-max-failure-ratio 0 \
    "$REGISTRY/ctl-test/app:3.0.0" sh -c 'exec sleep 100000' >/dev/null </dev/null

ctl_update() { in_host_ms "$MANAGER" "containerctl update roll --to $1 --soak $SOAK"; }
raw_update() {
    in_host_ms "$MANAGER" "docker service update -q --detach=false --with-registry-auth --image $REGISTRY/ctl-test/app:$1 \
        --update-parallelism 1 --update-delay 0s --update-failure-action rollback --update-monitor $SOAK \
        --update-order stop-first raw"
}
# on_version SERVICE VERSION: both tasks of SERVICE run VERSION.
on_version() {
    [[ $(tb_host "$MANAGER" docker service ps "$1" --no-trunc --filter desired-state=running \
        --format '{{.Image}} {{.CurrentState}}' </dev/null | grep -c "app:$2@.* Running") == 2 ]]
}

ctl_ms=() raw_ms=()
for i in $(seq 1 "$ROUNDS"); do
    if ((i % 2)); then v=3.0.1; else v=3.0.0; fi
    if ((i % 2)); then
        ctl_ms+=("$(ctl_update "$v")")
        raw_ms+=("$(raw_update "$v")")
    else
        raw_ms+=("$(raw_update "$v")")
        ctl_ms+=("$(ctl_update "$v")")
    fi
    on_version containerctl-roll "$v" || tb_die "containerctl-roll does not run $v after round $i"
    on_version raw "$v" || tb_die "raw does not run $v after round $i"
done
ctl=$(printf '%s\n' "${ctl_ms[@]}" | median)
raw=$(printf '%s\n' "${raw_ms[@]}" | median)
printf 'Swarm rolling update of 2 tasks on 2 nodes (parallelism 1, stop-first, monitor %s): containerctl update median %s ms, docker service update median %s ms over %d rounds; ratio %s\n' \
    "$SOAK" "$ctl" "$raw" "$ROUNDS" "$(ratio "$ctl" "$raw")"
printf '  containerctl rounds (ms): %s\n  docker service update rounds (ms): %s\n' "${ctl_ms[*]}" "${raw_ms[*]}"
