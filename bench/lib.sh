# shellcheck shell=bash
# Shared helpers of the benchmarks: statistics, and a systemd host with the project installed.
# Sourced after testbed/lib.sh and tests/system/lib.sh.

median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) exit 1; print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
# p99 of a column of numbers (nearest rank).
p99() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) exit 1; i = int(NR * 0.99 + 0.999); if (i > NR) i = NR; print a[i]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
now_ms() { date +%s%3N; }
in_host() { tb_host "$HOST" "$@"; }

# bench_host_up [IP]: a fresh host (at IP) with the release build installed and containerctld
# running.
bench_host_up() {
    tb_host_with_project "$HOST" "${1:-}"
    tb_daemon_start "$HOST"
}

# bench_units PREFIX COUNT [ENABLED [BATCH]]: COUNT sleeping units PREFIX1..PREFIXCOUNT, started
# BATCH at a time (default: all at once); ENABLED (true or false, the default) is their [service]
# enabled, i.e. started at boot.
bench_units() {
    local prefix=$1 count=$2 enabled=${3:-false} batch=${4:-$2}
    # shellcheck disable=SC2016  # $i is the host shell's
    in_host sh -ec '
        for i in $(seq 1 '"$count"'); do
            printf "%s\n" "[container]" "image = \"ctl-test/busybox\"" "version = \"1\"" \
                "args = [\"sleep\", \"100000\"]" "init = true" "[service]" "enabled = '"$enabled"'" \
                > /etc/containerctl/units/'"$prefix"'$i.toml
        done
        systemctl daemon-reload
        for i in $(seq 1 '"$count"'); do echo containerctl@'"$prefix"'$i.service; done | xargs -n '"$batch"' systemctl start
    ' </dev/null
}

# in_host_ms NAME SCRIPT: runs `sh -ec SCRIPT` in host NAME and prints how long it took there (ms).
in_host_ms() {
    tb_host "$1" sh -ec 't=$(date +%s%N); out=$( '"$2"' 2>&1) || { echo "$out" >&2; exit 1; }
        echo $((($(date +%s%N) - t) / 1000000))' </dev/null
}

# bench_hosts_up NAME:IP...: hosts with fixed addresses, the project installed and running, in
# parallel.
bench_hosts_up() {
    local h pids=()
    for h in "$@"; do
        (
            tb_host_with_project "${h%%:*}" "${h#*:}"
            tb_daemon_start "${h%%:*}"
        ) &
        pids+=($!)
    done
    for h in "${pids[@]}"; do wait "$h"; done
}

# time_in_host CMD...: wall-clock ms of CMD run inside the host (the docker exec cost is the same
# for both sides of every ratio).
time_in_host() {
    in_host sh -c 't=$(date +%s%N); "$@" >/dev/null; echo $((($(date +%s%N) - t) / 1000000))' sh "$@"
}

# http_ms N URL [CURL_ARGS...]: N requests of URL by one curl process in the host that keeps its
# connection open (no connect or process start in the figures), one time per line in ms.
http_ms() {
    local n=$1 url=$2 i args=()
    shift 2
    for ((i = 0; i < n; i++)); do args+=(-o /dev/null "$url"); done
    in_host curl -s -w '%{time_total}\n' "$@" "${args[@]}" | awk '{printf "%.2f\n", $1 * 1000}'
}

# sandbox_cost: a transient /bin/true in containerctl.slice with the template's hardening (what
# systemd sets up at every start of a runner) vs none, and the mounts it has to go through.
sandbox_cost() {
    # shellcheck disable=SC2016  # the host's shell expands them
    in_host bash -c '
        args=()
        while read -r l; do [[ -n $l && $l != \#* ]] && args+=(-p "$l"); done \
            < <(sed -n "/^NoNewPrivileges=/,/^UMask=/p" "$(systemctl show -p FragmentPath --value containerctl@x.service)")
        best() {
            local b=999999 t d
            for _ in 1 2 3; do
                t=$(date +%s%N)
                systemd-run --wait -q -p Type=exec -p Slice=containerctl.slice "$@" /bin/true
                d=$((($(date +%s%N) - t) / 1000000))
                ((d < b)) && b=$d
            done
            echo "$b"
        }
        echo "plain: $(best) ms; with the ${#args[@]} hardening settings: $(best "${args[@]}") ms;" \
            "mount-namespace settings alone (ProtectKernel*, ProtectControlGroups): $(best -p ProtectKernelTunables=yes \
            -p ProtectKernelModules=yes -p ProtectKernelLogs=yes -p ProtectControlGroups=yes) ms;" \
            "mounts in the host: $(wc -l </proc/self/mountinfo)"
    '
}
