# shellcheck shell=bash
# Cluster steps of `containerctl update` for a [deploy] unit (issue 14): a Swarm rolling update of
# the service across the three hosts, node by node, to a good version, then to one that never
# becomes healthy, which Swarm rolls back. Sourced by tests/system/cluster.sh (which defines ctl,
# run_status, check, json_get, $H1..3, $REG and $OUT); run alone with
#   tests/system/cluster.sh c_init c_join c_registry c_update_rolling
# The images are those of the single-host update scenarios (tests/system/update_images.sh), pushed
# to the cluster registry: 3.0.0 and 3.0.1 become healthy, 3.0.2 never does.

# shellcheck source=tests/system/update_images.sh
source tests/system/update_images.sh

CLUSTER_STEPS_EXTRA+=(c_update_rolling)

# cu_unit VERSION: the [deploy] unit "rollme" on the manager, one task on each host.
cu_unit() {
    tb_host $H1 sh -c 'cat > /etc/containerctl/units/rollme.toml' <<EOF
[container]
image = "$REG/ctl-test/app"
version = "$1"
args = ["sh", "-c", "echo running \$(cat /version); exec sleep 100000"]
init = true

$UPD_HEALTH

[deploy]
replicas = 3
max_replicas_per_node = 1

[update]
soak = "4s"
EOF
    tb_host $H1 systemctl daemon-reload
}

# cu_tasks: the running tasks of the service as "NODE IMAGE" lines, sorted.
cu_tasks() {
    tb_host $H1 docker service ps containerctl-rollme --no-trunc --filter desired-state=running \
        --format '{{.Node}} {{.Image}} {{.CurrentState}}' | awk '$3 == "Running" {print $1, $2}' | sort
}

# cu_spec_image: the image in the service's spec.
cu_spec_image() {
    tb_host $H1 docker service inspect containerctl-rollme -f '{{.Spec.TaskTemplate.ContainerSpec.Image}}'
}

# cu_all_run IMAGE: each of the three hosts runs one task of IMAGE.
cu_all_run() {
    [[ $(cu_tasks) == "$(printf 'c1 %s\nc2 %s\nc3 %s' "$1" "$1" "$1")" ]]
}

c_update_rolling() {
    local v rc out id good digest
    for v in 3.0.0 3.0.1 3.0.2; do
        upd_image_build $H1 "ctl-test/app:$v" "$v" "$([[ $v == 3.0.2 ]] && echo broken)"
        rc=$(run_status $H1 image push "ctl-test/app:$v")
        expect_eq "push ctl-test/app:$v to the cluster registry" "$rc" 0
    done
    cu_unit 3.0.0
    ctl $H1 start rollme
    tb_wait_for 60 "a healthy task of 3.0.0 on each host" cu_all_run "$REG/ctl-test/app:3.0.0"
    id=$(tb_host $H1 docker service inspect containerctl-rollme -f '{{.ID}}')

    # A dry run says what would happen and changes nothing.
    out=$(ctl $H1 update rollme --to 3.0.1 --dry-run 2>&1)
    echo "$out"
    expect_contains "dry run: in place" "$out" "update service containerctl-rollme in place (not re-created)"
    expect_contains "dry run: the settings" "$out" "1 at a time, 0s apart, stop-first, each watched for 4s"
    expect_contains "dry run: the diff" "$out" '+version = "3.0.1"'
    expect_eq "the spec after a dry run" "$(cu_spec_image)" "$REG/ctl-test/app:3.0.0"
    expect_contains "the file after a dry run" "$(tb_host $H1 cat /etc/containerctl/units/rollme.toml)" 'version = "3.0.0"'

    # A good version: the same service, its tasks replaced one node at a time.
    rc=$(run_status $H1 update rollme --to 3.0.1)
    cat "$OUT"
    expect_eq "update to 3.0.1" "$rc" 0
    expect_contains "the outcome" "$(cat "$OUT")" "updated rollme from 3.0.0 to 3.0.1"
    # Node by node: a progress line where one host runs the new version and another the old.
    expect "a progress line with 3.0.1 on one host and 3.0.0 on another" \
        grep -qE 'running 3\.0\.1.*running 3\.0\.0|running 3\.0\.0.*running 3\.0\.1' "$OUT"
    for h in $H1 $H2 $H3; do
        expect_contains "the progress shows $h" "$(cat "$OUT")" "$h: running 3.0.1"
    done
    expect_eq "the service was updated, not re-created" \
        "$(tb_host $H1 docker service inspect containerctl-rollme -f '{{.ID}}')" "$id"
    digest=$(tb_host $H1 docker image inspect -f '{{index .RepoDigests 0}}' "$REG/ctl-test/app:3.0.1")
    digest=${digest#*@}
    good="$REG/ctl-test/app:3.0.1@$digest"
    expect_eq "the spec pins the digest" "$(cu_spec_image)" "$good"
    expect_eq "a task of 3.0.1 on each host" "$(cu_tasks)" "$(printf 'c1 %s\nc2 %s\nc3 %s' "$good" "$good" "$good")"
    expect_contains "the file pins the digest" "$(tb_host $H1 cat /etc/containerctl/units/rollme.toml)" "digest = \"$digest\""
    expect_eq "update_config" "$(tb_host $H1 docker service inspect containerctl-rollme \
        -f '{{.Spec.UpdateConfig.Parallelism}} {{.Spec.UpdateConfig.FailureAction}} {{.Spec.UpdateConfig.Monitor}} {{.Spec.UpdateConfig.Order}}')" \
        "1 rollback 4s stop-first"
    expect_eq "the health check is in the spec" \
        "$(tb_host $H1 docker service inspect containerctl-rollme -f '{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck.Test}}')" \
        '["CMD","sh","-c","test ! -e /broken"]'
    expect_eq "last revision's action" "$(ctl $H1 history rollme --json | json_get 0 action)" update
    expect_eq "the unit still runs" "$(tb_host $H1 systemctl is-active containerctl@rollme)" active

    # A version that never becomes healthy: Swarm rolls the service back, the command says so.
    rc=$(run_status $H1 update rollme --to 3.0.2)
    cat "$OUT"
    expect_eq "exit status of a rolled-back update" "$rc" 1
    expect_contains "rollback message" "$(cat "$OUT")" "rolled back to 3.0.1: "
    expect_contains "the failing task's error" "$(cat "$OUT")" "unhealthy"
    expect_contains "the failed task's last lines" "$(cat "$OUT")" "running 3.0.2"
    expect_contains "the rollback's step" "$(cat "$OUT")" "service containerctl-rollme runs 3.0.1 again"
    expect_eq "the spec is the previous image@digest" "$(cu_spec_image)" "$good"
    tb_wait_for 60 "a task of 3.0.1 on each host" cu_all_run "$good"
    expect_eq "the service was rolled back, not re-created" \
        "$(tb_host $H1 docker service inspect containerctl-rollme -f '{{.ID}}')" "$id"
    expect_contains "the file is 3.0.1 again" "$(tb_host $H1 cat /etc/containerctl/units/rollme.toml)" 'version = "3.0.1"'
    expect_contains "with its digest" "$(tb_host $H1 cat /etc/containerctl/units/rollme.toml)" "digest = \"$digest\""
    expect_eq "revisions' actions" \
        "$(ctl $H1 history rollme --json | python3 -c 'import json,sys; print(",".join(r["action"] for r in json.load(sys.stdin)[:2]))')" \
        rollback,update
    expect_eq "the last outcome" \
        "$(ctl $H1 list --json | python3 -c 'import json,sys; print([u for u in json.load(sys.stdin) if u["name"] == "rollme"][0]["update"]["last"]["outcome"])')" \
        rolled_back
    out=$(ctl $H1 update --check rollme --json)
    expect_contains "3.0.2 is remembered as bad" "$(json_get 0 skipped <<<"$out")" 3.0.2
    expect_eq "the unit still runs" "$(tb_host $H1 systemctl is-active containerctl@rollme)" active

    ctl $H1 stop rollme
    tb_wait_for 30 "service removed" check "! tb_host $H1 docker service inspect containerctl-rollme"
    tb_host $H1 sh -c 'rm /etc/containerctl/units/rollme.toml; systemctl daemon-reload'
}
