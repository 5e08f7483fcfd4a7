#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (unit parser, join tokens, JWT verification, host-path check)
# with cargo-fuzz and libFuzzer, each for FUZZ_SECONDS (default 600), one after the other, and
# prints a line per target: runs, executions per second, corpus size, crashes. Not part of CI;
# docs/security.md records the figures. Usage: scripts/fuzz.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-600}
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi
# The machine's one toolchain is stable: libFuzzer's instrumentation flags need the nightly
# features a stable compiler unlocks with RUSTC_BOOTSTRAP.
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi
mapfile -t targets < <(if (($#)); then printf '%s\n' "$@"; else cargo fuzz list --fuzz-dir fuzz; fi)
crashed=0
for t in "${targets[@]}"; do
    echo "==> $t for ${seconds}s" >&2
    log=$(mktemp)
    rc=0
    cargo fuzz run --fuzz-dir fuzz --release "$t" -- -max_total_time="$seconds" -print_final_stats=1 \
        >"$log" 2>&1 || rc=$?
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    corpus=$(find "fuzz/corpus/$t" -type f 2>/dev/null | wc -l)
    crashes=$(find "fuzz/artifacts/$t" -type f 2>/dev/null | wc -l)
    printf '%-12s %10s runs  %7s exec/s  corpus %5s  crashes %s  (exit %s)\n' \
        "$t" "$runs" "$rate" "$corpus" "$crashes" "$rc"
    if ((rc != 0 || crashes > 0)); then
        crashed=1
        tail -n 40 "$log" >&2
    fi
    rm -f "$log"
done
exit "$crashed"
