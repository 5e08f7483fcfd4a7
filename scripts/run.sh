#!/usr/bin/env bash
# The main job, from a bare Debian 12 machine with root: install what containerctl needs, build
# it, install it with `make install`, start containerctld (the web page on
# http://localhost:5000) and the example unit `hello` (a web server on port 8080), then print a
# one-time login link for the page.
#
# On a host where systemd is PID 1 everything is installed natively. Where it is not (containers,
# CI sandboxes) a systemd host container is booted instead, the same one the tests use; port
# 8080 is published and localhost:5000 is forwarded into the host's own loopback (where
# containerctld listens) with socat and nsenter.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=testbed/lib.sh
source testbed/lib.sh

if ! command -v cargo >/dev/null; then
    echo "error: cargo not found: install a Rust toolchain (1.85 or newer, e.g. with rustup) first" >&2
    exit 1
fi

TB_DEPS+=(curl socat)
tb_ensure_deps
tb_ensure_dockerd
tb_log "building containerctl"
cargo build --locked --release

# The example's image is built locally from Debian's busybox-static: no registry is needed.
page='<h1>Hello from containerctl@hello</h1>'

if [[ -d /run/systemd/system ]]; then
    TB_ONLY_BUSYBOX=1 tb_build_images
    systemctl enable --now docker.service
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    make -s install DESTDIR="$stage" PREFIX=/usr >/dev/null
    cp -a "$stage"/. /
    install -d /var/lib/containerctl-example/www
    printf '%s\n' "$page" >/var/lib/containerctl-example/www/index.html
    install -m 0644 examples/hello.toml /etc/containerctl/units/hello.toml
    # "." is this machine.
    tb_project_postinst .
    tb_daemon_start .
    systemctl restart containerctl@hello.service
    on=""
else
    export TB_RUN=demo TB_HOST_ARGS="-p 127.0.0.1:8080:8080"
    tb_build_images
    tb_host_with_project demo
    tb_host demo sh -c "install -d /var/lib/containerctl-example/www && printf '%s\n' '$page' > /var/lib/containerctl-example/www/index.html" </dev/null
    tb_host demo install -m 0644 /dev/stdin /etc/containerctl/units/hello.toml <examples/hello.toml
    # The generator makes containerctl@hello from the unit file just written.
    tb_host demo systemctl daemon-reload </dev/null
    tb_daemon_start demo
    tb_host demo systemctl restart containerctl@hello.service </dev/null
    on="docker exec -it ${TB_PREFIX}demo "
    # localhost:5000 here -> 127.0.0.1:5000 inside the host's network namespace.
    pid=$(docker inspect -f '{{.State.Pid}}' "${TB_PREFIX}demo")
    pkill -f "socat TCP-LISTEN:5000,bind=127.0.0.1" 2>/dev/null || true
    setsid nohup socat TCP-LISTEN:5000,bind=127.0.0.1,fork,reuseaddr \
        EXEC:"nsenter -t $pid -n socat STDIO TCP\:127.0.0.1\:5000" >/dev/null 2>&1 &
fi

tb_wait_for 30 "http://127.0.0.1:8080/ to answer" curl -fsS http://127.0.0.1:8080/
tb_wait_for 30 "the web page on http://localhost:5000/ to answer" curl -fsS http://127.0.0.1:5000/healthz
link=$(${on:+docker exec ${TB_PREFIX}demo} containerctl web login 2>/dev/null)
cat <<EOF

containerctl@hello is running: $(curl -fsS http://127.0.0.1:8080/)

The web page is on http://localhost:5000/ - log in with this one-time link (valid 5 minutes):
  ${link/127.0.0.1/localhost}
or make a token: ${on}containerctl token create --name me --role admin

Look at it the way you look at any service:
  ${on}systemctl status containerctl@hello
  ${on}journalctl -u containerctl@hello -f
  curl http://127.0.0.1:8080/
Change it: edit ${on:+(inside the host) }/etc/containerctl/units/hello.toml, check it with
  ${on}containerctl validate /etc/containerctl/units/hello.toml
then apply it with
  ${on}systemctl daemon-reload && ${on}systemctl restart containerctl@hello
EOF
if [[ -n $on ]]; then
    echo "The systemd host keeps running; remove it with: docker rm -f -v ${TB_PREFIX}demo"
fi
