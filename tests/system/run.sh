#!/usr/bin/env bash
# System tests: the project installed with `make install` into a real systemd host (a container
# running systemd as PID 1 with its own dockerd), driven with systemctl and journalctl.
#   tests/system/run.sh [SCENARIO...]   (default: every t_* function; binaries must be built)
#   SYSTEM_HOST_IP=172.29.77.N tests/system/run.sh   (the host's address; default: Docker picks)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=testbed/lib.sh
source testbed/lib.sh
# shellcheck source=tests/system/lib.sh
source tests/system/lib.sh
# shellcheck source=tests/system/scenarios.sh
source tests/system/scenarios.sh
# shellcheck source=tests/system/scenarios_daemon.sh
source tests/system/scenarios_daemon.sh
# shellcheck source=tests/system/scenarios_edits.sh
source tests/system/scenarios_edits.sh
# shellcheck source=tests/system/scenarios_http.sh
source tests/system/scenarios_http.sh
# shellcheck source=tests/system/scenarios_deploy.sh
source tests/system/scenarios_deploy.sh
# shellcheck source=tests/system/scenarios_policy.sh
source tests/system/scenarios_policy.sh
# shellcheck source=tests/system/scenarios_files.sh
source tests/system/scenarios_files.sh
# shellcheck source=tests/system/private_registry.sh
source tests/system/private_registry.sh
# shellcheck source=tests/system/scenarios_registries.sh
source tests/system/scenarios_registries.sh
# shellcheck source=tests/system/scenarios_update.sh
source tests/system/scenarios_update.sh
# shellcheck source=tests/system/scenarios_secrets.sh
source tests/system/scenarios_secrets.sh
# shellcheck source=tests/system/scenarios_import.sh
source tests/system/scenarios_import.sh
# shellcheck source=tests/system/scenarios_notify.sh
source tests/system/scenarios_notify.sh
# shellcheck source=tests/system/scenarios_starts.sh
source tests/system/scenarios_starts.sh

tb_ensure_deps
tb_ensure_dockerd
tb_build_images
tb_network_ensure
trap tb_cleanup EXIT

tb_host_with_project "$HOST" "${SYSTEM_HOST_IP:-}"
# A policy and the test's users, then the daemon as a package starts it.
tb_host "$HOST" sh -ec '
    useradd --create-home --groups containerctl alice
    useradd --create-home bob
    mkdir -p /srv/containers/ops
    printf "%s\n" "[policy]" "allowed_host_paths = [\"/srv/containers\"]" \
        "allowed_devices = [\"/dev/zero\", \"/dev/ttyUSB*\"]" "allowed_networks = [\"ops-net\"]" \
        "allowed_secrets = [\"shared-*\"]" \
        > /etc/containerctl/containerctl.toml
' </dev/null
tb_daemon_start "$HOST"

if (($# == 0)); then
    mapfile -t scenarios < <(declare -F | awk '{print $3}' | grep '^t_' |
        grep -v '^t_enabled_units_come_back_after_reboot$')
    # The reboot scenario runs last: it restarts the host.
    scenarios+=(t_enabled_units_come_back_after_reboot)
else
    scenarios=("$@")
fi

passed=0 failed=0 failures=()
for t in "${scenarios[@]}"; do
    start=$SECONDS
    # Not inside `if`: bash would ignore set -e in the scenario.
    set +e
    (set -eo pipefail; "$t")
    rc=$?
    set -e
    if ((rc == 0)); then
        echo "ok     $t ($((SECONDS - start))s)"
        passed=$((passed + 1))
    else
        echo "FAILED $t ($((SECONDS - start))s)"
        failed=$((failed + 1))
        failures+=("$t")
    fi
done
if ((failed > 0)); then
    echo "failed scenarios: ${failures[*]}"
    echo "--- journal of the test host (last 100 lines) ---"
    tb_host "$HOST" journalctl --no-pager -n 100 </dev/null || true
fi
echo "system: $passed passed, $failed failed"
((failed == 0))
