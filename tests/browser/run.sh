#!/usr/bin/env bash
# Browser tests of the web page in a real headless Chromium (Debian's), driven by playwright-core,
# against containerctld running in a systemd test host. Screenshots land in
# tests/browser/artifacts/.
#   tests/browser/run.sh [NODE TEST OPTIONS]   (release binaries must be built), e.g.
#   tests/browser/run.sh --test-name-pattern='secret|registr|Update'   (the setup runs in full)
set -euo pipefail
cd "$(dirname "$0")/../.."
exec </dev/null
# shellcheck source=testbed/lib.sh
source testbed/lib.sh
# The system tests' registries, reused (issues 13 and 14): a private registry with a password,
# and a registry with good and bad versions of one image; upd_unit writes a unit of that image.
# shellcheck source=tests/system/lib.sh
source tests/system/lib.sh
# shellcheck source=tests/system/private_registry.sh
source tests/system/private_registry.sh
# shellcheck source=tests/system/scenarios_update.sh
source tests/system/scenarios_update.sh

export TB_RUN=${TB_RUN:-browser}
HOST=browser
HOST2=browser2
PORT=${BROWSER_TEST_PORT:-15000}

TB_DEPS+=(chromium socat curl)
command -v node >/dev/null || TB_DEPS+=(nodejs npm)
tb_ensure_deps
tb_ensure_dockerd
tb_build_images
forward_pid=
cleanup() {
    [[ -n $forward_pid ]] && kill "$forward_pid" 2>/dev/null
    tb_cleanup
}
trap cleanup EXIT

(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

# A second member (issue 15): the Move action moves a unit from $HOST to it. Both hosts are set up
# at the same time.
tb_host_with_project "$HOST2" &
host2_pid=$!
tb_host_with_project "$HOST"
tb_daemon_start "$HOST"
wait "$host2_pid" || tb_die "the second host $HOST2 did not come up"
tb_daemon_start "$HOST2"
# shellcheck disable=SC2016  # the script is expanded by the host's shell
tb_host "$HOST" sh -ec '
    containerctl new shop --image ctl-test/busybox --version 1 -- \
        sh -c "i=0; while true; do i=\$((i+1)); echo shop-line-\$i; sleep 1; done"
    containerctl set shop container.init=true
    containerctl start shop
    # The Cluster page shows a one-node cluster: this host is its manager.
    containerctl cluster init >/dev/null
    # A unit whose output goes over its log_rate_limit at once: journald drops lines (issue 12).
    containerctl new lograte --image ctl-test/busybox --version 1 -- sh -c "seq 20000; exec sleep 100000"
    containerctl set lograte container.init=true service.log_rate_limit=100/2s
    containerctl start lograte
'
# $HOST2 joins $HOST's cluster with a one-use token, as an admin would.
join_token=$(tb_host "$HOST" containerctl cluster token create --ttl 10m)
tb_host "$HOST2" containerctl cluster join "$join_token" >/dev/null
# host_json_has PATTERN CMD...: the JSON that CMD prints in the host, blanks removed, has PATTERN.
host_json_has() {
    local pattern=$1
    shift
    tb_host "$HOST" "$@" | tr -d ' \n' | grep -qF -- "$pattern"
}
# The drop is in the API (journald reported it) before the tests look for it on the page.
tb_wait_for 60 "journald's report of the drop of lograte's lines" \
    host_json_has '"log_dropped":{' containerctl status lograte --json

# Registries and secrets (issue 13): a private registry with htpasswd over TLS from a test CA, on
# its own directory, unit and port (5444), beside the update tests' registry (5443). The password
# is random and travels only in the environment of the tests, which check that no page shows it.
PRIVREG_DIR=/etc/ctl-web-registry
PRIVREG_UNIT=ctl-web-registry
REG_USER=web-tester
REG_PASSWORD=ctl-web-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
reg_ip=$(tb_host "$HOST" ip -4 -o addr show eth0 </dev/null | awk '{print $4}' | cut -d/ -f1)
REG_ADDR=$reg_ip:5444
private_registry_start "$HOST" "$reg_ip" 5444 "$REG_USER" "$REG_PASSWORD"
private_registry_trust "$HOST" "$HOST" "$REG_ADDR"

# Updates (issue 14): `webupd` runs 1.0.0 of the update registry's image; 1.0.1 is good, 1.0.3
# never becomes healthy.
upd_registry
upd_unit webupd 1.0.0 $'[update]\npolicy = "patch"\nsoak = "2s"\n\n[service]\nstop_timeout = "2s"'
reload
tb_host "$HOST" containerctl start webupd </dev/null

# Hand edits (issue 12): `handed` is edited by hand and reloaded, which makes a revision by its
# file (the History tab); then edited by hand again without a reload, so that the file on disk
# is not what systemd loaded (the "changed on disk" badge). Last: nothing after it may reload.
# shellcheck disable=SC2016  # the script is expanded by the host's shell
tb_host "$HOST" sh -ec '
    containerctl new handed --image ctl-test/busybox --version 1 -- sleep 100000
    sed -i "1i description = \"edited by hand\"" /etc/containerctl/units/handed.toml
    systemctl daemon-reload
'
tb_wait_for 30 "the hand edit of handed as a revision by its file" \
    host_json_has '"actor":"file(uid0root)"' containerctl history handed --json
tb_host "$HOST" sed -i 's/edited by hand/edited by hand, not reloaded/' /etc/containerctl/units/handed.toml
tb_wait_for 10 "handed changed on disk in the API" \
    host_json_has '"changed_on_disk":true' containerctl status handed --json

# 127.0.0.1:PORT here -> 127.0.0.1:5000 in the host's own network namespace.
pid=$(docker inspect -f '{{.State.Pid}}' "${TB_PREFIX}$HOST")
socat "TCP-LISTEN:$PORT,bind=127.0.0.1,fork,reuseaddr" \
    EXEC:"nsenter -t $pid -n socat STDIO TCP\:127.0.0.1\:5000" &
forward_pid=$!
tb_wait_for 30 "the web page through the forward" curl -fsS "http://127.0.0.1:$PORT/healthz"

BASE_URL=http://127.0.0.1:$PORT \
ADMIN_TOKEN=$(tb_host "$HOST" containerctl token create --name browser-admin --role admin --ttl 1h) \
VIEWER_TOKEN=$(tb_host "$HOST" containerctl token create --name browser-viewer --role viewer --ttl 1h) \
OPERATOR_TOKEN=$(tb_host "$HOST" containerctl token create --name browser-operator --role operator --ttl 1h) \
REGISTRY=$REG_ADDR \
REGISTRY_USER=$REG_USER \
REGISTRY_PASSWORD=$REG_PASSWORD \
UPDATE_UNIT=webupd \
UNIT=shop \
CHANGED_UNIT=handed \
LOGDROP_UNIT=lograte \
TEST_HOST=${TB_PREFIX}$HOST \
MOVE_TO=$HOST2 \
MOVE_HOST=${TB_PREFIX}$HOST2 \
CHROMIUM=/usr/bin/chromium \
    node --test --test-reporter=spec "$@" tests/browser/
