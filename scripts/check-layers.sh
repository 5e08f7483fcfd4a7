#!/usr/bin/env bash
# Fails when a module imports from a layer above its own (ARCHITECTURE.md, "Layers"). Imports
# point down only:
#   binaries (src/bin)
#   → transport: api, commands, client
#   → domain operations: daemon, cluster::{ops, server, peer, inventory}
#   → services and models: policy, db, systemd, unit, generator, runner, credentials, auth,
#     config, search, secrets, wire, logs, devices, journal, notify, webhook, import, the cluster's model
#     (cluster::{mod, ca, tls, token, registry, gluster, shared})
#   → leaves: time, digest, atomic_file, diag, port_holder
# The check is textual: it looks for `crate::NAME` (also inside `use crate::{…}` groups) and
# `super::` paths that leave a directory module.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
# forbid WHAT FILES...: lines of FILES that name any module matching the regex WHAT.
forbid() {
    local what=$1 rule=$2
    shift 2
    local hits
    # `crate::name` directly, or a name inside a `crate::{...}` group on the same line.
    hits=$(grep -nE "crate::(\{[^}]*\b)?($what)\b" "$@" 2>/dev/null || true)
    if [[ -n $hits ]]; then
        printf 'layer violation: %s\n%s\n\n' "$rule" "$hits" >&2
        failed=1
    fi
}

mapfile -t all < <(find src -name '*.rs' -not -path 'src/bin/*' | sort)
lower=()
services=()
leaves=(src/time.rs src/digest.rs src/atomic_file.rs src/diag.rs src/port_holder.rs)
for f in "${all[@]}"; do
    case $f in
    src/api/* | src/api.rs | src/commands/* | src/client.rs | src/lib.rs) ;;
    *) lower+=("$f") ;;
    esac
    case $f in
    src/api/* | src/commands/* | src/client.rs | src/lib.rs | src/daemon/* | src/daemon.rs) ;;
    src/cluster/ops/* | src/cluster/ops.rs | src/cluster/server.rs | src/cluster/server/* | src/cluster/peer.rs | src/cluster/inventory.rs) ;;
    *) services+=("$f") ;;
    esac
done

forbid 'api|commands|client' "below the transport (api, commands, client) nothing imports it" "${lower[@]}"
forbid 'daemon|cluster::(ops|server|peer|inventory)' \
    "services and models do not import the domain operations (daemon, cluster ops/server/inventory)" \
    "${services[@]}"
if grep -nE "crate::" "${leaves[@]}" >&2; then
    echo "layer violation: the leaves (time, digest, atomic_file, diag, port_holder) import nothing of the crate" >&2
    failed=1
fi
# Only the binaries start servers: the library hands out routers and listeners' handlers.
if grep -nE "axum::serve\(" "${all[@]}" >&2; then
    echo "layer violation: only src/bin/ starts servers (axum::serve)" >&2
    failed=1
fi

if ((failed)); then
    echo "see ARCHITECTURE.md, section Layers, for what each layer may import" >&2
    exit 1
fi
echo "layers: imports point down only (${#all[@]} files checked)"
