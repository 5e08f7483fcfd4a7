#!/usr/bin/env bash
# Benchmark of `containerctl update` (issue 14): the time from the command to the unit running
# healthy on the new version (soak 0), against the same change by hand with Docker in the same
# run: `docker pull`, `docker stop`, `docker rm`, `docker run`, then waiting for `healthy`.
# Both pull from the same local TLS registry (tests/system/scenarios_update.sh) and alternate
# between two versions whose image is removed before each round, so every round pulls.
# Not a test: it prints figures (record them in BENCHMARKS.md).
#   bench/update.sh [ROUNDS]      (default 5; release binaries must be built)
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null
# Before lib.sh, which takes TB_RUN (default 1) as it is sourced: hosts are labelled with it.
export TB_RUN=${TB_RUN:-bench-update}
# shellcheck source=testbed/lib.sh
source testbed/lib.sh
# shellcheck source=tests/system/lib.sh
source tests/system/lib.sh
# shellcheck source=tests/system/scenarios_update.sh
source tests/system/scenarios_update.sh

ROUNDS=${1:-5}
HOST=bench

# shellcheck source=bench/lib.sh
source bench/lib.sh

tb_ensure_deps
tb_ensure_dockerd
tb_build_images
trap tb_cleanup EXIT
bench_host_up
upd_registry

HEALTH='cmd = ["true"]
interval = "1s"
timeout = "1s"'
unit_write bu <<EOF
[container]
image = "$UPD_IMAGE"
version = "1.0.0"
args = ["sleep", "100000"]
init = true

[health]
$HEALTH
EOF
reload
sctl start containerctl@bu.service
in_host docker run -d --name byhand --init --health-cmd true --health-interval 1s --health-timeout 1s \
    "$UPD_IMAGE:1.0.0" sleep 100000 >/dev/null
tb_wait_for 60 "byhand healthy" sh -c "[ \"\$(docker exec $TB_PREFIX$HOST docker inspect -f '{{.State.Health.Status}}' byhand)\" = healthy ]"

ctl_times=()
hand_times=()
for i in $(seq 1 "$ROUNDS"); do
    if ((i % 2)); then v=1.0.1; else v=1.0.2; fi
    # Every round pulls: the target version's image is not on the host.
    in_host sh -c "docker rmi -f $UPD_IMAGE:$v >/dev/null 2>&1 || true"
    t=$(now_ms)
    in_host containerctl update bu --to "$v" --soak 0 >/dev/null 2>&1
    ctl_times+=($(($(now_ms) - t)))
    [[ $(in_host docker exec containerctl-bu cat /version) == "$v" ]] || { echo "bu does not run $v" >&2; exit 1; }

    in_host sh -c "docker rmi -f $UPD_IMAGE:$v >/dev/null 2>&1 || true"
    t=$(now_ms)
    in_host sh -ec "
        docker pull -q $UPD_IMAGE:$v >/dev/null
        docker stop byhand >/dev/null
        docker rm byhand >/dev/null
        docker run -d --name byhand --init --health-cmd true --health-interval 1s --health-timeout 1s \
            $UPD_IMAGE:$v sleep 100000 >/dev/null
        until [ \"\$(docker inspect -f '{{.State.Health.Status}}' byhand)\" = healthy ]; do sleep 0.05; done
    "
    hand_times+=($(($(now_ms) - t)))
done
ctl=$(printf '%s\n' "${ctl_times[@]}" | median)
hand=$(printf '%s\n' "${hand_times[@]}" | median)
printf 'update to healthy on the new version (pull, restart, health; soak 0): containerctl update median %d ms, by hand (docker pull/stop/rm/run + wait healthy) median %d ms over %d rounds; ratio %s\n' \
    "$ctl" "$hand" "$ROUNDS" "$(ratio "$ctl" "$hand")"
printf '  containerctl rounds (ms): %s\n  by hand rounds (ms): %s\n' "${ctl_times[*]}" "${hand_times[*]}"
