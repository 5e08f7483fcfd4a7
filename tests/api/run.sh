#!/usr/bin/env bash
# The schema-driven hostile run (issue 16): schemathesis generates requests from the daemon's own
# OpenAPI document (GET /api/v1/openapi.json) and sends them to the real containerctld in a
# systemd test host, once with an admin token and once with a viewer token. It fails on any 5xx,
# on a status, content type or body the document does not describe, on a route that ignores
# authentication or takes an undocumented method, and on any fixture unit file, revision or
# container that changed, or (viewer) anything at all that changed.
#   tests/api/run.sh          (release binaries must be built; ST_EXAMPLES=N per operation)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=testbed/lib.sh
source testbed/lib.sh
# shellcheck source=tests/assert.sh
source tests/assert.sh

ST_VERSION=4.32.5
ST_VENV=${CONTAINERCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/containerctl}/schemathesis-$ST_VERSION
ST_EXAMPLES=${ST_EXAMPLES:-40}
HOST=api
OUT=${OUT:-target/api-tests}
SOCK=/run/containerctl/containerctl.sock
# Fixture units: names the generator cannot plausibly produce, so whatever it sends to
# /units/{name}… misses them; everything they are is compared before and after.
FX=(fx-web-q7k2 fx-guard-q7k2 fx-idle-q7k2)
FX_SECRET=fx-secret-q7k2

TB_DEPS+=(python3-venv)

log() { printf '[api %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
on_host() { tb_host "$HOST" "$@" </dev/null; }
cli() { on_host containerctl "$@"; }

ensure_schemathesis() {
    if [[ -x $ST_VENV/bin/st && -e $ST_VENV/.complete ]]; then
        return 0
    fi
    log "installing schemathesis $ST_VERSION into $ST_VENV"
    rm -rf "$ST_VENV"
    mkdir -p "$(dirname "$ST_VENV")"
    python3 -m venv "$ST_VENV"
    "$ST_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
    touch "$ST_VENV/.complete"
}

# What the runs must not change: fixture unit files (hash), their revision counts, their
# containers (id, state) and the fixture secret (size, dates). `all` adds every unit file,
# container, secret and token, for the viewer run, which may change nothing at all.
# shellcheck disable=SC2016  # the script runs in the host, with its own arguments
snapshot() {
    local scope=$1
    on_host sh -ec '
        scope=$1; sock=$2; secret=$3; shift 3
        cd /etc/containerctl/units
        for n in "$@"; do
            printf "file %s %s\n" "$n" "$(sha256sum "$n.toml" | cut -d" " -f1)"
            printf "revisions %s %s\n" "$n" "$(curl -sf --unix-socket "$sock" "http://x/api/v1/units/$n/history" | grep -o "\"rev\":" | wc -l)"
            printf "container %s %s\n" "$n" "$(docker ps -a --no-trunc --filter "name=^containerctl-$n\$" --format "{{.ID}} {{.State}}")"
        done
        printf "secret %s\n" "$(containerctl secret list --json | grep -o "{[^{}]*\"name\":\"$secret\"[^{}]*}")"
        if [ "$scope" = all ]; then
            printf "secrets %s\n" "$(containerctl secret list --json | grep -o "\"name\":\"[^\"]*\"" | sort | tr "\n" " ")"
            sha256sum /etc/containerctl/units/*.toml | sed "s/^/all-file /"
            docker ps -a --no-trunc --format "all-container {{.ID}} {{.Names}} {{.State}}" | sort
            printf "tokens %s\n" "$(containerctl token list --json | grep -o "\"id\":\"[^\"]*\"" | sort | tr "\n" " ")"
        fi
    ' sh "$scope" "$SOCK" "$FX_SECRET" "${FX[@]}"
}

# The document the runs use is the daemon's own, with `follow` of GET /units/{name}/logs pinned to
# false: a followed log never ends, every such request would only time out. Operations left out,
# each for a reason (by operationId, as api::openapi names them):
#   sessions_stream          both runs: Server-Sent Events never end either.
#   cluster_init             both runs: makes the host a Swarm manager with a registry and a shared
#                            volume (minutes, and another host afterwards); tests/system/cluster.sh.
# and in the admin run only (the viewer run keeps them: they are refused before anything starts):
#   cluster_join             a token from a real manager is needed to get anywhere; a generated one
#                            could only make the host try random addresses; tests/system/cluster.sh.
#   registries_login, registries_test, updates_versions
#                            they ask a registry over the network, and the test bed reaches none:
#                            a generated name is a host that does not exist, the fixtures' image
#                            is on Docker Hub; 502 registry_failed and 503 unavailable are the
#                            answers by design (scenarios_registries.sh and scenarios_update.sh
#                            cover them against real registries).
# The admin run also reuses no value from answers (extra-data-sources): it would find the fixtures'
# names in GET /units and stop, edit and delete them, which an admin may do; the fixtures are
# there to prove that nothing else changes them. The viewer run reuses them, so that its requests
# reach the real units, tokens and secrets it must not change.
prepare_schema() {
    "$ST_VENV/bin/python" - "$1" "$2" <<'EOF2'
import json, sys
src, dst = sys.argv[1:]
doc = json.load(open(src))
for p in doc["paths"]["/api/v1/units/{name}/logs"]["get"]["parameters"]:
    if p["name"] == "follow":
        p["schema"] = {"type": "boolean", "const": False}
json.dump(doc, open(dst, "w"))
EOF2
}

# run_schemathesis ROLE TOKEN: one run; its HAR report counts the requests.
run_schemathesis() {
    local role=$1 token=$2 pid excluded=(sessions_stream cluster_init) config=$OUT/schemathesis-$1.toml
    : >"$config"
    if [[ $role == admin ]]; then
        excluded+=(cluster_join registries_login registries_test updates_versions)
        local phase
        for phase in examples coverage fuzzing; do
            printf '[phases.%s.extra-data-sources]\nresponses = false\n' "$phase" >>"$config"
        done
    fi
    local args=() id
    for id in "${excluded[@]}"; do
        args+=(--exclude-operation-id "$id")
    done
    pid=$(docker inspect -f '{{.State.Pid}}' "$TB_PREFIX$HOST")
    log "schemathesis as $role ($ST_EXAMPLES examples per operation; left out: ${excluded[*]})"
    # In the host's network namespace: the daemon listens on 127.0.0.1:5000 there, and only there.
    # One worker: hypothesis reads lambdas' source with ast, which Python 3.11 does not do safely
    # from two threads at once (a SystemError inside schemathesis, not an answer of the daemon).
    # From $OUT: schemathesis keeps a cache (.schemathesis/) in its working directory.
    local out
    out=$(realpath "$OUT")
    (cd "$out" && nsenter --net="/proc/$pid/ns/net" -- "$ST_VENV/bin/st" --no-color --config-file "$out/schemathesis-$role.toml" \
        run "$out/openapi-run.json" "${args[@]}" \
        --url http://127.0.0.1:5000 -H "Authorization: Bearer $token" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection,unsupported_method,ignored_auth \
        --phases examples,coverage,fuzzing --max-examples "$ST_EXAMPLES" --seed 16 \
        --request-timeout 20 --workers 1 --suppress-health-check all --generation-database none \
        --report har --report-har-path "$out/$role.har" --continue-on-failure \
        >"$out/schemathesis-$role.log" 2>&1) || {
        tail -n 120 "$OUT/schemathesis-$role.log" >&2
        echo "expected: schemathesis as $role to find nothing (log: $OUT/schemathesis-$role.log)" >&2
        return 1
    }
    tail -n 8 "$OUT/schemathesis-$role.log" >&2
}

requests_in() {
    "$ST_VENV/bin/python" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["log"]["entries"]))' "$1"
}

main() {
    mkdir -p "$OUT"
    tb_ensure_deps
    tb_ensure_dockerd
    tb_build_images
    tb_network_ensure
    ensure_schemathesis
    trap tb_cleanup EXIT

    tb_host_with_project "$HOST"
    tb_daemon_start "$HOST"
    for n in "${FX[@]}"; do
        cli new "$n" --image ctl-test/busybox --version 1 -- sleep 100000 >/dev/null 2>&1
        cli set "$n" container.init=true >/dev/null
    done
    cli set fx-guard-q7k2 service.protected=true >/dev/null
    cli start fx-web-q7k2 >/dev/null
    cli start fx-guard-q7k2 >/dev/null
    printf 'hunter2-fixture' | tb_host "$HOST" containerctl secret set "$FX_SECRET" >/dev/null
    local admin viewer before after total=0 n rc=0
    admin=$(cli token create --name api-admin --role admin --ttl 1h)
    viewer=$(cli token create --name api-viewer --role viewer --ttl 1h)

    # The document: served without a token, the same as `containerctld openapi` prints.
    on_host curl -fsS -o /tmp/openapi.json http://127.0.0.1:5000/api/v1/openapi.json
    on_host cat /tmp/openapi.json >"$OUT/openapi.json"
    prepare_schema "$OUT/openapi.json" "$OUT/openapi-run.json"
    expect "the served document is what containerctld openapi prints" \
        on_host sh -c 'containerctld openapi | cmp -s - /tmp/openapi.json'

    # Every documented operation reaches a handler: not the 404 of an unknown route, nor a 405.
    local method path code
    while read -r method path; do
        code=$(on_host curl -s -o /tmp/probe -w '%{http_code}' -X "$method" \
            -H "Authorization: Bearer $viewer" "http://127.0.0.1:5000$path")
        if [[ $code == 405 ]] || on_host grep -q '"no such route"' /tmp/probe; then
            echo "expected: $method $path (documented) to be routed, got $code" >&2
            rc=1
        fi
    done < <("$ST_VENV/bin/python" -c '
import json, sys
doc = json.load(open(sys.argv[1]))
for path, item in doc["paths"].items():
    if path == "/api/v1/stream":
        continue
    for method in item:
        print(method.upper(), path.replace("{name}", "nosuchunit").replace("{rev}", "1").replace("{id}", "0"))
' "$OUT/openapi.json")

    before=$(snapshot all)
    run_schemathesis viewer "$viewer" || rc=1
    after=$(snapshot all)
    expect_eq "the state after the viewer run (a viewer changes nothing)" "$after" "$before" || rc=1
    n=$(requests_in "$OUT/viewer.har") && total=$((total + n))

    before=$(snapshot fixtures)
    run_schemathesis admin "$admin" || rc=1
    after=$(snapshot fixtures)
    expect_eq "the fixtures after the admin run" "$after" "$before" || rc=1
    n=$(requests_in "$OUT/admin.har") && total=$((total + n))
    expect "the daemon to still answer" on_host curl -fsS -o /dev/null -H "Authorization: Bearer $viewer" \
        http://127.0.0.1:5000/api/v1/units || rc=1
    expect "containerctld to have stayed up (no restart)" \
        test "$(on_host systemctl show -p NRestarts --value containerctld.service)" = 0 || rc=1

    log "$total requests in all"
    expect "at least 2000 generated requests (got $total)" test "$total" -ge 2000 || rc=1
    ((rc == 0)) && echo "ok     schema-driven hostile run ($total requests)"
    return "$rc"
}

main "$@"
