#!/usr/bin/env bash
# Benchmarks for federation, containerctl against the raw engines in one run, in two test hosts
# with the release build installed:
#   - `containerctl cluster join TOKEN` on a fresh worker vs `docker swarm join` (target ≤ 1.5×),
#     with the join split into its steps from the `--json` progress lines;
#   - `containerctl image push NAME:TAG` on the manager into the cluster registry (TLS from the
#     cluster CA, token auth from containerctld) vs `docker push` to a plain TLS registry without
#     auth on the same host and the same storage, and `docker pull` of each on the worker (ours
#     with the worker's node credential).
# Not a test: it prints figures (record them in BENCHMARKS.md) and fails only if it cannot measure.
#   make && bench/cluster.sh [ROUNDS]     (default 5 rounds per timing)
# Hosts: manager $BENCH_MANAGER_IP (default 172.29.77.221), worker $BENCH_WORKER_IP (.222).
# BENCH_KEEP=1 keeps the hosts afterwards (journals); remove them with
# `TB_RUN=bench-cluster bash -c 'source testbed/lib.sh; tb_cleanup'`.
# Every time is taken inside a host (date before and after the command there), so `docker exec`
# is not part of it. In each round the raw and containerctl measurements alternate which goes
# first, so a busy machine penalises neither side.
# SC2016: scripts for the hosts are single-quoted on purpose.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null
# Before lib.sh, which takes TB_RUN (default 1) as it is sourced: hosts are labelled with it.
export TB_RUN=${TB_RUN:-bench-cluster}
# shellcheck source=testbed/lib.sh
source testbed/lib.sh

ROUNDS=${1:-5}
MANAGER=cmgr
WORKER=cwrk
MANAGER_IP=${BENCH_MANAGER_IP:-172.29.77.221}
WORKER_IP=${BENCH_WORKER_IP:-172.29.77.222}
# The cluster registry containerctl runs (cluster init) and the plain one of this bench.
REGISTRY=$MANAGER_IP:5002
PLAIN_REGISTRY=$MANAGER_IP:5003
# Size of the random (incompressible) layer of the pushed image.
IMAGE_MB=${BENCH_IMAGE_MB:-32}

# shellcheck source=bench/lib.sh
source bench/lib.sh

# summary NAME VALUES...: one line with the median, min and max.
summary() {
    local name=$1 med
    shift
    med=$(printf '%s\n' "$@" | median)
    printf '%s: median %s ms over %d (min %s, max %s)\n' "$name" "$med" "$#" \
        "$(printf '%s\n' "$@" | sort -n | head -1)" "$(printf '%s\n' "$@" | sort -n | tail -1)"
}

# Both hosts with the project installed (as tests/system/cluster.sh sets them up) and running.
cluster_hosts_up() { bench_hosts_up "$MANAGER:$MANAGER_IP" "$WORKER:$WORKER_IP"; }

# The manager is the cluster's first manager (and so a Swarm manager); the raw joins use the same
# Swarm.
cluster_init() {
    tb_host "$MANAGER" containerctl cluster init --advertise-addr "$MANAGER_IP" >/dev/null 2>&1 </dev/null ||
        tb_die "containerctl cluster init failed on $MANAGER" || return 1
}

one_swarm_node() { [[ $(tb_host "$MANAGER" docker node ls -q </dev/null | wc -l) == 1 ]]; }

# raw_join_ms: one `docker swarm join` of the worker with the worker token read just before; the
# worker leaves and the manager removes the node afterwards. Prints the time.
raw_join_ms() {
    local token node ms
    token=$(tb_host "$MANAGER" docker swarm join-token -q worker </dev/null) || return 1
    ms=$(in_host_ms "$WORKER" "docker swarm join --token $token $MANAGER_IP:2377") || return 1
    node=$(tb_host "$WORKER" docker info -f '{{.Swarm.NodeID}}' </dev/null) || return 1
    [[ -n $node ]] || tb_die "docker swarm join did not make the worker a swarm node" || return 1
    tb_host "$WORKER" docker swarm leave >/dev/null </dev/null || return 1
    tb_host "$MANAGER" docker node rm --force "$node" >/dev/null </dev/null || return 1
    echo "$ms"
}

# ctl_join TOKEN: `containerctl cluster join --json TOKEN` on the worker; prints its progress lines,
# each preceded by the microseconds since the command started, then "US END". A line costs one
# `date` in the pipe, which runs beside the join.
ctl_join() {
    tb_host "$WORKER" sh -c 't=$(date +%s%N)
        containerctl cluster join --json "$1" 2>&1 | while IFS= read -r l; do
            echo "$((($(date +%s%N) - t) / 1000)) $l"
        done
        echo "$((($(date +%s%N) - t) / 1000)) END"' sh "$1" </dev/null
}

# join_steps: reads ctl_join's output and prints "TOTAL PRE EXCHANGE SWARM MOUNT OTHER" in ms, or
# fails with the output if the join failed. PRE: from the command's start to the first progress
# line (client, request, the daemon's checks and `docker info`); EXCHANGE: the token exchange with
# the manager (its "running" to "done"); SWARM: the Swarm join step; MOUNT: the shared volume step
# (the transient mount unit and the Gluster mount), which runs at the same time as SWARM; OTHER:
# the rest (trust and state files, the answer, the client's exit).
join_steps() {
    python3 -c 'import json, sys
lines = sys.stdin.read().splitlines()
at, total, failed, first = {}, None, None, None
for line in lines:
    us, _, rest = line.partition(" ")
    t = int(us) / 1000
    if rest == "END":
        total = t
        continue
    try:
        v = json.loads(rest)
    except ValueError:
        continue
    if "error" in v:
        failed = v["error"]
    if "step" in v:
        first = t if first is None else first
        at.setdefault((v["step"], v["state"]), t)
def span(step):
    return at.get((step, "done"), 0) - at.get((step, "running"), 0)
if failed or total is None or ("cluster", "done") not in at:
    sys.exit("join failed: " + "\n".join(lines))
parts = [first, span("manager"), span("swarm"), span("shared volume")]
# The Swarm join and the shared volume run at the same time: the rest is what neither covers.
print(" ".join("%.0f" % x for x in [total] + parts + [total - first - parts[1] - max(parts[2], parts[3])]))'
}

# join_rounds ROUNDS: raw and containerctl joins alternately (which goes first alternates); the
# worker leaves with `containerctl cluster leave` after each containerctl join, and the next round
# waits until the manager has taken its Swarm node out. Sets JOIN_MS and RAW_JOIN_MS (medians).
# BENCH_JOIN_LOG=FILE keeps every join's timed progress lines.
join_rounds() {
    local rounds=$1 raw=() ours=() pre=() ex=() sw=() mt=() ot=() i ms tok out steps t p e s m o
    for i in $(seq 1 "$rounds"); do
        if ((i % 2)); then
            ms=$(raw_join_ms) || return 1
            raw+=("$ms")
        fi
        tok=$(tb_host "$MANAGER" containerctl cluster token create </dev/null 2>/dev/null)
        out=$(ctl_join "$tok")
        [[ -z ${BENCH_JOIN_LOG:-} ]] || printf '# round %s\n%s\n' "$i" "$out" >>"$BENCH_JOIN_LOG"
        steps=$(join_steps <<<"$out") || return 1
        read -r t p e s m o <<<"$steps"
        ours+=("$t") pre+=("$p") ex+=("$e") sw+=("$s") mt+=("$m") ot+=("$o")
        tb_host "$WORKER" containerctl cluster leave >/dev/null 2>&1 </dev/null ||
            tb_die "containerctl cluster leave failed on $WORKER" || return 1
        tb_wait_for 60 "the worker's Swarm node gone from the manager" one_swarm_node
        if ! ((i % 2)); then
            ms=$(raw_join_ms) || return 1
            raw+=("$ms")
        fi
    done
    RAW_JOIN_MS=$(printf '%s\n' "${raw[@]}" | median)
    JOIN_MS=$(printf '%s\n' "${ours[@]}" | median)
    summary "docker swarm join (raw)" "${raw[@]}"
    summary "containerctl cluster join" "${ours[@]}"
    summary "  to the first progress line (client, checks, docker info)" "${pre[@]}"
    summary "  token exchange with the manager" "${ex[@]}"
    summary "  swarm join step (concurrent with the next)" "${sw[@]}"
    summary "  shared volume step (transient mount unit, Gluster mount)" "${mt[@]}"
    summary "  the rest (trust and state files, answer, client exit)" "${ot[@]}"
    echo "ratio join: $(ratio "$JOIN_MS" "$RAW_JOIN_MS") (target <= 1.5)"
}

# member_join: the worker joins for good (untimed), for the registry part.
member_join() {
    local tok
    tok=$(tb_host "$MANAGER" containerctl cluster token create </dev/null 2>/dev/null)
    tb_host "$WORKER" containerctl cluster join "$tok" >/dev/null 2>&1 </dev/null ||
        tb_die "containerctl cluster join failed on $WORKER" || return 1
}

# A CA and a registry certificate for $MANAGER_IP, made with openssl for this bench only (the
# product makes its own with rcgen).
make_bench_ca() {
    local dir=$1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=bench-cluster-ca -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=$MANAGER_IP" -keyout "$dir/registry.key" -out "$dir/registry.csr" 2>/dev/null
    printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$MANAGER_IP" >"$dir/ext.cnf"
    openssl x509 -req -in "$dir/registry.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 2 -extfile "$dir/ext.cnf" -out "$dir/registry.crt" 2>/dev/null
}

# A plain registry (TLS, no auth) on the manager's :5003 as a transient systemd service, with the
# storage settings of the cluster registry (filesystem on the host's disk, in-memory blob
# descriptor cache); both hosts trust its CA through /etc/docker/certs.d.
plain_registry_up() {
    local dir f h
    dir=$(mktemp -d)
    make_bench_ca "$dir"
    printf '%s\n' 'version: 0.1' 'log:' '  level: warn' '  accesslog:' '    disabled: true' 'storage:' \
        '  filesystem:' '    rootdirectory: /var/lib/bench-registry' '  delete:' '    enabled: true' \
        '  cache:' '    blobdescriptor: inmemory' 'http:' "  addr: 0.0.0.0:${PLAIN_REGISTRY##*:}" \
        '  tls:' '    certificate: /etc/bench-registry/registry.crt' \
        '    key: /etc/bench-registry/registry.key' >"$dir/config.yml"
    tb_host "$MANAGER" mkdir -p /etc/bench-registry </dev/null
    for f in config.yml registry.crt registry.key; do
        docker cp "$dir/$f" "$TB_PREFIX$MANAGER:/etc/bench-registry/$f"
    done
    for h in "$MANAGER" "$WORKER"; do
        tb_host "$h" mkdir -p "/etc/docker/certs.d/$PLAIN_REGISTRY" /etc/bench-registry </dev/null
        docker cp "$dir/ca.crt" "$TB_PREFIX$h:/etc/docker/certs.d/$PLAIN_REGISTRY/ca.crt"
    done
    docker cp "$dir/ca.crt" "$TB_PREFIX$WORKER:/etc/bench-registry/ca.crt"
    rm -rf "$dir"
    tb_host "$MANAGER" systemd-run --quiet --unit bench-registry --property Type=exec \
        /usr/bin/docker-registry serve /etc/bench-registry/config.yml >/dev/null </dev/null
    tb_wait_for 30 "the plain registry on $PLAIN_REGISTRY to answer over TLS" \
        tb_host "$WORKER" curl -fsS --cacert /etc/bench-registry/ca.crt "https://$PLAIN_REGISTRY/v2/"
}

# The worker logs in to the cluster registry with its node credential (written by the join), as
# the runner does for units; `docker pull` then gets a pull token from containerctld.
worker_login() {
    local auth user pass
    auth=$(tb_host "$WORKER" cat /var/lib/containerctl/cluster/registry-auth.json </dev/null)
    user=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["username"])' <<<"$auth")
    pass=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["password"])' <<<"$auth")
    printf '%s' "$pass" | tb_host "$WORKER" docker login --username "$user" --password-stdin "$REGISTRY" >/dev/null
}

# build_big_image REF: busybox plus IMAGE_MB of fresh random data, tagged REF in the manager;
# fresh data for every image, so no push or pull finds its layer already there.
build_big_image() {
    tb_host "$MANAGER" sh -ec '
        d=$(mktemp -d)
        head -c '"$((IMAGE_MB << 20))"' /dev/urandom >"$d/blob"
        printf "FROM ctl-test/busybox:1\nCOPY blob /blob\n" >"$d/Dockerfile"
        DOCKER_BUILDKIT=0 docker build -q -t '"$1"' "$d" >/dev/null
        rm -rf "$d"' </dev/null
}

pulled() {
    tb_host "$WORKER" docker image inspect "$1" >/dev/null </dev/null ||
        tb_die "the pull of $1 left no image on the worker"
}

# registry_rounds ROUNDS: per round two fresh images; one is pushed with `docker push` to the
# plain registry, the other with `containerctl image push` to the cluster registry, then each is
# pulled on the worker. Sets RAW_PUSH_MS, RAW_PULL_MS, PUSH_MS, PULL_MS (medians).
registry_rounds() {
    local rounds=$1 rpush=() rpull=() push=() pull=() i raw ours side ms
    for i in $(seq 1 "$rounds"); do
        raw=$PLAIN_REGISTRY/bench/big:r$i
        ours=bench/big:c$i
        build_big_image "$raw"
        build_big_image "$ours"
        # Odd rounds the raw side first, even rounds ours first.
        for side in $((i % 2 ? 0 : 1)) $((i % 2 ? 1 : 0)); do
            if ((side == 0)); then
                ms=$(in_host_ms "$MANAGER" "docker push $raw") || return 1
                rpush+=("$ms")
            else
                ms=$(in_host_ms "$MANAGER" "containerctl image push $ours") || return 1
                push+=("$ms")
            fi
        done
        for side in $((i % 2 ? 0 : 1)) $((i % 2 ? 1 : 0)); do
            if ((side == 0)); then
                ms=$(in_host_ms "$WORKER" "docker pull $raw") || return 1
                rpull+=("$ms")
            else
                ms=$(in_host_ms "$WORKER" "docker pull $REGISTRY/$ours") || return 1
                pull+=("$ms")
            fi
        done
        pulled "$raw" || return 1
        pulled "$REGISTRY/$ours" || return 1
    done
    RAW_PUSH_MS=$(printf '%s\n' "${rpush[@]}" | median)
    RAW_PULL_MS=$(printf '%s\n' "${rpull[@]}" | median)
    PUSH_MS=$(printf '%s\n' "${push[@]}" | median)
    PULL_MS=$(printf '%s\n' "${pull[@]}" | median)
    summary "docker push of busybox + ${IMAGE_MB} MiB to the plain TLS registry (raw)" "${rpush[@]}"
    summary "containerctl image push of the same to the cluster registry" "${push[@]}"
    summary "docker pull on the worker from the plain registry (raw)" "${rpull[@]}"
    summary "docker pull on the worker from the cluster registry (node credential)" "${pull[@]}"
    echo "ratio push: $(ratio "$PUSH_MS" "$RAW_PUSH_MS"), ratio pull: $(ratio "$PULL_MS" "$RAW_PULL_MS")"
}

main() {
    tb_ensure_deps
    tb_ensure_dockerd
    tb_build_images
    if [[ ${BENCH_KEEP:-} != 1 ]]; then trap tb_cleanup EXIT; fi
    command -v openssl >/dev/null || tb_die "openssl is needed for the bench CA (apt install openssl)"
    command -v python3 >/dev/null || tb_die "python3 is needed to read the join's progress lines"
    cluster_hosts_up
    cluster_init
    echo "== join, $ROUNDS rounds"
    join_rounds "$ROUNDS"
    echo
    echo "== registry push and pull, $ROUNDS rounds"
    plain_registry_up
    member_join
    worker_login
    registry_rounds "$ROUNDS"
    echo
    echo "== summary: medians of $ROUNDS rounds, ms (ratio = containerctl / raw)"
    printf '%-34s %12s %8s %6s\n' what containerctl raw ratio
    printf '%-34s %12s %8s %6s  (target <= 1.5)\n' "join" "$JOIN_MS" "$RAW_JOIN_MS" "$(ratio "$JOIN_MS" "$RAW_JOIN_MS")"
    printf '%-34s %12s %8s %6s\n' "push busybox + $IMAGE_MB MiB" "$PUSH_MS" "$RAW_PUSH_MS" "$(ratio "$PUSH_MS" "$RAW_PUSH_MS")"
    printf '%-34s %12s %8s %6s\n' "pull of it on the worker" "$PULL_MS" "$RAW_PULL_MS" "$(ratio "$PULL_MS" "$RAW_PULL_MS")"
}

main
