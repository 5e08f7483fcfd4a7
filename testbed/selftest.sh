#!/usr/bin/env bash
# Self-test of the testbed: builds the images, boots one systemd host with its own Docker engine,
# checks systemd, journald, inner containers, device mappings, an install and a reboot.
set -euo pipefail

# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Nothing here reads stdin; keep docker exec -i from consuming the caller's.
exec </dev/null

passed=0
failed=0
host=selftest
host_ip=172.29.77.10

pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# check DESCRIPTION CMD...: one counted check.
check() {
    local desc=$1
    shift
    if "$@"; then pass "$desc"; else fail "$desc"; fi
}

finish() {
    tb_cleanup
    echo "testbed: $passed passed, $failed failed"
    ((failed == 0))
}

# setup DESCRIPTION CMD...: a step the rest depends on; stop at once when it fails.
setup() {
    local desc=$1 t0=$SECONDS
    shift
    if "$@"; then
        pass "$desc ($((SECONDS - t0))s)"
    else
        fail "$desc"
        finish || exit 1
    fi
}

systemd_up() {
    local state
    state=$(tb_host "$host" systemctl is-system-running) || true
    echo "  systemd: $state"
    [[ $state == running || $state == degraded ]]
}

journal_has_hello() {
    tb_host "$host" journalctl -u tb-hello --no-pager -o cat | grep -qx hello-from-unit
}

unit_logs_to_journal() {
    tb_host "$host" systemd-run --quiet --unit=tb-hello echo hello-from-unit &&
        tb_wait_for 30 "hello-from-unit in journalctl -u tb-hello" journal_has_hello
}

inner_run_ok() {
    local out
    out=$(tb_host "$host" docker run --rm ctl-test/busybox:1 echo ok) || return 1
    [[ $out == ok ]]
}

inner_device_ok() {
    local out
    out=$(tb_host "$host" docker run --rm --device /dev/null:/dev/xnull ctl-test/busybox:1 \
        ls -l /dev/xnull) || return 1
    echo "  $out"
    [[ $out == c* ]]
}

# A staged tree with a unit under /lib (a symlink to usr/lib in the host) and a script.
install_ok() {
    local stage rc=0
    stage=$(mktemp -d)
    mkdir -p "$stage/lib/systemd/system" "$stage/usr/local/bin"
    printf '#!/bin/sh\necho staged-ok\n' >"$stage/usr/local/bin/tb-staged"
    chmod 755 "$stage/usr/local/bin/tb-staged"
    printf '[Service]\nType=oneshot\nExecStart=/usr/local/bin/tb-staged\n' \
        >"$stage/lib/systemd/system/tb-staged.service"
    tb_host_install "$host" "$stage" &&
        tb_host "$host" test -L /lib &&
        tb_host "$host" systemctl start tb-staged.service &&
        tb_host "$host" journalctl -u tb-staged --no-pager -o cat | grep -qx staged-ok || rc=1
    rm -rf "$stage"
    return "$rc"
}

inner_docker_ok() {
    tb_host "$host" docker info --format '  inner engine: {{.ServerVersion}} driver={{.Driver}} cgroup={{.CgroupVersion}}/{{.CgroupDriver}}'
}

trap tb_cleanup EXIT

setup "dependencies installed" tb_ensure_deps
setup "dockerd answers" tb_ensure_dockerd
setup "images built or cached" tb_build_images
echo "  images: $TB_BUSYBOX_IMAGE $TB_HOST_IMAGE"
setup "host $host started" tb_host_start "$host" "$host_ip"

check "systemd is running or degraded" systemd_up
check "systemd-run unit logs to journalctl -u" unit_logs_to_journal
check "inner docker engine answers" inner_docker_ok
check "docker run ctl-test/busybox:1 inside the host" inner_run_ok
check "--device mapping inside the host" inner_device_ok
check "tb_host_install + daemon-reload + start" install_ok
check "host has its fixed IP" tb_host "$host" sh -c "ip -4 addr show eth0 | grep -q 'inet $host_ip/'"

tb_host "$host" touch /run/tb-before-reboot
setup "host $host rebooted" tb_host_reboot "$host"
check "reboot started a fresh /run" tb_host "$host" test ! -e /run/tb-before-reboot
check "systemd is back after reboot" systemd_up
check "inner docker keeps ctl-test/busybox:1 and runs it after reboot" inner_run_ok

finish
