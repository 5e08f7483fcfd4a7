#!/usr/bin/env bash
# Issue 17 item 3: the generator for 1000 unit files against a `cp -r` of the same files, in the
# same run and on the same tmpfs, the two taking turns. Runs on this machine (no test host, no
# Docker); release binaries must be built. Not a test: it prints figures for BENCHMARKS.md.
#   bench/generator.sh [ROUNDS]   (default 21)
#   GEN_BEFORE=PATH bench/generator.sh   (also another build of the generator, e.g. the one before
#                                         a change, in the same rounds: before/after in one run)
# Also prints the CPU time of both (perf stat when it works here, else the shell's `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

ROUNDS=${1:-21}
UNITS=${UNITS:-1000}
gen=target/release/containerctl-generator
[[ -x $gen ]] || { echo "$gen is missing: cargo build --locked --release" >&2; exit 1; }

echo "== generator: $UNITS unit files (on this machine, release build)"
# On a tmpfs, like /run/systemd/generator where systemd has generators write (and /etc is in the
# page cache at a daemon-reload): what is measured is the generator, not this disk.
gen_root=/dev/shm
[[ -d $gen_root && -w $gen_root ]] || gen_root=${TMPDIR:-/tmp}
gen_dir=$(mktemp -d -p "$gen_root" containerctl-bench-gen.XXXXXX)
trap 'rm -rf "$gen_dir"' EXIT
mkdir -p "$gen_dir/units"
for i in $(seq 1 "$UNITS"); do
    sed "s/^description = .*/description = \"bench unit $i\"/" examples/camera.toml >"$gen_dir/units/u$i.toml"
done
before=${GEN_BEFORE:-}
[[ -z $before || -x $before ]] || { echo "GEN_BEFORE=$before is not an executable" >&2; exit 1; }
# CONTAINERCTL_START_SLOTS_DIR: for a GEN_BEFORE build from before the runners made the start
# slots, which the generator then made there (in /run/containerctl/start-slots without it).
run_gen() { CONTAINERCTL_CONFIG=/nonexistent CONTAINERCTL_START_SLOTS_DIR=$gen_dir/slots CONTAINERCTL_UNIT_PATH=$gen_dir/units "${2:-$gen}" "$1" 2>/dev/null; }
gen_times=() cp_times=() before_times=()
_gen() {
    local t
    t=$(date +%s%N)
    run_gen "$gen_dir/out$1"
    gen_times+=($((($(date +%s%N) - t) / 1000)))
}
_before() {
    [[ -n $before ]] || return 0
    local t
    mkdir "$gen_dir/before$1"
    t=$(date +%s%N)
    run_gen "$gen_dir/before$1" "$before"
    before_times+=($((($(date +%s%N) - t) / 1000)))
}
_cp() {
    local t
    t=$(date +%s%N)
    cp -r "$gen_dir/units" "$gen_dir/copy$1"
    cp_times+=($((($(date +%s%N) - t) / 1000)))
}
# Each run writes into a fresh directory (systemd empties the generator directories before a
# run), and the two sides take turns going first. A plain `cp -r` of the same files is the
# baseline for what creating the files costs on this machine at this moment.
load0=$(cut -d' ' -f1 /proc/loadavg)
for i in $(seq 1 "$ROUNDS"); do
    mkdir "$gen_dir/out$i"
    case $((i % 3)) in
    0) _gen "$i"; _cp "$i"; _before "$i" ;;
    1) _cp "$i"; _before "$i"; _gen "$i" ;;
    *) _before "$i"; _gen "$i"; _cp "$i" ;;
    esac
done
load1=$(cut -d' ' -f1 /proc/loadavg)
generated=$(find "$gen_dir/out1" -name 50-containerctl.conf | wc -l)
[[ $generated == "$UNITS" ]] || { echo "generator wrote $generated drop-ins, not $UNITS" >&2; exit 1; }
entries=$(find "$gen_dir/out1" -mindepth 1 | wc -l)
gen_us=$(printf '%s\n' "${gen_times[@]}" | median)
cp_us=$(printf '%s\n' "${cp_times[@]}" | median)
printf 'generator, %d units: median %.1f ms over %d runs (target <= 50 ms); cp -r of the same files: %.1f ms; ratio %s (target <= 1.5)\n' \
    "$UNITS" "$(awk -v u="$gen_us" 'BEGIN{print u/1000}')" "$ROUNDS" "$(awk -v u="$cp_us" 'BEGIN{print u/1000}')" \
    "$(ratio "$gen_us" "$cp_us")"
if [[ -n $before ]]; then
    before_us=$(printf '%s\n' "${before_times[@]}" | median)
    printf 'before (%s), same rounds: median %.1f ms; ratio to cp -r %s; after/before %s\n' "$before" \
        "$(awk -v u="$before_us" 'BEGIN{print u/1000}')" "$(ratio "$before_us" "$cp_us")" "$(ratio "$gen_us" "$before_us")"
fi
echo "generator: $entries entries written for $UNITS units; on $(stat -f -c %T "$gen_root"); load $load0 -> $load1 ($(nproc) cores)"

# CPU time of 5 more runs of each (median): what each costs apart from waiting for a core.
cpu_of() {
    local out
    if out=$(perf stat -x, -e task-clock "$@" 2>&1 >/dev/null) && [[ $out == *task-clock* ]]; then
        grep task-clock <<<"$out" | cut -d, -f1
    else
        local TIMEFORMAT='%U %S'
        { time "$@" >/dev/null 2>&1; } 2>&1 | awk '{printf "%.3f\n", ($1 + $2) * 1000}'
    fi
}
gen_cpu=() cp_cpu=() before_cpu=()
for i in 1 2 3 4 5; do
    mkdir "$gen_dir/cpu$i"
    gen_cpu+=("$(cpu_of env CONTAINERCTL_CONFIG=/nonexistent "CONTAINERCTL_START_SLOTS_DIR=$gen_dir/slots" "CONTAINERCTL_UNIT_PATH=$gen_dir/units" "$gen" "$gen_dir/cpu$i")")
    cp_cpu+=("$(cpu_of cp -r "$gen_dir/units" "$gen_dir/cpcopy$i")")
    if [[ -n $before ]]; then
        mkdir "$gen_dir/cpubefore$i"
        before_cpu+=("$(cpu_of env CONTAINERCTL_CONFIG=/nonexistent "CONTAINERCTL_START_SLOTS_DIR=$gen_dir/slots" "CONTAINERCTL_UNIT_PATH=$gen_dir/units" "$before" "$gen_dir/cpubefore$i")")
    fi
done
a=$(printf '%s\n' "${gen_cpu[@]}" | median)
b=$(printf '%s\n' "${cp_cpu[@]}" | median)
echo "CPU time (task-clock, median of 5): generator ${a} ms, cp -r ${b} ms; ratio $(ratio "$a" "$b")"
if [[ -n $before ]]; then
    c=$(printf '%s\n' "${before_cpu[@]}" | median)
    echo "CPU time of the build before: ${c} ms; ratio to cp -r $(ratio "$c" "$b")"
fi
