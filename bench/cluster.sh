#!/usr/bin/env bash
# Benchmarks for federation: the raw engines measured alone in two test hosts, as the baselines
# containerctl's cluster commands are compared with. Not a test: it prints figures (record them in
# BENCHMARKS.md) and fails only if it cannot measure.
#   bench/cluster.sh [ROUNDS]     (default 5 rounds per timing)
# Hosts: manager $BENCH_MANAGER_IP (default 172.29.77.221), worker $BENCH_WORKER_IP (.222).
# Every time is taken inside a host (date before and after the command there), so `docker exec`
# is not part of it.
# SC2016: scripts for the hosts are single-quoted on purpose; SC2034: RAW_* are for the comparisons.
# shellcheck disable=SC2016,SC2034
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null
# shellcheck source=testbed/lib.sh
source testbed/lib.sh

ROUNDS=${1:-5}
export TB_RUN=bench-cluster
MANAGER=cmgr
WORKER=cwrk
MANAGER_IP=${BENCH_MANAGER_IP:-172.29.77.221}
WORKER_IP=${BENCH_WORKER_IP:-172.29.77.222}
REGISTRY=$MANAGER_IP:5002
# Size of the random (incompressible) layer of the pushed image.
IMAGE_MB=${BENCH_IMAGE_MB:-32}

# shellcheck source=bench/lib.sh
source bench/lib.sh

# in_host_ms NAME SCRIPT: runs `sh -ec SCRIPT` in host NAME and prints how long it took there (ms).
in_host_ms() {
    tb_host "$1" sh -ec 't=$(date +%s%N); out=$( '"$2"' 2>&1) || { echo "$out" >&2; exit 1; }
        echo $((($(date +%s%N) - t) / 1000000))' </dev/null
}

# summary NAME VALUES...: one line with the median, min and max.
summary() {
    local name=$1 med
    shift
    med=$(printf '%s\n' "$@" | median)
    printf '%s: median %s ms over %d (min %s, max %s)\n' "$name" "$med" "$#" \
        "$(printf '%s\n' "$@" | sort -n | head -1)" "$(printf '%s\n' "$@" | sort -n | tail -1)"
}

cluster_hosts_up() {
    tb_host_start "$MANAGER" "$MANAGER_IP" &
    local m=$!
    tb_host_start "$WORKER" "$WORKER_IP" &
    local w=$!
    wait "$m" && wait "$w"
}

# raw_join_ms ROUNDS: `docker swarm join` of the worker to a swarm the manager initialised; the
# worker leaves and the manager removes the node between joins. Sets RAW_JOIN_MS (median).
raw_join_ms() {
    local rounds=$1 token times=() node i
    tb_host "$MANAGER" docker swarm init --advertise-addr "$MANAGER_IP" >/dev/null </dev/null
    token=$(tb_host "$MANAGER" docker swarm join-token -q worker </dev/null)
    for i in $(seq 1 "$rounds"); do
        times+=("$(in_host_ms "$WORKER" "docker swarm join --token $token $MANAGER_IP:2377")")
        node=$(tb_host "$WORKER" docker info -f '{{.Swarm.NodeID}}' </dev/null)
        [[ -n $node ]] || tb_die "join $i did not make the worker a swarm node" || return 1
        tb_host "$WORKER" docker swarm leave >/dev/null </dev/null
        tb_host "$MANAGER" docker node rm --force "$node" >/dev/null </dev/null
    done
    RAW_JOIN_MS=$(printf '%s\n' "${times[@]}" | median)
    summary "docker swarm join (raw)" "${times[@]}"
}

# TODO(lead): containerctl_join_ms ROUNDS — `containerctl cluster token create` on the manager,
# then time `containerctl cluster join TOKEN` on the worker (everything: CA pin, swarm join,
# gluster peer/brick, mount unit, registry trust), leave in between; print its median and
# `ratio "$ours" "$RAW_JOIN_MS"`. Needs the release build installed (tb_host_install).

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

# A plain registry (TLS, no auth) on the manager as a transient systemd service; both hosts trust
# the CA through /etc/docker/certs.d.
plain_registry_up() {
    local dir
    dir=$(mktemp -d)
    make_bench_ca "$dir"
    printf '%s\n' 'version: 0.1' 'log:' '  level: warn' '  accesslog:' '    disabled: true' 'storage:' \
        '  filesystem:' '    rootdirectory: /var/lib/bench-registry' 'http:' '  addr: 0.0.0.0:5002' \
        '  tls:' '    certificate: /etc/bench-registry/registry.crt' \
        '    key: /etc/bench-registry/registry.key' >"$dir/config.yml"
    tb_host "$MANAGER" mkdir -p /etc/bench-registry </dev/null
    for f in config.yml registry.crt registry.key; do
        docker cp "$dir/$f" "$TB_PREFIX$MANAGER:/etc/bench-registry/$f"
    done
    for h in "$MANAGER" "$WORKER"; do
        tb_host "$h" mkdir -p "/etc/docker/certs.d/$REGISTRY" </dev/null
        docker cp "$dir/ca.crt" "$TB_PREFIX$h:/etc/docker/certs.d/$REGISTRY/ca.crt"
    done
    tb_host "$WORKER" mkdir -p /etc/bench-registry </dev/null
    docker cp "$dir/ca.crt" "$TB_PREFIX$WORKER:/etc/bench-registry/ca.crt"
    rm -rf "$dir"
    tb_host "$MANAGER" systemd-run --quiet --unit bench-registry --property Type=exec \
        /usr/bin/docker-registry serve /etc/bench-registry/config.yml >/dev/null </dev/null
    tb_wait_for 30 "the registry on $REGISTRY to answer over TLS" \
        tb_host "$WORKER" curl -fsS --cacert /etc/bench-registry/ca.crt "https://$REGISTRY/v2/"
}

# An image of busybox plus IMAGE_MB of fresh random data, tagged REGISTRY/bench/big:TAG in the
# manager; fresh data each round, so no push or pull finds its layer already there.
build_big_image() {
    local tag=$1
    tb_host "$MANAGER" sh -ec '
        d=$(mktemp -d)
        head -c '"$((IMAGE_MB << 20))"' /dev/urandom >"$d/blob"
        printf "FROM ctl-test/busybox:1\nCOPY blob /blob\n" >"$d/Dockerfile"
        DOCKER_BUILDKIT=0 docker build -q -t '"$REGISTRY/bench/big:$tag"' "$d" >/dev/null
        rm -rf "$d"' </dev/null
}

# plain_registry_ms ROUNDS: push of a fresh ~IMAGE_MB image from the manager to its own registry,
# then pull of it on the worker. Sets RAW_PUSH_MS and RAW_PULL_MS (medians).
plain_registry_ms() {
    local rounds=$1 push=() pull=() i
    plain_registry_up
    for i in $(seq 1 "$rounds"); do
        build_big_image "r$i"
        push+=("$(in_host_ms "$MANAGER" "docker push $REGISTRY/bench/big:r$i")")
        pull+=("$(in_host_ms "$WORKER" "docker pull $REGISTRY/bench/big:r$i")")
        tb_host "$WORKER" docker image inspect "$REGISTRY/bench/big:r$i" >/dev/null </dev/null ||
            tb_die "pull $i left no image on the worker" || return 1
    done
    RAW_PUSH_MS=$(printf '%s\n' "${push[@]}" | median)
    RAW_PULL_MS=$(printf '%s\n' "${pull[@]}" | median)
    summary "docker push of a ${IMAGE_MB} MB layer to a plain TLS registry (raw)" "${push[@]}"
    summary "docker pull of it on another host (raw)" "${pull[@]}"
}

# TODO(lead): containerctl_registry_ms ROUNDS — the same push and pull against the cluster
# registry (token auth from containerctld, TLS from the cluster CA, trust set up by join), and
# `ratio` against RAW_PUSH_MS / RAW_PULL_MS.

main() {
    tb_ensure_deps
    tb_ensure_dockerd
    tb_build_images
    trap tb_cleanup EXIT
    command -v openssl >/dev/null || tb_die "openssl is needed for the bench CA (apt install openssl)"
    cluster_hosts_up
    echo "== swarm join, $ROUNDS rounds"
    raw_join_ms "$ROUNDS"
    echo
    echo "== registry push and pull, $ROUNDS rounds"
    plain_registry_ms "$ROUNDS"
}

main
