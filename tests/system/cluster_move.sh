# shellcheck shell=bash
# SC2016: scripts for the hosts are single-quoted on purpose; SC2086: host names are plain words.
# shellcheck disable=SC2016,SC2086
# Moves between members (issue 15), sourced by tests/system/cluster.sh after the joins and the
# registry: a cold move with a named volume of random data, thousands of small files, symlinks
# and a hard link (checksums equal on the target, the image streamed since only the source has
# it); moves refused by the preflight (a port taken, a device missing) with nothing stopped; the
# target's daemon killed during the transfer (the unit runs on the source again, nothing left on
# the target); hostile member requests and streams, refused with the rule they break; a warm move
# while a writer writes (its first pass broken once: nothing stopped; then only the delta sent
# after the stop, checksums equal).
#   tests/system/cluster.sh c_init c_join c_registry c_move_refused c_move_cold c_move_killed c_move_hostile c_move_hostile_delta c_move_warm

MOVE_CURL="curl -sS --cacert /var/lib/containerctl/cluster/ca.crt --cert /var/lib/containerctl/cluster/member.crt --key /var/lib/containerctl/cluster/member.key"

# move_unit_write HOST NAME PORT [EXTRA-LINE]: a unit with the named volume NAME-data.
move_unit_write() {
    tb_host "$1" sh -c "printf '%s\n' '[container]' 'image = \"ctl-test/moveonly\"' 'version = \"1\"' \
        'volumes = [\"$2-data:/data\"]' 'ports = [\"$3:8080\"]' '${4:-}' 'init = true' \
        'args = [\"sleep\", \"3600\"]' > /etc/containerctl/units/$2.toml"
    tb_host "$1" systemctl daemon-reload
}

# move_sums HOST VOLUME: every file's SHA-256, the symlinks and the hard links of a volume.
move_sums() {
    tb_host "$1" docker run --rm -v "$2:/d:ro" ctl-test/busybox:1 sh -c '
        cd /d && find . -type f | sort | xargs sha256sum | sha256sum
        find . -type l | sort | while read -r l; do echo "$l -> $(readlink "$l")"; done
        stat -c "%h %a %u:%g %Y" big small/7 hard
        [ "$(stat -c %i small/2)" = "$(stat -c %i hard)" ] && echo "hard link kept"'
}

# move_audit HOST UNIT: the audit trail of UNIT on HOST (JSON).
move_audit() { tb_host "$1" curl -sS --unix-socket /run/containerctl/containerctl.sock "http://localhost/api/v1/audit?unit=$2"; }

# move_invocation HOST NAME: the InvocationID of containerctl@NAME (changes when it restarts).
move_invocation() { tb_host "$1" systemctl show -p InvocationID --value "containerctl@$2"; }

move_setup_mover() {
    tb_host $H2 docker tag ctl-test/busybox:1 ctl-test/moveonly:1
    tb_host $H2 docker volume create mover-data >/dev/null
    # 200 MB of random data, 3000 small files, symlinks (relative, into a directory) and a hard link.
    tb_host $H2 docker run --rm -v mover-data:/d ctl-test/busybox:1 sh -ec '
        head -c 209715200 /dev/urandom > /d/big
        mkdir -p /d/small/sub
        i=0; while [ $i -lt 3000 ]; do echo "file $i $RANDOM" > /d/small/$i; i=$((i+1)); done
        ln -s big /d/link-to-big; ln -s ../small /d/small/sub/up; ln -s small/7 /d/seven
        ln /d/small/2 /d/hard
        chown 1234:5678 /d/small/7; chmod 0640 /d/small/7'
    move_unit_write $H2 mover 18080
    ctl $H2 start mover
}

c_move_refused() {
    move_setup_mover
    local inv rc
    inv=$(move_invocation $H2 mover)
    # A port the unit publishes is taken on the target.
    tb_host $H3 docker run -d --name ctl-move-blocker -p 18080:80 ctl-test/busybox:1 sleep 3600 >/dev/null
    rc=$(run_status $H2 move mover --to c3 --dry-run)
    cat "$OUT"
    expect_eq "a dry run with a blocker exits 1" "$rc" 1
    expect_contains "the dry run names the port" "$(cat "$OUT")" "port 18080/tcp is in use on c3"
    expect_contains "the dry run shows the bytes" "$(cat "$OUT")" "200.0 MB in 3001 files"
    expect_contains "the dry run says the image is streamed" "$(cat "$OUT")" "image: stream"
    rc=$(run_status $H2 move mover --to c3)
    cat "$OUT"
    expect_eq "the move is refused" "$rc" 1
    expect_contains "the refusal names the port" "$(cat "$OUT")" "port 18080/tcp is in use on c3"
    expect_contains "the refusal says nothing stopped" "$(cat "$OUT")" "nothing was stopped"
    expect_eq "the unit kept running (same invocation)" "$(move_invocation $H2 mover)" "$inv"
    expect "nothing of it on c3" check "! tb_host $H3 test -e /etc/containerctl/units/mover.toml && ! tb_host $H3 docker volume inspect mover-data >/dev/null 2>&1"
    tb_host $H3 docker rm -f ctl-move-blocker >/dev/null
    # A device the unit needs is missing on the target.
    tb_host $H2 sh -c 'mknod /dev/ctlmove c 1 3 && chmod 666 /dev/ctlmove'
    tb_host $H2 docker volume create devunit-data >/dev/null
    move_unit_write $H2 devunit 18081 'devices = ["/dev/ctlmove"]'
    ctl $H2 start devunit
    inv=$(move_invocation $H2 devunit)
    rc=$(run_status $H2 move devunit --to c3)
    cat "$OUT"
    expect_eq "a move with a missing device is refused" "$rc" 1
    expect_contains "the refusal names the device" "$(cat "$OUT")" "device /dev/ctlmove is not present on c3"
    expect_eq "devunit kept running" "$(move_invocation $H2 devunit)" "$inv"
    # A member name that is no member.
    rc=$(run_status $H2 move devunit --to nosuchhost)
    expect_eq "an unknown member" "$rc" 3
    expect_contains "says so" "$(cat "$OUT")" "no active member is called nosuchhost"
    ctl $H2 rm devunit >/dev/null
}

c_move_cold() {
    local before rc
    before=$(move_sums $H2 mover-data)
    echo "$before"
    expect_contains "the source has the hard link" "$before" "hard link kept"
    rc=$(run_status $H2 move mover --to c3 --soak 5s)
    cat "$OUT"
    expect_eq "the cold move" "$rc" 0
    expect_contains "it says where to" "$(cat "$OUT")" "mover moved from c2 to c3"
    expect_contains "the image was streamed" "$(cat "$OUT")" "ctl-test/moveonly:1 is on c3"
    expect_eq "the unit runs on c3" "$(tb_host $H3 systemctl is-active containerctl@mover)" active
    expect_eq "checksums, links, modes, owners and times equal on c3" "$(move_sums $H3 mover-data)" "$before"
    expect_eq "the unit is stopped on c2" "$(tb_host $H2 systemctl is-active containerctl@mover || true)" inactive
    expect_contains "its history came along, with the move" "$(ctl $H3 history mover)" move
    expect_contains "c3 audited the move with who did it" "$(move_audit $H3 mover)" "via c2"
    expect_contains "c2 audited the move" "$(move_audit $H2 mover)" "moved to c3"
    expect "nothing staged is left on c3" check "[[ -z \$(tb_host $H3 docker volume ls -q --filter label=io.containerctl.move) ]]"
    # After the soak, c2's copy goes (the unit did not run there again).
    tb_wait_for 60 "c2's copy of the data removed after the soak" check "! tb_host $H2 docker volume inspect mover-data >/dev/null 2>&1"
    tb_wait_for 20 "c2's unit file removed after the soak" check "! tb_host $H2 test -e /etc/containerctl/units/mover.toml"
}

c_move_killed() {
    local inv pid dev rc=0
    inv=$(move_invocation $H3 mover)
    # The whole copy takes under a second at full speed, less than one look at c2's disk: c3's
    # sending is held to 10 MB/s (a token bucket on its interface) so that the kill below lands
    # in the copy and not after it.
    dev=$(tb_host $H3 ip -o route get "$IP2" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
    tb_host $H3 tc qdisc replace dev "$dev" root tbf rate 80mbit burst 256kb latency 200ms
    ctl $H3 move mover --to c2 >"$OUT" 2>&1 &
    pid=$!
    # Once data is arriving on c2, its daemon is killed.
    tb_wait_for 60 "data arriving on c2" check "[[ \$(tb_host $H2 sh -c 'du -sm /var/lib/docker/volumes/containerctl-move-*/_data 2>/dev/null | cut -f1 | head -1') -gt 5 ]]" \
        || { tb_host $H3 tc qdisc del dev "$dev" root; return 1; }
    tb_host $H2 systemctl kill -s KILL containerctld
    wait "$pid" || rc=$?
    tb_host $H3 tc qdisc del dev "$dev" root
    cat "$OUT"
    expect "the move failed" check "(( $rc != 0 ))"
    expect_contains "it says the unit runs on c3 again" "$(cat "$OUT")" "mover runs on c3 again"
    expect_eq "the unit runs on c3" "$(tb_host $H3 systemctl is-active containerctl@mover)" active
    expect "a new invocation (restarted on the source)" check "[[ \$(move_invocation $H3 mover) != '$inv' ]]"
    tb_wait_for 60 "containerctld back on c2" check "ctl $H2 list >/dev/null"
    tb_wait_for 60 "nothing staged left on c2" check "[[ -z \$(tb_host $H2 docker volume ls -q --filter label=io.containerctl.move) ]]"
    expect "no unit file on c2" check "! tb_host $H2 test -e /etc/containerctl/units/mover.toml"
    expect "no volume on c2" check "! tb_host $H2 docker volume inspect mover-data >/dev/null 2>&1"
    expect "no move record on c2" check "[[ -z \$(tb_host $H2 ls /var/lib/containerctl/cluster/moves) ]]"
    expect_contains "c3's audit says why" "$(move_audit $H3 mover)" "failed at copy"
}

# move_offer NAME: an offer of a unit NAME with the named volume NAME-data, by an admin.
move_offer() {
    python3 -c 'import json,sys; n=sys.argv[1]
text="[container]\nimage = \"ctl-test/busybox\"\nversion = \"1\"\nvolumes = [\"%s-data:/data\"]\n" % n
print(json.dumps({"unit": n, "text": text, "caller": {"role": "admin", "actor": "test"}, "source": "c2", "bytes": 3, "files": 1}))' "$1"
}

# move_begin_json NAME [ENTRIES-JSON]: a begin request with a manifest (default: the root and a 3-byte file f).
move_begin_json() {
    python3 -c 'import json,sys
offer=json.loads(sys.argv[1])
d={"path":"","kind":"dir","mode":0o755,"uid":0,"gid":0,"mtime":1}
entries=json.loads(sys.argv[2]) if len(sys.argv)>2 else [d, dict(d, path="f", kind="file", mode=0o644, size=3)]
print(json.dumps({"offer": offer, "manifest": {"volumes": [{"volume": {"kind":"named","name": offer["unit"]+"-data"}, "entries": entries}]}}))' "$(move_offer "$1")" "${@:2}"
}

# move_tar KIND: a hostile tar stream for the manifest above, on stdout.
move_tar() {
    python3 - "$1" <<'EOF'
import io, sys, tarfile
kind = sys.argv[1]
buf = io.BytesIO()
t = tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT)
def add(name, typ=tarfile.REGTYPE, data=b"", link=""):
    i = tarfile.TarInfo(name); i.type = typ; i.size = len(data) if typ == tarfile.REGTYPE else 0; i.linkname = link
    t.addfile(i, io.BytesIO(data) if typ == tarfile.REGTYPE else None)
add("0", tarfile.DIRTYPE)
if kind == "traversal": add("0/../../../../tmp/ctl-move-pwned", data=b"abc")
elif kind == "absolute": add("/tmp/ctl-move-pwned", data=b"abc")
elif kind == "device": add("0/f", tarfile.CHRTYPE)
elif kind == "oversized": add("0/f", data=b"x" * 65536)
elif kind == "symlink": add("0/f", tarfile.SYMTYPE, link="/etc/shadow")
elif kind == "valid": add("0/f", data=b"abc")
t.close()
sys.stdout.buffer.write(buf.getvalue())
EOF
}

move_api() { # move_api HOST METHOD PATH [curl args...]: a member request from HOST to c3; prints the body and the status
    tb_host "$1" sh -c "$MOVE_CURL -o /tmp/move-body -w '%{http_code}' -X $2 https://$IP3:5001$3 ${*:4}; echo; cat /tmp/move-body"
}

c_move_hostile() {
    local out id
    # No member certificate: refused before anything is read.
    out=$(tb_host $H2 curl -sS --cacert /var/lib/containerctl/cluster/ca.crt -w '%{http_code}' -o /dev/null \
        -X POST "https://$IP3:5001/cluster/v1/moves/preflight" -d '{}')
    expect_eq "no client certificate: 401" "$out" 401
    # A name that is no unit name.
    out=$(move_offer bad | sed 's/"unit": "bad"/"unit": "..\/etc"/' | tb_host $H2 sh -c "$MOVE_CURL -X POST https://$IP3:5001/cluster/v1/moves/preflight -H content-type:application/json --data-binary @-")
    expect_contains "a bad unit name is a blocker naming the rule" "$out" "rule: unit names"
    # Hostile manifests: refused at begin with the rule, nothing staged.
    local cases=(
        'traversal|[{"path":"","kind":"dir","mode":493,"uid":0,"gid":0,"mtime":1},{"path":"../x","kind":"file","mode":420,"uid":0,"gid":0,"mtime":1,"size":3}]|no path traversal'
        'absolute|[{"path":"","kind":"dir","mode":493,"uid":0,"gid":0,"mtime":1},{"path":"/etc/x","kind":"file","mode":420,"uid":0,"gid":0,"mtime":1,"size":3}]|relative paths'
        'symlink|[{"path":"","kind":"dir","mode":493,"uid":0,"gid":0,"mtime":1},{"path":"l","kind":"symlink","mode":511,"uid":0,"gid":0,"mtime":1,"target":"../../etc"}]|symlinks stay inside their volume'
        'oversized|[{"path":"","kind":"dir","mode":493,"uid":0,"gid":0,"mtime":1},{"path":"f","kind":"file","mode":420,"uid":0,"gid":0,"mtime":1,"size":1000000000000000}]|rule: size'
    )
    local c name entries rule
    for c in "${cases[@]}"; do
        IFS='|' read -r name entries rule <<<"$c"
        out=$(move_begin_json hostile "$entries" | tb_host $H2 sh -c "$MOVE_CURL -w ' %{http_code}' -X POST https://$IP3:5001/cluster/v1/moves -H content-type:application/json --data-binary @-")
        expect_contains "manifest $name refused with 400" "$out" " 400"
        expect_contains "manifest $name names its rule" "$out" "$rule"
    done
    # Hostile streams after a valid begin: refused with the rule, everything staged removed.
    for c in "traversal|no path traversal" "absolute|relative paths" "device|no device files" "oversized|rule: size" "symlink|stream follows the manifest"; do
        IFS='|' read -r name rule <<<"$c"
        id=$(move_begin_json hostile | tb_host $H2 sh -c "$MOVE_CURL -X POST https://$IP3:5001/cluster/v1/moves -H content-type:application/json --data-binary @-" | json_get id)
        expect "stream $name: a move was begun" check "[[ '$id' == mv-* ]]"
        expect "stream $name: its staging volume exists" check "[[ -n \$(tb_host $H3 docker volume ls -q --filter label=io.containerctl.move=$id) ]]"
        out=$(move_tar "$name" | tb_host $H2 sh -c "$MOVE_CURL -w ' %{http_code}' -X PUT https://$IP3:5001/cluster/v1/moves/$id/data -H content-type:application/x-tar --data-binary @-")
        expect_contains "stream $name refused with 400" "$out" " 400"
        expect_contains "stream $name names its rule" "$out" "$rule"
        expect "stream $name: staging removed" check "[[ -z \$(tb_host $H3 docker volume ls -q --filter label=io.containerctl.move=$id) ]]"
        expect "stream $name: nothing written outside" check "! tb_host $H3 test -e /tmp/ctl-move-pwned"
        expect "stream $name: no unit" check "! tb_host $H3 test -e /etc/containerctl/units/hostile.toml"
    done
}

# move_writer HOST: a writer inside mover's container on HOST (it dies with the container when the
# move stops the unit; the target runs the unit without it): appends, rewrites, new files, removals.
move_writer() {
    tb_host "$1" docker exec -d containerctl-mover sh -c '
        i=0
        while :; do
            echo "line $i" >> /data/live.log
            echo "rewrite $i" > /data/small/5
            head -c 65536 /dev/urandom > /data/new-$((i % 50))
            rm -f /data/small/$((100 + i % 500))
            i=$((i + 1))
            usleep 20000
        done'
}

# move_staged_mb HOST: MB in the first staging volume of a move on HOST (0 when there is none).
move_staged_mb() {
    tb_host "$1" sh -c 'du -sm /var/lib/docker/volumes/containerctl-move-*/_data 2>/dev/null | cut -f1 | sort -n | tail -1' | grep . || echo 0
}

c_move_warm() {
    local inv pid rc=0 lines_then before out sent
    move_writer $H3
    tb_wait_for 30 "the writer writing on c3" check "tb_host $H3 test -s /var/lib/docker/volumes/mover-data/_data/live.log"
    inv=$(move_invocation $H3 mover)
    # A warm move whose first pass breaks (the target's daemon killed) stops nothing.
    ctl $H3 move mover --to c2 --warm >"$OUT" 2>&1 &
    pid=$!
    tb_wait_for 60 "the first pass arriving on c2" check "(( \$(move_staged_mb $H2) > 5 ))" || { cat "$OUT"; return 1; }
    tb_host $H2 systemctl kill -s KILL containerctld
    wait "$pid" || rc=$?
    cat "$OUT"
    expect "the warm move failed" check "(( $rc != 0 ))"
    expect_contains "it failed in the warm copy" "$(cat "$OUT")" "warm copy"
    expect_contains "it says nothing was stopped" "$(cat "$OUT")" "nothing was stopped: mover runs on c3 as before"
    expect_eq "the unit was never stopped (same invocation)" "$(move_invocation $H3 mover)" "$inv"
    tb_wait_for 60 "containerctld back on c2" check "ctl $H2 list >/dev/null"
    tb_wait_for 60 "nothing staged left on c2" check "[[ -z \$(tb_host $H2 docker volume ls -q --filter label=io.containerctl.move) ]]"
    expect_contains "c3's audit says why" "$(move_audit $H3 mover)" "failed at warm copy"
    # The warm move, while the writer writes.
    ctl $H3 move mover --to c2 --warm --keep-source >"$OUT" 2>&1 &
    pid=$!
    tb_wait_for 60 "the first pass arriving on c2" check "(( \$(move_staged_mb $H2) > 5 ))" || { cat "$OUT"; return 1; }
    lines_then=$(tb_host $H3 sh -c 'wc -l < /var/lib/docker/volumes/mover-data/_data/live.log')
    rc=0
    wait "$pid" || rc=$?
    cat "$OUT"
    expect_eq "the warm move" "$rc" 0
    out=$(cat "$OUT")
    expect_contains "it says where to" "$out" "mover moved from c3 to c2"
    sent=$(sed -n 's/.*then \([0-9.]*\) MB sent after the stop.*/\1/p' "$OUT")
    echo "warm move: $(grep -o 'downtime [0-9.]*s' "$OUT"), ${sent} MB sent after the stop"
    expect "only the delta was sent after the stop (${sent} MB of 200)" check "python3 -c 'import sys; sys.exit(0 if 0 < float(\"$sent\") < 100 else 1)'"
    expect_eq "the unit runs on c2" "$(tb_host $H2 systemctl is-active containerctl@mover)" active
    expect_eq "the unit is stopped on c3" "$(tb_host $H3 systemctl is-active containerctl@mover || true)" inactive
    before=$(move_sums $H3 mover-data)
    echo "$before"
    expect_contains "the hard link is kept" "$before" "hard link kept"
    expect_eq "checksums, links, modes, owners and times equal on c2" "$(move_sums $H2 mover-data)" "$before"
    expect "the writer wrote after the first pass began, and that arrived" check "(( \$(tb_host $H2 docker run --rm -v mover-data:/d:ro ctl-test/busybox:1 wc -l /d/live.log | cut -d' ' -f1) > $lines_then ))"
    expect "nothing staged is left on c2" check "[[ -z \$(tb_host $H2 docker volume ls -q --filter label=io.containerctl.move) ]]"
    expect "no move record on c2" check "[[ -z \$(tb_host $H2 ls /var/lib/containerctl/cluster/moves) ]]"
    expect_contains "c2 audited the move with who did it" "$(move_audit $H2 mover)" "via c3"
    # c3's copy (kept with --keep-source) goes, so that the unit can come back.
    ctl $H3 rm mover >/dev/null
    tb_host $H3 docker volume rm mover-data >/dev/null
}

c_move_from_other_member() {
    local rc
    # Asked on c1, which does not have the unit: c2 (which runs it) does the move.
    rc=$(run_status $H1 move mover --to c3 --soak 2s)
    cat "$OUT"
    expect_eq "the move asked on c1" "$rc" 0
    expect_contains "c1 says where the unit is" "$(cat "$OUT")" "mover is on c2: the move runs there"
    expect_contains "c2's progress is relayed" "$(cat "$OUT")" "stopping containerctl@mover.service on c2"
    expect_contains "it moved from c2 to c3" "$(cat "$OUT")" "mover moved from c2 to c3"
    expect_eq "the unit runs on c3" "$(tb_host $H3 systemctl is-active containerctl@mover)" active
    expect_contains "c2's audit names c1" "$(move_audit $H2 mover)" "via c1"
    expect_contains "c3's audit names c1 and c2" "$(move_audit $H3 mover)" "via c1 via c2"
    rc=$(run_status $H1 move nosuchunit --to c3)
    expect_eq "a unit no member has" "$rc" 3
    expect_contains "says so" "$(cat "$OUT")" "no unit nosuchunit here or on any other member"
    # Hostile forwards, with a real member certificate: refused naming the rule, nothing moved.
    local out
    out=$(tb_host $H2 sh -c "$MOVE_CURL -w ' %{http_code}' -X POST https://$IP3:5001/cluster/v1/moves/forward -H content-type:application/json -d '{\"unit\":\"mover\",\"request\":{\"to\":\"c1\"},\"caller\":{\"role\":\"viewer\",\"actor\":\"x\"}}'")
    expect_contains "a viewer's forward is refused with 403" "$out" " 403"
    expect_contains "it names the rule" "$out" "rule: roles"
    out=$(tb_host $H2 sh -c "$MOVE_CURL -w ' %{http_code}' -X POST https://$IP3:5001/cluster/v1/moves/forward -H content-type:application/json -d '{\"unit\":\"../etc\",\"request\":{\"to\":\"c1\"},\"caller\":{\"role\":\"admin\",\"actor\":\"x\"}}'")
    expect_contains "a bad unit name is refused with 400" "$out" " 400"
    expect_contains "it names the rule" "$out" "rule: unit names"
    expect_eq "the unit still runs on c3" "$(tb_host $H3 systemctl is-active containerctl@mover)" active
    # Both sides keep the move in their history (GET /api/v1/moves).
    expect_contains "c3 lists the move as target" "$(move_list $H3)" "mover target c2 moved"
    expect_contains "c2 lists the move as source" "$(move_list $H2)" "mover source c3 moved"
}

# move_list HOST: the moves of HOST, one "UNIT SIDE PEER STATE" line each (GET /api/v1/moves).
# (Its readers take the whole output: `grep -F >/dev/null`, `sed -n`, not `grep -q` or `head`,
# which could end the pipe before python3 wrote everything, a broken pipe that pipefail counts.)
move_list() {
    tb_host "$1" curl -sS --unix-socket /run/containerctl/containerctl.sock http://localhost/api/v1/moves |
        python3 -c 'import json,sys
for m in json.load(sys.stdin)["moves"]: print(m["unit"], m["side"], m["peer"], m["state"], m["detail"])'
}

c_move_staging_expiry() {
    local id
    # A target whose source goes away between two steps removes the staging after the expiry.
    tb_host $H3 sh -c 'printf "%s\n" "[cluster]" "report_interval = \"2s\"" "move_staging_expiry = \"5s\"" > /etc/containerctl/containerctl.toml && systemctl restart containerctld'
    tb_wait_for 60 "containerctld back on c3" check "ctl $H3 list >/dev/null"
    tb_wait_for 60 "c3's member routes up" check "tb_host $H2 sh -c \"$MOVE_CURL -o /dev/null -X POST https://$IP3:5001/cluster/v1/moves/preflight -d '{}'\""
    id=$(move_begin_json orphan | tb_host $H2 sh -c "$MOVE_CURL -X POST https://$IP3:5001/cluster/v1/moves -H content-type:application/json --data-binary @-" | json_get id)
    expect "a move was begun" check "[[ '$id' == mv-* ]]"
    expect "its staging volume exists" check "[[ -n \$(tb_host $H3 docker volume ls -q --filter label=io.containerctl.move=$id) ]]"
    tb_wait_for 60 "the staging removed after the expiry" check "[[ -z \$(tb_host $H3 docker volume ls -q --filter label=io.containerctl.move=$id) ]]"
    expect "no move record left" check "! tb_host $H3 test -e /var/lib/containerctl/cluster/moves/$id.json"
    expect_contains "the moves history says expired" "$(move_list $H3)" "orphan target c2 expired c2 asked nothing for"
    tb_host $H3 sh -c 'printf "%s\n" "[cluster]" "report_interval = \"2s\"" > /etc/containerctl/containerctl.toml && systemctl restart containerctld'
    tb_wait_for 60 "containerctld back on c3" check "ctl $H3 list >/dev/null"
}

c_move_host_path() {
    local rc before
    # A unit with a host-path volume: the target needs the path's parent writable for containerctld.
    tb_host $H2 sh -ec 'mkdir -p /srv/ctlmove/data/sub && head -c 5000000 /dev/urandom > /srv/ctlmove/data/blob && echo hi > /srv/ctlmove/data/sub/f && ln -s sub/f /srv/ctlmove/data/l && chown -R 1000:1000 /srv/ctlmove/data/sub'
    tb_host $H3 mkdir -p /srv/ctlmove
    tb_host $H2 sh -c "printf '%s\n' '[container]' 'image = \"ctl-test/moveonly\"' 'version = \"1\"' 'volumes = [\"/srv/ctlmove/data:/data\"]' 'init = true' 'args = [\"sleep\", \"3600\"]' > /etc/containerctl/units/hostdata.toml && systemctl daemon-reload"
    ctl $H2 start hostdata
    rc=$(run_status $H2 move hostdata --to c3 --dry-run)
    cat "$OUT"
    expect_eq "without a drop-in the dry run has a blocker" "$rc" 1
    expect_contains "it names the rule and the fix" "$(cat "$OUT")" "/srv/ctlmove is read-only for containerctld on c3: add it to ReadWritePaths="
    tb_host $H3 sh -c 'mkdir -p /etc/systemd/system/containerctld.service.d && printf "%s\n" "[Service]" "ReadWritePaths=/srv/ctlmove" > /etc/systemd/system/containerctld.service.d/ctlmove.conf && systemctl daemon-reload && systemctl restart containerctld'
    tb_wait_for 60 "containerctld back on c3" check "ctl $H3 list >/dev/null"
    before=$(tb_host $H2 sh -c 'cd /srv/ctlmove/data && find . | sort | while read -r p; do stat -c "%n %F %a %u:%g %s %Y" "$p"; done; find . -type f | sort | xargs sha256sum')
    rc=$(run_status $H2 move hostdata --to c3 --warm --soak 2s)
    cat "$OUT"
    expect_eq "the host-path move" "$rc" 0
    expect_eq "the unit runs on c3" "$(tb_host $H3 systemctl is-active containerctl@hostdata)" active
    expect_eq "the tree (kinds, modes, owners, sizes, times, sums) is equal on c3" "$(tb_host $H3 sh -c 'cd /srv/ctlmove/data && find . | sort | while read -r p; do stat -c "%n %F %a %u:%g %s %Y" "$p"; done; find . -type f | sort | xargs sha256sum')" "$before"
    expect "nothing staged is left beside it" check "[[ -z \$(tb_host $H3 sh -c 'ls -a /srv/ctlmove | grep containerctl-move') ]]"
    ctl $H3 rm hostdata >/dev/null
}

# move_parts_volume HOST VOLUME N: a new named volume on HOST of N files of 10 MB of random data,
# a directory and a symlink into it; an interrupted copy leaves some files whole on the target.
move_parts_volume() {
    tb_host "$1" docker volume create "$2" >/dev/null
    tb_host "$1" docker run --rm -v "$2:/d" ctl-test/busybox:1 sh -ec "
        i=0; while [ \$i -lt $3 ]; do head -c 10485760 /dev/urandom > /d/part-\$i; i=\$((i+1)); done
        mkdir /d/etc; echo conf > /d/etc/conf; ln -s etc/conf /d/conf"
}

# move_volume_sums HOST VOLUME: every file's SHA-256 of VOLUME on HOST, and the symlink's target.
move_volume_sums() {
    tb_host "$1" docker run --rm -v "$2:/d:ro" ctl-test/busybox:1 sh -c 'cd /d && find . -type f | sort | xargs sha256sum; readlink conf'
}

c_move_resume() {
    local pid rc=0 before kept second
    # 1000 MB, cut once 100 MB arrived: the cut must land in the data stream, which runs at a few
    # hundred MB/s, not in the commit (a commit whose answer is lost is settled by asking c3).
    move_parts_volume $H2 resumer-data 100
    move_unit_write $H2 resumer 18085
    ctl $H2 start resumer
    before=$(move_volume_sums $H2 resumer-data)
    ctl $H2 move resumer --to c3 --soak 2s >"$OUT" 2>&1 &
    pid=$!
    tb_wait_for 60 "100 MB arrived on c3" check "(( \$(move_staged_mb $H3) > 100 ))" || { cat "$OUT"; return 1; }
    # The data connection is cut (the kernel resets it on both ends); the daemons stay up.
    tb_host $H2 ss -K dst "$IP3" dport = :5001 >/dev/null
    wait "$pid" || rc=$?
    cat "$OUT"
    expect_eq "the move resumed and ended well" "$rc" 0
    expect_contains "it says it resumed" "$(cat "$OUT")" "resuming (1 of 3)"
    kept=$(sed -n 's/.*resuming (1 of 3): \([0-9]*\) MB in [0-9]* files arrived whole.*/\1/p' "$OUT" | head -1)
    second=$(grep -o 'copy: copying [0-9]* MB' "$OUT" | sed -n '2s/[^0-9]*\([0-9]*\) MB/\1/p')
    echo "resumed: ${kept} MB kept on c3, ${second} MB sent again of 1000"
    expect "what arrived whole was kept (${kept} MB)" check "(( ${kept:-0} >= 50 ))"
    expect "the retry sent less than all (${second} MB)" check "(( ${second:-1000} < 1000 - 40 ))"
    expect_eq "the unit runs on c3" "$(tb_host $H3 systemctl is-active containerctl@resumer)" active
    expect_eq "checksums equal on c3" "$(move_volume_sums $H3 resumer-data)" "$before"
    expect "nothing staged is left on c3" check "[[ -z \$(tb_host $H3 docker volume ls -q --filter label=io.containerctl.move) ]]"
    ctl $H3 rm resumer >/dev/null
}

c_drain() {
    local rc u
    # c3 runs mover; two more units with data, and one that needs a device only c3 has.
    for u in drain-a:18082 drain-b:18083; do
        tb_host $H3 docker volume create "${u%%:*}-data" >/dev/null
        tb_host $H3 docker run --rm -v "${u%%:*}-data:/d" ctl-test/busybox:1 sh -c "echo ${u%%:*} > /d/name"
        move_unit_write $H3 "${u%%:*}" "${u#*:}"
        ctl $H3 start "${u%%:*}"
    done
    tb_host $H3 sh -c 'test -e /dev/ctlmove3 || mknod /dev/ctlmove3 c 1 3; chmod 666 /dev/ctlmove3'
    tb_host $H3 docker volume create drain-dev-data >/dev/null
    move_unit_write $H3 drain-dev 18084 'devices = ["/dev/ctlmove3"]'
    ctl $H3 start drain-dev
    # The dry run asked on c1: forwarded to c3, its lines relayed.
    rc=$(run_status $H1 drain c3 --dry-run)
    cat "$OUT"
    expect_contains "c1 forwards the drain to c3" "$(cat "$OUT")" "the drain runs on c3"
    expect_eq "a dry run with a unit that cannot move exits 1" "$rc" 1
    for u in drain-a drain-b mover; do
        expect_contains "the dry run plans $u" "$(cat "$OUT")" "$u -> c"
    done
    expect_contains "the dry run says why drain-dev cannot move" "$(cat "$OUT")" "drain-dev: blocked: no member can take it"
    expect_contains "and names the device" "$(cat "$OUT")" "device /dev/ctlmove3 is not present on c1"
    expect_eq "the dry run stopped nothing" "$(tb_host $H3 systemctl is-active containerctl@drain-a)" active
    # A forwarded drain with a viewer's role: refused naming the rule, nothing moved.
    local out
    out=$(tb_host $H2 sh -c "$MOVE_CURL -w ' %{http_code}' -X POST https://$IP3:5001/cluster/v1/drain/forward -H content-type:application/json -d '{\"request\":{},\"caller\":{\"role\":\"viewer\",\"actor\":\"x\"}}'")
    expect_contains "a viewer's drain is refused with 403" "$out" " 403"
    expect_contains "it names the rule" "$out" "rule: roles"
    rc=$(run_status $H3 drain c3)
    cat "$OUT"
    expect_eq "the drain exits 1 (drain-dev stays)" "$rc" 1
    local moved=0 h
    for u in drain-a drain-b mover; do
        expect_contains "$u moved" "$(cat "$OUT")" "$u -> c"
        for h in $H1 $H2; do
            if [[ $(tb_host $h systemctl is-active "containerctl@$u" || true) == active ]]; then
                moved=$((moved + 1))
            fi
        done
        expect_eq "$u no longer runs on c3" "$(tb_host $H3 systemctl is-active "containerctl@$u" || true)" inactive
    done
    expect_eq "three units run on c1 and c2" "$moved" 3
    expect "the units were spread over both members" check "grep -q -- '-> c1' '$OUT' && grep -q -- '-> c2' '$OUT'"
    expect_eq "drain-dev still runs on c3" "$(tb_host $H3 systemctl is-active containerctl@drain-dev)" active
    for h in $H1 $H2; do
        if [[ $(tb_host $h systemctl is-active containerctl@drain-a || true) == active ]]; then
            expect_eq "drain-a's data came along" "$(tb_host $h docker run --rm -v drain-a-data:/d:ro ctl-test/busybox:1 cat /d/name)" drain-a
        fi
    done
}

# move_delta_json REUSE-PATH: a delta for the manifest of move_begin_json, reusing REUSE-PATH.
move_delta_json() {
    python3 -c 'import json,sys
d={"path":"","kind":"dir","mode":0o755,"uid":0,"gid":0,"mtime":1}
entries=[d, dict(d, path="f", kind="file", mode=0o644, size=3)]
print(json.dumps({"manifest": {"volumes": [{"volume": {"kind":"named","name":"hostile-data"}, "entries": entries}]}, "reuse": [{"volume": 0, "path": sys.argv[1]}]}))' "$1"
}

c_move_hostile_delta() {
    local id out c warm path rule status
    # Deltas that break the rules, each after a valid begin (and first pass): refused with the
    # rule, everything staged removed.
    for c in "true|g|400|reused files were received before" "false|f|409|rule: warm moves and resumed passes"; do
        IFS='|' read -r warm path status rule <<<"$c"
        id=$(move_begin_json hostile | python3 -c 'import json,sys; d=json.load(sys.stdin); d["warm"]=sys.argv[1]=="true"; print(json.dumps(d))' "$warm" |
            tb_host $H2 sh -c "$MOVE_CURL -X POST https://$IP3:5001/cluster/v1/moves -H content-type:application/json --data-binary @-" | json_get id)
        expect "delta $path: a move was begun" check "[[ '$id' == mv-* ]]"
        if [[ $warm == true ]]; then
            out=$(move_tar valid | tb_host $H2 sh -c "$MOVE_CURL -w ' %{http_code}' -X PUT https://$IP3:5001/cluster/v1/moves/$id/data -H content-type:application/x-tar --data-binary @-")
            expect_contains "the first pass is received" "$out" " 200"
        fi
        out=$(move_delta_json "$path" | tb_host $H2 sh -c "$MOVE_CURL -w ' %{http_code}' -X POST https://$IP3:5001/cluster/v1/moves/$id/delta -H content-type:application/json --data-binary @-")
        expect_contains "delta reusing $path refused with $status" "$out" " $status"
        expect_contains "delta reusing $path names its rule" "$out" "$rule"
        expect "delta $path: staging removed" check "[[ -z \$(tb_host $H3 docker volume ls -q --filter label=io.containerctl.move=$id) ]]"
    done
}

CLUSTER_STEPS_EXTRA+=(c_move_refused c_move_cold c_move_killed c_move_hostile c_move_hostile_delta c_move_warm c_move_from_other_member c_move_staging_expiry c_move_host_path c_move_resume c_drain)
