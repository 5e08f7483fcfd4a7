#!/usr/bin/env bash
# The whole test suite, from a bare Debian 12 machine with root: installs what it needs
# (docker.io, debootstrap, chromium, ...), starts dockerd if nothing runs it, then runs lints, unit
# and golden-file tests, integration tests against the real dockerd, system tests in real systemd
# hosts, browser tests of the web page, and the deb/rpm package tests. .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null
# shellcheck source=testbed/lib.sh
source testbed/lib.sh

step() { printf '\n==> %s (at %ds)\n' "$*" "$((SECONDS - t0))"; }

if ! command -v cargo >/dev/null; then
    echo "error: cargo not found: install a Rust toolchain (1.85 or newer, e.g. with rustup) first" >&2
    exit 1
fi
t0=$SECONDS
step "dependencies"
TB_DEPS+=(go-md2man docker-registry)
tb_ensure_deps
tb_ensure_dockerd

step "format and lints"
cargo fmt --check
scripts/check-layers.sh
cargo clippy --locked --all-targets --features docker-tests -- -D warnings

step "release build"
cargo build --locked --release

step "test images"
tb_build_images

step "unit, golden-file and dockerd integration tests"
cargo test --locked --features docker-tests

step "system tests in systemd hosts"
tests/system/run.sh

step "the HTTP API against its OpenAPI document: schemathesis as admin and as viewer"
tests/api/run.sh

step "federation: three systemd hosts, Swarm, registry, GlusterFS"
tests/system/cluster.sh

step "browser tests of the web page in headless Chromium"
tests/browser/run.sh

step "deb and rpm packages: build, lint, install, upgrade, remove, purge in a clean host"
tests/package/run.sh
