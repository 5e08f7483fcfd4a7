# System scenarios for `containerctl update` (issue 14): a TLS registry on the test host at
# localhost:5443 (Debian's docker-registry, its certificate from a test CA that Docker and
# containerctld trust through /etc/docker/certs.d/localhost:5443/ca.crt) holding tags of one image built from ctl-test/busybox. Versions
# 1.0.1, 1.0.2 and 1.1.0 become healthy; 1.0.3 never does (a file baked into it fails the
# health check).

# shellcheck source=tests/system/update_images.sh
source tests/system/update_images.sh

UPD_REG=localhost:5443
UPD_IMAGE=$UPD_REG/ctl/app

# upd_cli ARGS...: containerctl as root.
upd_cli() { tb_host "$HOST" containerctl "$@" </dev/null; }

# json_eval PYTHON_EXPR: evaluates EXPR with `v` bound to the JSON on stdin, prints the result.
json_eval() {
    python3 -c 'import json, sys; v = json.load(sys.stdin); r = eval(sys.argv[1]); print("" if r is None else r)' "$1"
}

# The registry and the tags, once per host.
upd_registry() {
    # Ready only while this registry (its CA) answers: the private-registry scenarios run another
    # one under the same unit name and port, which replaces it.
    if tb_host "$HOST" test -e /run/ctl-test-registry.ready </dev/null &&
        tb_host "$HOST" curl -sf --cacert /etc/docker/certs.d/localhost:5443/ca.crt https://localhost:5443/v2/ \
            >/dev/null 2>&1 </dev/null; then
        return 0
    fi
    tb_host "$HOST" sh -ec '
        d=/etc/ctl-test-registry
        mkdir -p $d /etc/docker/certs.d/localhost:5443 /var/lib/ctl-test-registry
        cd $d
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ctl-test-ca \
            -keyout ca.key -out ca.crt 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout reg.key -out reg.csr 2>/dev/null
        printf "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n" > ext
        openssl x509 -req -in reg.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile ext -out reg.crt 2>/dev/null
        cp ca.crt /etc/docker/certs.d/localhost:5443/ca.crt
        cat > config.yml <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/ctl-test-registry
http:
  addr: :5443
  tls:
    certificate: $d/reg.crt
    key: $d/reg.key
EOF
        systemctl stop ctl-test-registry 2>/dev/null || true
        systemctl reset-failed ctl-test-registry 2>/dev/null || true
        systemd-run --quiet --unit=ctl-test-registry /usr/bin/docker-registry serve $d/config.yml
    ' </dev/null
    tb_wait_for 30 "the test registry to answer" \
        tb_host "$HOST" curl -sf --cacert /etc/ctl-test-registry/ca.crt https://localhost:5443/v2/
    local tag
    for tag in 1.0.0 1.0.1 1.0.2 1.0.3 1.1.0; do
        upd_image_build "$HOST" "$UPD_IMAGE:$tag" "$tag" "$([[ $tag == 1.0.3 ]] && echo broken)"
        tb_host "$HOST" sh -ec "docker push -q $UPD_IMAGE:$tag >/dev/null; docker rmi -f $UPD_IMAGE:$tag >/dev/null" </dev/null
    done
    tb_host "$HOST" touch /run/ctl-test-registry.ready </dev/null
}

# upd_unit NAME VERSION [EXTRA TOML]: a unit of the test image with a health check that fails
# where /broken exists. init = true: tini passes SIGTERM on, so each restart of an update stops
# `sleep` at once instead of after stop_timeout.
upd_unit() {
    unit_write "$1" <<EOF
[container]
image = "$UPD_IMAGE"
version = "$2"
init = true
args = ["sh", "-c", "echo running \$(cat /version); exec sleep 100000"]

$UPD_HEALTH

${3:-}
EOF
}

# The version the unit's container runs (from the file baked into its image).
running_version() {
    tb_host "$HOST" docker exec "containerctl-$1" cat /version </dev/null
}

t_update_dry_run_changes_nothing() {
    upd_registry
    upd_unit upd-dry 1.0.0
    reload
    sctl start containerctl@upd-dry.service
    local before revs out
    before=$(file_sum upd-dry)
    revs=$(upd_cli history upd-dry --json)
    out=$(upd_cli update upd-dry --to 1.0.1 --dry-run)
    expect_contains "dry run diff" "$out" '+version = "1.0.1"'
    expect_contains "dry run plan" "$out" "pull $UPD_IMAGE:1.0.1"
    expect_contains "dry run plan" "$out" "nothing was pulled or changed"
    expect_eq "file after a dry run" "$(file_sum upd-dry)" "$before"
    expect_eq "history after a dry run" "$(upd_cli history upd-dry --json)" "$revs"
    expect "the image not pulled by a dry run" \
        tb_host "$HOST" sh -c "! docker image inspect $UPD_IMAGE:1.0.1 >/dev/null 2>&1" </dev/null
    expect_eq "running version" "$(running_version upd-dry)" 1.0.0
    sctl stop containerctl@upd-dry.service
}

t_update_good_then_bad_version_and_check() {
    upd_registry
    upd_unit upd-app 1.0.0 $'[update]\npolicy = "patch"\nsoak = "3s"'
    unit_write upd-front <<'EOF'
[container]
image = "ctl-test/busybox"
version = "1"
init = true
args = ["sleep", "100000"]

[service]
requires = ["upd-app"]
EOF
    reload
    sctl start containerctl@upd-front.service
    wait_prop 60 upd-app ActiveState active
    wait_prop 30 upd-front ActiveState active

    # A good version: pulled, pinned, restarted with its dependant, watched.
    local front_inv out rc digest
    front_inv=$(prop upd-front InvocationID)
    out=$(upd_cli update upd-app --to 1.0.1 2>&1)
    expect_contains "update output" "$out" "updated upd-app from 1.0.0 to 1.0.1"
    expect_eq "running version after the update" "$(running_version upd-app)" 1.0.1
    digest=$(tb_host "$HOST" docker image inspect -f '{{index .RepoDigests 0}}' "$UPD_IMAGE:1.0.1" </dev/null)
    expect_contains "pinned digest" "$(tb_host "$HOST" cat /etc/containerctl/units/upd-app.toml </dev/null)" \
        "digest = \"${digest#*@}\""
    expect_eq "last revision's action" \
        "$(upd_cli history upd-app --json | json_eval 'v[0]["action"]')" update
    expect "the dependant restarted" test "$(prop upd-front InvocationID)" != "$front_inv"
    # systemd restarts a unit with Requires= on the one restarted, after it (After=): containerctl
    # only checks, and restarts one itself only when systemd did not.
    expect_contains "dependant restarted by systemd" "$out" "containerctl@upd-front.service restarted"
    expect "no explicit restart of the dependant" test "${out/by containerctl/}" = "$out"
    expect_eq "dependant active" "$(prop upd-front ActiveState)" active

    # A version that never becomes healthy: rolled back to 1.0.1 with its digest.
    front_inv=$(prop upd-front InvocationID)
    rc=0
    out=$(tb_host "$HOST" containerctl update upd-app --to 1.0.3 2>&1 </dev/null) || rc=$?
    expect_eq "exit status of a rolled-back update" "$rc" 1
    expect_contains "rollback message" "$out" "rolled back to 1.0.1: "
    expect_contains "rollback reason" "$out" "unhealthy"
    expect_contains "failed run's log" "$out" "running 1.0.3"
    expect_eq "state after the rollback" "$(prop upd-app ActiveState)" active
    expect_eq "running version after the rollback" "$(running_version upd-app)" 1.0.1
    expect_eq "health after the rollback" \
        "$(tb_host "$HOST" docker inspect -f '{{.State.Health.Status}}' containerctl-upd-app </dev/null)" healthy
    expect_contains "file after the rollback" "$(tb_host "$HOST" cat /etc/containerctl/units/upd-app.toml </dev/null)" \
        "digest = \"${digest#*@}\""
    expect_eq "revisions' actions" \
        "$(upd_cli history upd-app --json | json_eval '",".join(r["action"] for r in v[:2])')" rollback,update
    expect "the dependant restarted by the rollback" test "$(prop upd-front InvocationID)" != "$front_inv"
    expect_eq "dependant active after the rollback" "$(prop upd-front ActiveState)" active
    local unit
    unit=$(upd_cli list --json)
    expect_eq "last outcome in list --json" \
        "$(json_eval '[u for u in v if u["name"] == "upd-app"][0]["update"]["last"]["outcome"]' <<<"$unit")" rolled_back
    expect_contains "status shows the rollback" "$(upd_cli status upd-app)" "rolled back"

    # --check: 1.0.2 is the newest patch version once the rolled-back 1.0.3 is skipped.
    out=$(upd_cli update --check upd-app --json)
    expect_eq "available version" "$(json_eval 'v[0]["available"]' <<<"$out")" 1.0.2
    expect_eq "skipped versions" "$(json_eval '",".join(v[0]["skipped"])' <<<"$out")" 1.0.3
    # A viewer may not update: refused with the rule named, nothing changed.
    local viewer before refusal
    viewer=$(upd_cli token create --name upd-metrics --role viewer --ttl 1h)
    before=$(file_sum upd-app)
    refusal=$(tb_host "$HOST" curl -s -w ' %{http_code}' -H "Authorization: Bearer $viewer" \
        -H 'Content-Type: application/json' -d '{"to": "1.0.2"}' \
        http://127.0.0.1:5000/api/v1/units/upd-app/update </dev/null)
    expect_contains "a viewer's update refused" "$refusal" '"rule":"roles"'
    expect_contains "a viewer's update refused" "$refusal" ' 403'
    expect_eq "file after a refused update" "$(file_sum upd-app)" "$before"
    expect_contains "/metrics" \
        "$(tb_host "$HOST" curl -s -H "Authorization: Bearer $viewer" http://127.0.0.1:5000/metrics </dev/null)" \
        'containerctl_unit_update_available{unit="upd-app",version="1.0.2"} 1'

    # --all: the allowed update (1.0.2), one unit at a time, a summary; the image the unit ran
    # before (1.0.1) stays on the host as the fallback.
    out=$(upd_cli update --all --soak 1s)
    expect_contains "update --all summary" "$out" "upd-app"
    expect_contains "update --all summary" "$(grep upd-app <<<"$out")" "1.0.2"
    expect_contains "update --all summary" "$(grep upd-app <<<"$out")" "updated"
    expect_eq "running version after --all" "$(running_version upd-app)" 1.0.2
    expect "the previous image kept" tb_host "$HOST" sh -c "docker image inspect $UPD_IMAGE:1.0.1 >/dev/null" </dev/null
    # Nothing newer now: the update asked without a version changes nothing.
    out=$(upd_cli update upd-app)
    expect_contains "update without a newer version" "$out" "runs 1.0.2"
    sctl stop containerctl@upd-front.service containerctl@upd-app.service
}

t_update_scheduled_automatic() {
    upd_registry
    # A schedule 20 seconds from now, in the host's clock.
    local at
    at=$(tb_host "$HOST" date -d '+20 sec' '+*-*-* %H:%M:%S' </dev/null)
    upd_unit upd-sched 1.0.0 "$(printf '[update]\npolicy = "minor"\nsoak = "2s"\nschedule = "%s"\nauto = true' "$at")"
    # The same schedule without auto: the timer only checks.
    upd_unit upd-schedc 1.0.0 "$(printf '[update]\npolicy = "patch"\nschedule = "%s"' "$at")"
    reload
    sctl start containerctl@upd-sched.service containerctl@upd-schedc.service
    # containerctld starts the timer after the reload (timers.target is active already).
    tb_wait_for 20 "containerctl-update@upd-sched.timer to be started" \
        tb_host "$HOST" systemctl is-active containerctl-update@upd-sched.timer
    tb_wait_for 120 "the scheduled update of upd-sched to 1.1.0" _upd_sched_done
    expect_eq "running version after the scheduled update" "$(running_version upd-sched)" 1.1.0
    expect_eq "last revision's action" \
        "$(upd_cli history upd-sched --json | json_eval 'v[0]["action"]')" update
    tb_wait_for 60 "the scheduled check of upd-schedc" _upd_schedc_checked
    expect_eq "version after a scheduled check" "$(running_version upd-schedc)" 1.0.0
    expect_eq "an update revision after a scheduled check" \
        "$(upd_cli history upd-schedc --json | json_eval 'any(r["action"] == "update" for r in v)')" False
    sctl stop containerctl@upd-sched.service containerctl@upd-schedc.service
}

_upd_schedc_checked() {
    upd_cli list --json | json_eval \
        '([u for u in v if u["name"] == "upd-schedc"][0]["update"] or {}).get("available")' |
        grep -qx 1.0.3
}

_upd_sched_done() {
    upd_cli list --json | json_eval \
        '[u for u in v if u["name"] == "upd-sched"][0]["update"]["last"]["outcome"] + " " + [u for u in v if u["name"] == "upd-sched"][0]["version"]' |
        grep -qx "updated 1.1.0"
}
