#!/usr/bin/env bash
# Benchmark of `containerctl move` (issue 15, item 6), cold and warm: the downtime of a unit with
# a 1 GiB named volume that is being written to (source stopped → target READY, the move's own
# `downtime_ms`), against the same by hand between the same two hosts in the same run: `docker
# stop`, a tar stream over a plain TCP connection (`socat` on both hosts), then `docker run` on the
# target. Each round moves the unit cold one way and warm back; each by-hand
# round copies the same volume. Not a test: it prints figures (record them in BENCHMARKS.md).
#   make && bench/move.sh [ROUNDS]     (default 3; release binaries must be built)
#   BENCH_MOVE_RATE=1gbit bench/move.sh 2   (both hosts' sending held to that rate, a token bucket
#                                           on each one's interface: a LAN instead of the test
#                                           bed's bridge, which runs at the speed of memory)
# Hosts: $BENCH_MANAGER_IP (default 172.29.77.231) and $BENCH_WORKER_IP (.232).
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null
# Before lib.sh, which takes TB_RUN (default 1) as it is sourced: hosts are labelled with it.
export TB_RUN=${TB_RUN:-bench-move}
# shellcheck source=testbed/lib.sh
source testbed/lib.sh
# The by-hand copy's `socat`, in an image of its own (the tests' hosts do not need it).
export TB_HOST_EXTRA_PACKAGES="${TB_HOST_EXTRA_PACKAGES:+$TB_HOST_EXTRA_PACKAGES }socat"

ROUNDS=${1:-3}
A=mva B=mvb
A_IP=${BENCH_MANAGER_IP:-172.29.77.231}
B_IP=${BENCH_WORKER_IP:-172.29.77.232}
MB=${BENCH_MOVE_MB:-1024}

# shellcheck source=bench/lib.sh
source bench/lib.sh

tb_ensure_deps
tb_ensure_dockerd
tb_build_images
tb_network_ensure
[[ -n ${BENCH_KEEP:-} ]] || trap tb_cleanup EXIT

for h in "$A:$A_IP" "$B:$B_IP"; do
    (tb_host_with_project "${h%%:*}" "${h#*:}" && tb_daemon_start "${h%%:*}") &
done
wait
tb_host $A containerctl cluster init --advertise-addr "$A_IP" >/dev/null 2>&1
tb_host $B containerctl cluster join "$(tb_host $A containerctl cluster token create)" >/dev/null 2>&1
# link_rate HOST PEER_IP RATE: HOST sends to PEER_IP at most RATE (tc-tbf(8)).
link_rate() {
    local dev
    dev=$(tb_host "$1" ip -o route get "$2" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
    tb_host "$1" tc qdisc replace dev "$dev" root tbf rate "$3" burst 1mb latency 50ms
}
if [[ -n ${BENCH_MOVE_RATE:-} ]]; then
    link_rate $A "$B_IP" "$BENCH_MOVE_RATE"
    link_rate $B "$A_IP" "$BENCH_MOVE_RATE"
fi
tb_wait_for 60 "member certificates" sh -c "docker exec ${TB_PREFIX}$A test -s /var/lib/containerctl/cluster/member.crt && docker exec ${TB_PREFIX}$B test -s /var/lib/containerctl/cluster/member.crt"

# The unit appends to a log in its volume while it runs; both sides run with an init, so a stop
# takes what SIGTERM takes, not the stop timeout.
unit_on() {
    tb_host "$1" sh -c "printf '%s\n' '[container]' 'image = \"ctl-test/busybox\"' 'version = \"1\"' \
        'volumes = [\"mv-data:/data\"]' \
        'args = [\"sh\", \"-c\", \"while true; do date >> /data/log; sleep 0.1; done\"]' 'init = true' \
        > /etc/containerctl/units/mv.toml && systemctl daemon-reload"
}
tb_host $A docker volume create mv-data >/dev/null
tb_host $A docker run --rm -v mv-data:/d ctl-test/busybox:1 sh -c "head -c $((MB << 20)) /dev/urandom > /d/big"
unit_on $A
tb_host $A containerctl start mv >/dev/null

# ours FROM TO [--warm]: one move; prints its downtime (ms), adds where its time went (from
# the NDJSON step lines, stamped as they arrive) to $SPLITS, and waits until FROM removed its copy.
SPLITS=$(mktemp)
ours() {
    local out
    out=$(tb_host "$1" containerctl move mv --to "$2" --soak 1s --json "${@:3}" \
        | while IFS= read -r line; do printf '%s %s\n' "$(now_ms)" "$line"; done)
    tb_wait_for 60 "$1's copy removed" sh -c "! docker exec ${TB_PREFIX}$1 docker volume inspect mv-data >/dev/null 2>&1"
    python3 - "$out" "${3:-cold}" "$SPLITS" <<'PY'
import json, sys
began, took, result = {}, [], None
for line in sys.argv[1].splitlines():
    at, _, text = line.partition(" ")
    m = json.loads(text)
    if "result" in m:
        result = m["result"]
        continue
    step, state = m.get("step"), m.get("state")
    if state == "running":
        began.setdefault(step, int(at))
    elif state in ("done", "failed") and step in began:
        took.append(f"{step} {int(at) - began[step]}")
with open(sys.argv[3], "a") as f:
    f.write(f"{sys.argv[2].lstrip('-')}: " + ", ".join(took) + " (ms)\n")
print(result["downtime_ms"])
PY
}

# by_hand FROM TO TO_IP [sync]: docker stop, tar | socat → socat | tar (on the hosts themselves,
# into the target's volume directory), docker run; prints the time (ms), after checking that
# every byte arrived. With `sync`, the target's copy is also put on disk (`sync -f` of its file
# system) before the docker run, as a move does before it starts the unit (its copy must survive a
# crash of the target before the source's data may go): the durable pipe. (Until 2026-12-01 this
# piped through busybox `nc` in containers, which delivered about 65 KB and ended without an error:
# every by-hand figure before then timed a copy that did not happen. BENCHMARKS.md, "Moves".)
HAND=/var/lib/docker/volumes/hand-data/_data
by_hand() {
    local from=$1 to=$2 ip=$3 durable=${4:-} t recv sent got
    tb_host "$from" docker run -d --init --name byhand -v hand-data:/data ctl-test/busybox:1 \
        sh -c 'while true; do date >> /data/log; sleep 0.1; done' >/dev/null
    tb_host "$to" docker volume create hand-data >/dev/null
    tb_host "$to" systemd-run --quiet --wait --unit=byhand-recv --property=Type=exec \
        sh -c "socat -u -b 1048576 TCP-LISTEN:9999,reuseaddr STDOUT | tar -C $HAND -xf -" &
    recv=$!
    tb_wait_for 30 "the receiver listening on $to" sh -c "docker exec ${TB_PREFIX}$to ss -Hltn 'sport = :9999' | grep -q ."
    t=$(now_ms)
    tb_host "$from" docker stop -t 10 byhand >/dev/null
    tb_host "$from" sh -c "tar -C $HAND -cf - . | socat -u -b 1048576 STDIN TCP:$ip:9999"
    wait "$recv"
    [[ -z $durable ]] || tb_host "$to" sync -f "$HAND"
    tb_host "$to" docker run -d --init --name byhand -v hand-data:/data ctl-test/busybox:1 \
        sh -c 'while true; do date >> /data/log; sleep 0.1; done' >/dev/null
    echo $(($(now_ms) - t))
    sent=$(tb_host "$from" stat -c %s "$HAND/big")
    got=$(tb_host "$to" stat -c %s "$HAND/big")
    if [[ $sent != "$got" ]]; then
        echo "the by-hand copy is incomplete: $got of $sent bytes arrived on $to" >&2
        exit 1
    fi
    tb_host "$from" sh -c 'docker rm -f byhand >/dev/null; docker volume rm hand-data >/dev/null'
    tb_host "$to" sh -c 'docker rm -f byhand >/dev/null'
}
tb_host $A docker volume create hand-data >/dev/null
tb_host $A docker run --rm -v hand-data:/d ctl-test/busybox:1 sh -c "head -c $((MB << 20)) /dev/urandom > /d/big"

# settle: nothing left to write back and no data in the page cache, before each timed step (the
# hosts share the machine's kernel, so this is done on the machine). A move syncs its copy before
# the start (`syncfs` of the file system that also holds the by-hand volumes), so what an earlier
# by-hand copy left dirty used to be written back inside the next move's downtime; and the by-hand
# copy read its source from the page cache, the move a source written with O_DIRECT (not cached).
settle() {
    sync
    echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || echo "note: cannot drop the page cache (not root?): figures may favour either side" >&2
}

ours_ms=() warm_ms=() hand_ms=() synced_ms=()
hfrom=$A hto=$B hto_ip=$B_IP hfrom_ip=$A_IP
# not_racy HOST: the volume's data on HOST was last changed more than 2 s ago. A warm move never
# reuses a file changed within 2 s of its first walk (source.rs, RACY_NS): moved back at once,
# the 1 GiB the cold move just wrote would be sent again after the stop, which is not what the
# warm figure measures.
not_racy() {
    (($(tb_host "$1" sh -c 'echo $(( $(date +%s) - $(stat -c %Z /var/lib/docker/volumes/mv-data/_data/big) ))') > 2))
}
for _ in $(seq 1 "$ROUNDS"); do
    settle
    ours_ms+=("$(ours $A $B)")
    tb_wait_for 30 "the moved data older than the racy window" not_racy $B
    settle
    warm_ms+=("$(ours $B $A --warm)")
    settle
    hand_ms+=("$(by_hand "$hfrom" "$hto" "$hto_ip")")
    tmp=$hfrom hfrom=$hto hto=$tmp tmp=$hfrom_ip hfrom_ip=$hto_ip hto_ip=$tmp
    settle
    synced_ms+=("$(by_hand "$hfrom" "$hto" "$hto_ip" sync)")
    tmp=$hfrom hfrom=$hto hto=$tmp tmp=$hfrom_ip hfrom_ip=$hto_ip hto_ip=$tmp
done
o=$(printf '%s\n' "${ours_ms[@]}" | median)
w=$(printf '%s\n' "${warm_ms[@]}" | median)
h=$(printf '%s\n' "${hand_ms[@]}" | median)
hs=$(printf '%s\n' "${synced_ms[@]}" | median)
echo "volume: $MB MiB random data, written to while the unit runs; $ROUNDS rounds;" \
    "link: ${BENCH_MOVE_RATE:-unlimited (the test bed bridge)}"
echo "containerctl move (cold) downtime: median $o ms (${ours_ms[*]})"
echo "containerctl move --warm downtime: median $w ms (${warm_ms[*]})"
echo "by hand (docker stop, tar | socat, docker run): median $h ms (${hand_ms[*]})"
echo "by hand, the copy synced before the run: median $hs ms (${synced_ms[*]})"
echo "cold move throughput vs raw tar pipe: $(ratio "$h" "$o") (target ≥ 0.8)"
echo "cold move throughput vs the tar pipe synced on the target: $(ratio "$hs" "$o")"
echo "warm downtime / cold downtime: $(ratio "$w" "$o") (target ≤ 0.2)"
echo "where each move's time went (each step from its first line to its last, as they arrived):"
sed 's/^/  /' "$SPLITS"
