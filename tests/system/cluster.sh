#!/usr/bin/env bash
# Federation system test: three systemd hosts with their own dockerd on a private network, the
# project installed as users install it. One story, in order (each step needs the ones before):
# init, refused tokens (revoked, expired, reused, wrong CA, unreachable manager, host already in a
# Swarm), two joins, the shared volume, the registry over TLS, a replicated Swarm service, a
# service with a secret on another node, node inventory and a host that goes down, the manager's
# daemon restarted, leave and remove, and the cluster taken down and made again. The attacks of a
# host or a credential on the cluster are part of it: a host outside the cluster cannot mount the
# shared volume, a join cannot claim another host's address, a worker's credential removes nobody
# but itself, registry tags are immutable.
#   tests/system/cluster.sh            (release binaries must be built: make)
#   tests/system/cluster.sh c_init c_join c_service   (only these steps, in this order)
set -euo pipefail
cd "$(dirname "$0")/../.."
exec </dev/null
# shellcheck source=testbed/lib.sh
source testbed/lib.sh
# shellcheck source=tests/assert.sh
source tests/assert.sh
# shellcheck source=tests/system/private_registry.sh
source tests/system/private_registry.sh

export TB_RUN=${TB_RUN:-cluster}
H1=c1 H2=c2 H3=c3
IP1=${CLUSTER_IP1:-172.29.77.201} IP2=${CLUSTER_IP2:-172.29.77.202} IP3=${CLUSTER_IP3:-172.29.77.203}
# An address no host has: a second address of c2, the "host" of the hostile joins.
IPX=${CLUSTER_IPX:-172.29.77.204}
SHARED=/var/lib/containerctl/shared
REG=$IP1:5002

tb_ensure_deps
tb_ensure_dockerd
tb_build_images
tb_network_ensure
trap tb_cleanup EXIT

setup_host() {
    local name=$1 ip=$2
    tb_host_with_project "$name" "$ip"
    # A short report interval, so that "down" shows within seconds.
    tb_host "$name" sh -ec '
        printf "%s\n" "[cluster]" "report_interval = \"2s\"" > /etc/containerctl/containerctl.toml
    '
    tb_daemon_start "$name"
}
setup_pids=()
for h in "$H1:$IP1" "$H2:$IP2" "$H3:$IP3"; do
    setup_host "${h%%:*}" "${h#*:}" &
    setup_pids+=($!)
done
for p in "${setup_pids[@]}"; do wait "$p"; done

ctl() { tb_host "$1" containerctl "${@:2}"; }
# check SHELL-TEXT: for `expect DESCRIPTION check "..."`.
check() { eval "$1"; }
# run_status HOST CMD...: prints the exit status of containerctl CMD on HOST, output to $OUT.
OUT=$(mktemp)
run_status() {
    local rc=0
    ctl "$@" >"$OUT" 2>&1 || rc=$?
    echo "$rc"
}
json_get() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1:]: v=v[int(k)] if isinstance(v,list) else v[k]
print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$@"; }
node_field() { # node_field HOSTNAME FIELD: from `cluster nodes --json` on the manager (not the hostile node at $IPX)
    ctl $H1 cluster nodes --json | python3 -c 'import json,sys
for n in json.load(sys.stdin):
    if n["hostname"]==sys.argv[1] and n["addr"]!=sys.argv[3]: print(n[sys.argv[2]] if not isinstance(n[sys.argv[2]],(list,dict)) else json.dumps(n[sys.argv[2]]))' "$1" "$2" "$IPX"
}
auth_allow() { # the shared volume's auth.allow, as the manager's glusterd has it
    tb_host $H1 gluster volume get containerctl auth.allow | awk '$1 == "auth.allow" {print $2}'
}
# cannot_mount HOST: a plain `mount -t glusterfs` of the volume from HOST is refused by the bricks
# (its client log says "Authentication failed"; mount.glusterfs itself exits 0 when that happens
# after its own check, so what counts is the outcome): nothing is mounted and the volume's files
# are not visible.
cannot_mount() {
    local rc=0 log=/var/log/glusterfs/mnt-outside.log
    tb_host "$1" sh -c "mkdir -p /mnt/outside && rm -f $log && timeout 90 mount -t glusterfs $IP1:/containerctl /mnt/outside" >"$OUT" 2>&1 || rc=$?
    cat "$OUT"
    echo "mount -t glusterfs on $1 exited $rc"
    tb_wait_for 20 "$1's glusterfs client refused" check "tb_host $1 grep -q 'Authentication failed' $log"
    tb_wait_for 20 "nothing mounted on $1" check "! tb_host $1 findmnt /mnt/outside"
    expect "the volume's files are not visible on $1" check "! tb_host $1 test -e /mnt/outside/outsider-check.txt"
}
# mount_options HOST: the shared mount's options on HOST.
mount_options() { tb_host "$1" findmnt -no OPTIONS $SHARED; }
# token_secret TOKEN: the secret part of a join token.
token_secret() { echo "${1##*.}"; }
# token_state ID: the state of join token ID.
token_state() {
    ctl $H1 cluster token list --json | python3 -c 'import json,sys; print([t["state"] for t in json.load(sys.stdin) if t["id"]==sys.argv[1]])' "$1"
}
# tamper TOKEN KEY VALUE: the same token with one payload field replaced.
tamper() {
    python3 -c 'import base64,json,sys
p,payload,secret=sys.argv[1].split(".")
d=json.loads(base64.urlsafe_b64decode(payload+"="*(-len(payload)%4)))
d[sys.argv[2]]=json.loads(sys.argv[3])
print(".".join([p,base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("="),secret]))' "$@"
}
not_member() { # the host has no cluster state and no Swarm
    expect_eq "$1 is not a member" "$(ctl "$1" cluster status --json | json_get member)" False
    expect_eq "$1 Swarm state" "$(tb_host "$1" docker info -f '{{.Swarm.LocalNodeState}}')" inactive
}

c_init() {
    local rc
    rc=$(run_status $H1 cluster init --advertise-addr "$IP1")
    cat "$OUT"
    expect_eq "cluster init" "$rc" 0
    expect_contains "init shows its steps" "$(cat "$OUT")" "✓ gluster"
    # Idempotent: again, nothing breaks and finished steps are skipped.
    rc=$(run_status $H1 cluster init --advertise-addr "$IP1")
    expect_eq "cluster init again" "$rc" 0
    expect_contains "second init skips the Swarm" "$(cat "$OUT")" "· swarm: already a Swarm manager"
    local st
    st=$(ctl $H1 cluster status --json)
    expect_eq "member" "$(json_get member <<<"$st")" True
    expect_eq "shared volume mounted on the manager" "$(json_get shared mounted <<<"$st")" True
    expect_eq "registry address" "$(json_get registry address <<<"$st")" "$REG"
    # The registry answers over TLS with the cluster CA and wants a token.
    expect_eq "registry over TLS asks for a token" "$(tb_host $H1 curl -s -o /dev/null -w '%{http_code}' --cacert /var/lib/containerctl/cluster/ca.crt "https://$REG/v2/")" 401
    expect_eq "registry and mount units active" "$(tb_host $H1 systemctl is-active containerctl-registry var-lib-containerctl-shared.mount | sort -u)" active
    # Only members mount the volume, without setuid programs or device nodes.
    expect_eq "auth.allow is the manager" "$(auth_allow)" "$IP1"
    expect_contains "the shared mount is nosuid" "$(mount_options $H1)" nosuid
    expect_contains "the shared mount is nodev" "$(mount_options $H1)" nodev
    expect_contains "the mount unit says so" "$(tb_host $H1 cat /etc/containerctl/cluster/var-lib-containerctl-shared.mount)" "Options=_netdev,nosuid,nodev"
}

c_tokens_refused() {
    local tok rc id
    # Revoked.
    tok=$(ctl $H1 cluster token create --ttl 10m)
    id=$(ctl $H1 cluster token list --json | json_get 0 id)
    ctl $H1 cluster token revoke "$id" >/dev/null
    rc=$(run_status $H3 cluster join "$tok")
    expect_eq "revoked token refused" "$rc" 4
    expect_contains "says revoked" "$(cat "$OUT")" "revoked"
    # Expired.
    tok=$(ctl $H1 cluster token create --ttl 5s)
    tb_wait_for 20 "token expired" check "ctl $H1 cluster token list --json | grep -q '\"state\":\"expired\"'"
    rc=$(run_status $H3 cluster join "$tok")
    expect_eq "expired token refused" "$rc" 4
    expect_contains "says expired" "$(cat "$OUT")" "expired"
    # A manager that is not signed by the pinned CA (the digest changed in the token).
    tok=$(ctl $H1 cluster token create --ttl 10m)
    rc=$(run_status $H3 cluster join "$(tamper "$tok" ca "\"sha256:$(printf '0%.0s' {1..64})\"")")
    expect_eq "wrong CA refused" "$rc" 4
    expect_contains "says CA mismatch" "$(cat "$OUT")" "not signed by the CA pinned"
    # An unreachable manager.
    rc=$(run_status $H3 cluster join "$(tamper "$tok" m '["172.29.77.250:5001"]')")
    expect_eq "unreachable manager" "$rc" 5
    expect_contains "says unreachable" "$(cat "$OUT")" "cannot reach 172.29.77.250:5001"
    # A host already in a Swarm is refused before the token is used.
    tb_host $H3 docker swarm init --advertise-addr "$IP3" >/dev/null
    rc=$(run_status $H3 cluster join "$tok")
    expect_eq "host in a Swarm refused" "$rc" 1
    expect_contains "says already in a Swarm" "$(cat "$OUT")" "already in a Docker Swarm"
    tb_host $H3 docker swarm leave --force >/dev/null
    expect_contains "the token was not used up" "$(ctl $H1 cluster token list --json)" '"state":"valid"'
    not_member $H3
    ctl $H1 cluster token revoke "$(ctl $H1 cluster token list --json | json_get 0 id)" >/dev/null
    # A host outside the cluster on the same network cannot mount the shared volume; the
    # manager still does, and auth.allow is unchanged.
    cannot_mount $H3
    expect_eq "auth.allow unchanged" "$(auth_allow)" "$IP1"
    tb_host $H1 sh -c "echo manager > $SHARED/outsider-check.txt"
    expect_eq "the manager still reads and writes it" "$(tb_host $H1 cat $SHARED/outsider-check.txt)" manager
    # A unit with a shared: volume does not run on a host outside the cluster (its data would land
    # on the local disk below the mount point).
    notes_unit $H3 'restart = "no"'
    rc=0
    tb_host $H3 systemctl start containerctl@notes || rc=$?
    expect "a shared: unit fails outside a cluster" check "(( $rc != 0 ))"
    expect_contains "the journal says why" "$(tb_host $H3 journalctl -u containerctl@notes)" "shared volume is not mounted"
    expect "nothing written below the mount point" check "! tb_host $H3 test -e /var/lib/containerctl/shared/notes/from-unit.txt"
    tb_host $H3 sh -c 'rm /etc/containerctl/units/notes.toml; systemctl daemon-reload; systemctl reset-failed'
}

# notes_unit HOST [SERVICE-LINE]: a unit writing into the shared volume notes.
notes_unit() {
    tb_host "$1" sh -c "printf '%s\n' '[container]' 'image = \"ctl-test/busybox\"' 'version = \"1\"' \
        'volumes = [\"shared:notes:/notes\"]' 'init = true' \
        'args = [\"sh\", \"-c\", \"hostname > /notes/from-unit.txt; sleep 3600\"]' '[service]' '${2:-}' \
        > /etc/containerctl/units/notes.toml"
    tb_host "$1" systemctl daemon-reload
}

c_join() {
    local tok rc wbefore mbefore
    wbefore=$(tb_host $H1 docker swarm join-token -q worker)
    mbefore=$(tb_host $H1 docker swarm join-token -q manager)
    tok=$(ctl $H1 cluster token create)
    rc=$(run_status $H2 cluster join "$tok")
    cat "$OUT"
    expect_eq "c2 joins" "$rc" 0
    # Single use: the same token does not admit c3.
    rc=$(run_status $H3 cluster join "$tok")
    expect_eq "reused token refused" "$rc" 4
    expect_contains "says used" "$(cat "$OUT")" "used already"
    not_member $H3
    # c3 joins as a manager: a Swarm manager with a Gluster brick of its own.
    rc=$(run_status $H3 cluster join "$(ctl $H1 cluster token create --role manager)")
    cat "$OUT"
    expect_eq "c3 joins as manager" "$rc" 0
    expect_contains "c3 adds a brick" "$(cat "$OUT")" "brick added"
    # After the joins the Swarm's join tokens were rotated: a copied SWMTKN is worthless.
    tb_wait_for 30 "worker join token rotated" check "[[ \$(tb_host $H1 docker swarm join-token -q worker) != '$wbefore' ]]"
    tb_wait_for 30 "manager join token rotated" check "[[ \$(tb_host $H1 docker swarm join-token -q manager) != '$mbefore' ]]"
    expect_eq "3 Swarm nodes ready" "$(tb_host $H1 docker node ls --format '{{.Status}}' | sort | uniq -c | tr -s ' ')" " 3 Ready"
    expect_eq "c3 is a Swarm manager" "$(tb_host $H1 docker node inspect c3 -f '{{.Spec.Role}}')" manager
    expect_contains "volume has two bricks" "$(tb_host $H1 gluster volume info containerctl)" "Number of Bricks: 1 x 2 = 2"
    # auth.allow grew with the joins; the mounts made at join are nosuid,nodev.
    expect_eq "auth.allow has the three members" "$(auth_allow)" "$IP1,$IP2,$IP3"
    for h in $H2 $H3; do
        expect_contains "$h's shared mount is nosuid" "$(mount_options $h)" nosuid
        expect_contains "$h's shared mount is nodev" "$(mount_options $h)" nodev
    done
    # Joining again is refused with what to do.
    rc=$(run_status $H2 cluster join "$(ctl $H1 cluster token create)")
    expect_eq "a member cannot join again" "$rc" 1
    expect_contains "says already a member" "$(cat "$OUT")" "already a worker"
    # No insecure-registry setting anywhere: trust comes from certs.d.
    expect "no insecure registries on c2" check "! tb_host $H2 grep -rqs insecure /etc/docker"
    expect "registry CA installed on c2" check "tb_host $H2 test -s /etc/docker/certs.d/$REG/ca.crt"
}

c_shared_volume() {
    tb_host $H2 sh -c 'echo "from c2 $$" > /var/lib/containerctl/shared/hello.txt'
    local want
    want=$(tb_host $H2 cat /var/lib/containerctl/shared/hello.txt)
    tb_wait_for 20 "file visible on c3" check "[[ \$(tb_host $H3 cat /var/lib/containerctl/shared/hello.txt) == '$want' ]]"
    expect_eq "file visible on c1" "$(tb_host $H1 cat /var/lib/containerctl/shared/hello.txt)" "$want"
    expect_eq "c3 mounts Gluster" "$(tb_host $H3 findmnt -n -o FSTYPE /var/lib/containerctl/shared)" fuse.glusterfs
    # A unit's shared: volume on c2 is the same directory on c3.
    notes_unit $H2
    ctl $H2 start notes
    tb_wait_for 20 "the unit's file on c3" check "tb_host $H3 test -s /var/lib/containerctl/shared/notes/from-unit.txt"
    expect_contains "the mount is ordered before the unit" "$(tb_host $H2 systemctl show -p RequiresMountsFor containerctl@notes)" \
        /var/lib/containerctl/shared
    ctl $H2 stop notes
    # Replicated: the file is in both bricks, the manager's and c3's.
    tb_wait_for 20 "file in c3's brick" check "tb_host $H3 test -f /var/lib/containerctl/cluster/brick/hello.txt"
    expect "file in c1's brick" check "tb_host $H1 test -f /var/lib/containerctl/cluster/brick/hello.txt"
}

c_registry() {
    local rc
    rc=$(run_status $H1 image push ctl-test/busybox:1)
    cat "$OUT"
    expect_eq "push on the manager" "$rc" 0
    expect_contains "registry lists the image" "$(ctl $H1 cluster status --json)" '"name":"ctl-test/busybox"'
    # c2 runs a unit from the cluster registry: its runner pulls over TLS with c2's node credential.
    expect "c2 does not have the image yet" check "! tb_host $H2 docker image inspect $REG/ctl-test/busybox:1 >/dev/null 2>&1"
    tb_host $H2 sh -c "printf '%s\n' '[container]' 'image = \"$REG/ctl-test/busybox\"' 'version = \"1\"' 'init = true' \
        'args = [\"sh\", \"-c\", \"echo pulled-over-tls; sleep 3600\"]' > /etc/containerctl/units/fromreg.toml"
    tb_host $H2 systemctl daemon-reload
    tb_host $H2 systemctl start containerctl@fromreg
    expect "c2 pulled the image" check "tb_host $H2 docker image inspect $REG/ctl-test/busybox:1 >/dev/null"
    tb_wait_for 20 "log line" check "tb_host $H2 journalctl -u containerctl@fromreg | grep -q pulled-over-tls"
    # A node may pull but not push: c2's daemon has no push right without a token.
    rc=$(run_status $H2 image push ctl-test/busybox:1)
    expect_eq "push from a worker without a token refused" "$rc" 4
    # A viewer token is refused by the registry; an operator token may push.
    local viewer operator
    viewer=$(ctl $H1 token create --name v --role viewer)
    operator=$(ctl $H1 token create --name o --role operator)
    tb_host $H2 docker tag ctl-test/busybox:1 ctl-test/fromc2:1
    rc=$(run_status $H2 image push --token "$viewer" ctl-test/fromc2:1)
    expect_eq "viewer token cannot push" "$rc" 4
    rc=$(run_status $H2 image push --token "$operator" ctl-test/fromc2:1)
    cat "$OUT"
    expect_eq "operator token pushes from c2" "$rc" 0
    # Tags are immutable (#5). Image A as ctl-test/imm:1 from the manager.
    local ida idb idb2 c3cred
    ida=$(tb_host $H1 docker image inspect -f '{{.Id}}' ctl-test/busybox:1)
    tb_host $H1 docker tag ctl-test/busybox:1 ctl-test/imm:1
    rc=$(run_status $H1 image push ctl-test/imm:1)
    expect_eq "push A as ctl-test/imm:1" "$rc" 0
    # A different image B under the same tag: refused, naming the tag and both images.
    tb_host $H1 sh -c 'printf "FROM ctl-test/busybox:1\nLABEL variant=b\n" | DOCKER_BUILDKIT=0 docker build -q -t ctl-test/imm:1 - >/dev/null'
    idb=$(tb_host $H1 docker image inspect -f '{{.Id}}' ctl-test/imm:1)
    expect "B is another image" check "[[ '$ida' != '$idb' ]]"
    rc=$(run_status $H1 image push ctl-test/imm:1)
    cat "$OUT"
    expect_eq "push B to the same tag refused" "$rc" 1
    expect_contains "names the tag" "$(cat "$OUT")" "ctl-test/imm:1 is already in the cluster registry"
    expect_contains "names the registry's image" "$(cat "$OUT")" "$ida"
    expect_contains "names the pushed image" "$(cat "$OUT")" "$idb"
    expect_contains "suggests a new tag" "$(cat "$OUT")" "new tag"
    expect_eq "the manager's local registry tag is still A" "$(tb_host $H1 docker image inspect -f '{{.Id}}' $REG/ctl-test/imm:1)" "$ida"
    # The same from another host with an operator token (staged, the manager checks).
    tb_host $H2 sh -c 'printf "FROM ctl-test/busybox:1\nLABEL variant=b2\n" | DOCKER_BUILDKIT=0 docker build -q -t ctl-test/imm:1 - >/dev/null'
    idb2=$(tb_host $H2 docker image inspect -f '{{.Id}}' ctl-test/imm:1)
    rc=$(run_status $H2 image push --token "$operator" ctl-test/imm:1)
    cat "$OUT"
    expect_eq "push B from c2 refused" "$rc" 1
    expect_contains "c2 is told why" "$(cat "$OUT")" "$idb2"
    # A pull of the tag still gives A (c3 pulls with its node credential).
    c3cred=$(tb_host $H3 python3 -c 'import json; print(json.load(open("/var/lib/containerctl/cluster/state.json"))["credential"])')
    tb_host $H3 sh -c "echo '$c3cred' | docker login -u node --password-stdin $REG >/dev/null && docker pull -q $REG/ctl-test/imm:1 >/dev/null; rc=\$?; docker logout $REG >/dev/null; exit \$rc"
    expect_eq "a pull of ctl-test/imm:1 gives A" "$(tb_host $H3 docker image inspect -f '{{.Id}}' $REG/ctl-test/imm:1)" "$ida"
    # A again: fine, and nothing changes.
    tb_host $H1 docker tag "$ida" ctl-test/imm:1
    rc=$(run_status $H1 image push ctl-test/imm:1)
    cat "$OUT"
    expect_eq "pushing A again is fine" "$rc" 0
    expect_contains "says unchanged" "$(cat "$OUT")" "unchanged"
    tb_host $H2 docker tag ctl-test/busybox:1 ctl-test/imm:1
    rc=$(run_status $H2 image push --token "$operator" ctl-test/imm:1)
    expect_eq "pushing A again from c2 is fine" "$rc" 0
    # No direct bypass: an operator token gets push only on the staging repositories, so a plain
    # `docker push` with it cannot write a tag.
    local granted
    granted=$(tb_host $H2 curl -s --cacert /var/lib/containerctl/cluster/ca.crt -u "token:$operator" \
        "https://$IP1:5001/v2/token?service=containerctl-registry&scope=repository:ctl-test/imm:pull,push&scope=repository:incoming/ctl-test/imm:pull,push" |
        python3 -c 'import json,sys,base64; t=json.load(sys.stdin)["token"].split(".")[1]; print(json.dumps(json.loads(base64.urlsafe_b64decode(t+"="*(-len(t)%4)))["access"]))')
    echo "$granted"
    expect_contains "an operator token may pull the tag" "$granted" '{"type": "repository", "name": "ctl-test/imm", "actions": ["pull"]}'
    expect_contains "and push only to staging" "$granted" '{"type": "repository", "name": "incoming/ctl-test/imm", "actions": ["pull", "push"]}'
    # Anonymous access is refused.
    expect_eq "anonymous token request refused" "$(tb_host $H3 curl -s -o /dev/null -w '%{http_code}' --cacert /var/lib/containerctl/cluster/ca.crt "https://$IP1:5001/v2/token?service=containerctl-registry&scope=repository:ctl-test/busybox:pull")" 401
}

c_hostile_cluster_api() {
    local api="https://$IP1:5001" ca=/var/lib/containerctl/cluster/ca.crt tok id secret code
    # A forged node credential cannot report.
    code=$(tb_host $H2 curl -s -o /dev/null -w '%{http_code}' --cacert $ca -X POST -H 'authorization: Bearer n-000000000000.forged' \
        -H 'content-type: application/json' -d '{}' "$api/cluster/v1/report")
    expect_eq "forged credential refused" "$code" 401
    # An oversized body is refused before it is read.
    code=$(tb_host $H2 sh -c "head -c 2000000 /dev/zero | tr '\\0' a | curl -s -o /dev/null -w '%{http_code}' --cacert $ca -X POST \
        -H 'content-type: application/json' --data-binary @- $api/cluster/v1/join")
    expect_eq "oversized join body" "$code" 413
    # A join with the right id and a wrong secret is refused and does not use the token up (sent
    # from a second address of c2's, which is no member's: the address checks pass).
    tb_host $H2 ip addr add "$IPX/24" dev eth0
    tok=$(ctl $H1 cluster token create)
    id=$(ctl $H1 cluster token list --json | json_get 0 id)
    secret=$(printf 'f%.0s' {1..64})
    code=$(tb_host $H2 curl -s -o /dev/null -w '%{http_code}' --interface "$IPX" --cacert $ca -X POST -H 'content-type: application/json' \
        -d "{\"token_id\":\"$id\",\"secret\":\"$secret\",\"hostname\":\"evil\",\"addr\":\"$IPX\"}" "$api/cluster/v1/join")
    expect_eq "wrong secret refused" "$code" 403
    expect_contains "token still valid" "$(ctl $H1 cluster token list --json | python3 -c 'import json,sys; print([t["state"] for t in json.load(sys.stdin) if t["id"]==sys.argv[1]])' "$id")" valid
    expect "no node evil" check "! ctl $H1 cluster nodes --json | grep -q evil"
    # A join that claims another host's address (c3's, from c2): refused before the token is used,
    # naming both addresses; nothing recorded.
    local body
    body=$(tb_host $H2 curl -s -w '\n%{http_code}' --cacert $ca -X POST -H 'content-type: application/json' \
        -d "{\"token_id\":\"$id\",\"secret\":\"$(token_secret "$tok")\",\"hostname\":\"evil\",\"addr\":\"$IP3\"}" "$api/cluster/v1/join")
    echo "$body"
    expect_eq "a join claiming another address is refused" "$(tail -n1 <<<"$body")" 400
    expect_contains "names the claimed address" "$body" "claims address $IP3"
    expect_contains "names the address it connected from" "$body" "connected from $IP2"
    expect_contains "token still valid after the address refusal" "$(token_state "$id")" valid
    expect "still no node evil" check "! ctl $H1 cluster nodes --json | grep -q evil"
    expect_eq "auth.allow unchanged by the refusals" "$(auth_allow)" "$IP1,$IP2,$IP3"
    # A join from a member's own address while that member is in: refused too (409).
    code=$(tb_host $H2 curl -s -o /dev/null -w '%{http_code}' --cacert $ca -X POST -H 'content-type: application/json' \
        -d "{\"token_id\":\"$id\",\"secret\":\"$(token_secret "$tok")\",\"hostname\":\"evil\",\"addr\":\"$IP2\"}" "$api/cluster/v1/join")
    expect_eq "a second node on a member's address refused" "$code" 409
    expect_contains "token still valid after the address conflict" "$(token_state "$id")" valid
    # The same token from an address of its own works: a hostile worker that calls itself c3.
    body=$(tb_host $H2 curl -s --interface "$IPX" --cacert $ca -X POST -H 'content-type: application/json' \
        -d "{\"token_id\":\"$id\",\"secret\":\"$(token_secret "$tok")\",\"hostname\":\"c3\",\"addr\":\"$IPX\"}" "$api/cluster/v1/join")
    local cred
    cred=$(json_get credential <<<"$body")
    expect_contains "the token works after the refusals" "$cred" "n-"
    expect_contains "token used now" "$(token_state "$id")" used
    expect_eq "auth.allow has the new member" "$(auth_allow)" "$IP1,$IP2,$IP3,$IPX"
    # Its credential leaves, naming c3 in every way it can: only the hostile node goes. c3 is
    # still a member, still a Ready Swarm manager, still in the volume.
    local c3id
    c3id=$(node_field c3 id)
    code=$(tb_host $H2 curl -s -o /dev/null -w '%{http_code}' --interface "$IPX" --cacert $ca -X POST -H "authorization: Bearer $cred" \
        -H 'content-type: application/json' -d "{\"node\":\"$c3id\",\"id\":\"$c3id\",\"hostname\":\"c3\",\"addr\":\"$IP3\"}" "$api/cluster/v1/leave")
    expect_eq "the hostile worker's leave" "$code" 204
    expect_eq "the hostile node left" "$(ctl $H1 cluster nodes --json | python3 -c 'import json,sys; print([n["state"] for n in json.load(sys.stdin) if n["addr"]==sys.argv[1]][0])' "$IPX")" left
    sleep 5
    expect_eq "c3 still up" "$(node_field c3 state)" up
    expect_eq "c3 still a Ready Swarm manager" "$(tb_host $H1 docker node inspect c3 -f '{{.Status.State}} {{.Spec.Role}}')" "ready manager"
    expect_eq "3 Swarm nodes still" "$(tb_host $H1 docker node ls -q | wc -l)" 3
    expect_contains "c3's brick still in the volume" "$(tb_host $H1 gluster volume info containerctl)" "$IP3:"
    expect_eq "auth.allow back to the members" "$(auth_allow)" "$IP1,$IP2,$IP3"
    code=$(tb_host $H2 curl -s -o /dev/null -w '%{http_code}' --cacert $ca -X POST -H "authorization: Bearer $cred" \
        -H 'content-type: application/json' -d '{}' "$api/cluster/v1/report")
    expect_eq "the hostile credential stopped working" "$code" 401
    tb_host $H2 ip addr del "$IPX/24" dev eth0
    tok=$(ctl $H1 cluster token create)
    id=$(ctl $H1 cluster token list --json | json_get 0 id)
    # Only admins manage join tokens.
    tb_host $H1 sh -c 'id alice >/dev/null 2>&1 || useradd --groups containerctl alice'
    code=0
    tb_host $H1 runuser -u alice -- containerctl cluster token create >/dev/null 2>&1 || code=$?
    expect_eq "operator cannot create join tokens" "$code" 4
}

c_service() {
    tb_host $H1 sh -c "printf '%s\n' 'description = \"spread over the cluster\"' '[container]' 'image = \"$REG/ctl-test/busybox\"' 'version = \"1\"' \
        'args = [\"sh\", \"-c\", \"echo replica; sleep 3600\"]' '[deploy]' 'replicas = 3' 'max_replicas_per_node = 1' \
        > /etc/containerctl/units/spread.toml"
    tb_host $H1 systemctl daemon-reload
    ctl $H1 start spread
    local nodes
    nodes=$(tb_host $H1 docker service ps containerctl-spread --filter desired-state=running --format '{{.Node}} {{.CurrentState}}')
    echo "$nodes"
    expect_eq "one replica on each host" "$(awk '/Running/ {print $1}' <<<"$nodes" | sort -u | tr '\n' ' ')" "c1 c2 c3 "
    # Updated through the same CLI: two replicas, none on c1.
    ctl $H1 set spread deploy.replicas=2 'deploy.constraints=["node.hostname!=c1"]' --restart >/dev/null
    nodes=$(tb_host $H1 docker service ps containerctl-spread --filter desired-state=running --format '{{.Node}} {{.CurrentState}}')
    echo "$nodes"
    expect_eq "replicas on c2 and c3 after the edit" "$(awk '/Running/ {print $1}' <<<"$nodes" | sort -u | tr '\n' ' ')" "c2 c3 "
    expect_eq "replicas in the spec" "$(tb_host $H1 docker service inspect containerctl-spread -f '{{.Spec.Mode.Replicated.Replicas}}')" 2
    # A unit with devices cannot be a Swarm service.
    tb_host $H1 sh -c "printf '%s\n' '[container]' 'image = \"$REG/ctl-test/busybox\"' 'version = \"1\"' \
        'devices = [\"/dev/zero\"]' '[deploy]' 'replicas = 2' > /tmp/dev.toml"
    local rc
    rc=$(run_status $H1 validate /tmp/dev.toml)
    expect_eq "devices with [deploy] invalid" "$rc" 1
    expect_contains "the reason names Swarm" "$(cat "$OUT")" "Swarm"
    ctl $H1 stop spread
    tb_wait_for 30 "service removed" check "! tb_host $H1 docker service inspect containerctl-spread"
}

c_secret_service() {
    # A [deploy] unit of the manager gets a secret of the manager's store as a Swarm secret, on
    # another node: the file reaches the task on c2; the value is in no host's journal.
    local value digest nodes
    value="ctlsecret-cluster-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    digest=$(printf '%s' "$value" | sha256sum | cut -d' ' -f1)
    printf '%s' "$value" | tb_host $H1 containerctl secret set cluster-db
    tb_host $H1 sh -c 'cat > /etc/containerctl/units/vault.toml' <<EOF
[container]
image = "$REG/ctl-test/busybox"
version = "1"
secrets = ["cluster-db"]
args = ["sh", "-c", 'f=/run/secrets/cluster-db; echo "vault got=\$(sha256sum < \$f | cut -d" " -f1) mode=\$(stat -c %a \$f)"; exec sleep 3600']
[service]
stop_timeout = "3s"
[deploy]
replicas = 1
constraints = ["node.hostname==c2"]
EOF
    tb_host $H1 systemctl daemon-reload
    ctl $H1 start vault
    nodes=$(tb_host $H1 docker service ps containerctl-vault --filter desired-state=running --format '{{.Node}} {{.CurrentState}}')
    echo "$nodes"
    expect_eq "the task runs on c2" "$(awk '/Running/ {print $1}' <<<"$nodes")" c2
    tb_wait_for 30 "the task's file digest, relayed to c1's journal" \
        check "tb_host $H1 journalctl -u containerctl@vault | grep -q 'vault got=$digest mode=444'"
    expect_eq "one Swarm secret for the unit" \
        "$(tb_host $H1 docker secret ls --filter label=io.containerctl.unit=vault -q | wc -l)" 1
    local h
    for h in $H1 $H2 $H3; do
        expect_eq "lines of $h's journal with the value" \
            "$(tb_host $h sh -c 'journalctl --no-pager -o verbose | grep -cF -- "$1"' _ "$value" || true)" 0
    done
    ctl $H1 stop vault
    tb_wait_for 30 "service removed" check "! tb_host $H1 docker service inspect containerctl-vault"
    expect_eq "no Swarm secret left" "$(tb_host $H1 docker secret ls --filter label=io.containerctl.unit=vault -q)" ""
    tb_host $H1 rm /etc/containerctl/units/vault.toml
    tb_host $H1 systemctl daemon-reload
    ctl $H1 secret rm cluster-db
}

# A [deploy] unit whose image is only in a private registry (htpasswd, TLS from a test CA every
# node trusts), constrained to c2: c2 pulls for the task with the credential the service carries.
c_private_registry() {
    local preg=$IP1:5443 user=tester password='cl-PW?~>???~~~>>>-c2' rc status
    private_registry_start $H1 "$IP1" 5443 "$user" "$password"
    for h in $H1 $H2 $H3; do private_registry_trust $H1 "$h" "$preg"; done
    private_registry_push $H1 "$preg" private/svc "$user" "$password"
    for h in $H1 $H2; do
        expect "$h does not have the private image" check "! tb_host $h docker image inspect $preg/private/svc:1 >/dev/null 2>&1"
    done
    tb_host $H1 sh -c "printf '%s\n' '[container]' 'image = \"$preg/private/svc\"' 'version = \"1\"' \
        'args = [\"sh\", \"-c\", \"echo private-task; sleep 3600\"]' '[service]' 'restart = \"on-failure\"' \
        '[deploy]' 'replicas = 1' 'constraints = [\"node.hostname==c2\"]' > /etc/containerctl/units/privsvc.toml"
    tb_host $H1 systemctl daemon-reload
    # Without a login c2 cannot pull: the unit fails with 78, naming the registry and the fix.
    rc=$(run_status $H1 start privsvc)
    cat "$OUT"
    expect "start without a login fails" check "(( $rc != 0 ))"
    expect_eq "exit status" "$(tb_host $H1 systemctl show -p ExecMainStatus --value containerctl@privsvc)" 78
    status=$(tb_host $H1 systemctl show -p StatusText --value containerctl@privsvc)
    expect_contains "the status names the registry" "$status" "registry $preg refused"
    expect_contains "and the command" "$status" "containerctl registry login $preg"
    expect "the failed service is removed" check "! tb_host $H1 docker service inspect containerctl-privsvc >/dev/null 2>&1"
    tb_host $H1 systemctl reset-failed containerctl@privsvc
    # After the login on the manager the service carries the credential, and c2 pulls with it.
    rc=0
    printf '%s\n' "$password" | tb_host $H1 containerctl registry login "$preg" -u "$user" --password-stdin || rc=$?
    expect_eq "login on the manager" "$rc" 0
    ctl $H1 start privsvc
    local nodes
    nodes=$(tb_host $H1 docker service ps containerctl-privsvc --filter desired-state=running --format '{{.Node}} {{.CurrentState}}')
    echo "$nodes"
    expect_eq "the task runs on c2" "$(awk '/Running/ {print $1}' <<<"$nodes")" c2
    expect "c2 pulled the private image" check "tb_host $H2 docker image inspect $preg/private/svc:1 >/dev/null"
    expect "the manager did not need to pull it" check "! tb_host $H1 docker image inspect $preg/private/svc:1 >/dev/null 2>&1"
    tb_wait_for 30 "the task's output" check "tb_host $H1 journalctl -u containerctl@privsvc | grep -q private-task"
    # Swarm keeps the credential to itself: the service's spec does not show it.
    local spec
    spec=$(tb_host $H1 docker service inspect containerctl-privsvc)
    expect "no password in docker service inspect" check "! grep -qF -- '$password' <<<\"\$spec\""
    expect "no password in the manager's journal" check "! tb_host $H1 journalctl -o verbose | grep -qF -- '$password'"
    expect "no password in c2's journal" check "! tb_host $H2 journalctl -o verbose | grep -qF -- '$password'"
    ctl $H1 stop privsvc
    tb_wait_for 30 "service removed" check "! tb_host $H1 docker service inspect containerctl-privsvc"
    ctl $H1 registry logout "$preg"
    tb_host $H1 sh -c 'rm /etc/containerctl/units/privsvc.toml; systemctl daemon-reload'
    tb_host $H1 systemctl stop "$PRIVREG_UNIT"
}

c_inventory_and_down() {
    tb_wait_for 20 "c2 reports its unit" check "ctl $H1 cluster nodes --json | grep -q fromreg"
    expect_eq "c2 up" "$(node_field c2 state)" up
    expect_contains "c2's images reported" "$(node_field c2 images)" "$REG/ctl-test/busybox:1"
    expect_contains "table lists c3" "$(ctl $H1 cluster nodes)" "c3"
    # c2 stops: the manager shows it down; it boots again: up, mounted and reporting.
    docker stop -t 10 "$TB_PREFIX$H2" >/dev/null
    tb_wait_for 60 "c2 down" check "[[ \$(node_field c2 state) == down ]]"
    docker start "$TB_PREFIX$H2" >/dev/null
    tb_wait_for 90 "c2 up again" check "[[ \$(node_field c2 state) == up ]]"
    tb_wait_for 30 "c2 mounts the shared volume after boot" check "tb_host $H2 findmnt /var/lib/containerctl/shared"
    expect_eq "c2 reads the shared file after boot" "$(tb_host $H2 cat /var/lib/containerctl/shared/hello.txt | cut -c1-7)" "from c2"
    local id history
    id=$(node_field c2 id)
    history=$(tb_host $H1 curl -s --unix-socket /run/containerctl/containerctl.sock "http://x/api/v1/cluster/nodes/$id")
    expect_contains "c2's history has it going down" "$history" '"kind":"down"'
    expect_contains "c2's history has it coming back" "$history" '"kind":"up"'
    expect_contains "c2's history has its join" "$history" '"kind":"joined"'
}

c_manager_restart() {
    local seen1
    tb_host $H1 systemctl restart containerctld
    tb_wait_for 30 "daemon back" tb_host $H1 containerctl cluster status
    expect_eq "c2 still up after the manager's restart" "$(node_field c2 state)" up
    expect_eq "c3 still up" "$(node_field c3 state)" up
    expect_contains "history kept" "$(tb_host $H1 curl -s --unix-socket /run/containerctl/containerctl.sock "http://x/api/v1/cluster/nodes/$(node_field c2 id)")" '"kind":"down"'
    seen1=$(node_field c2 last_seen_ms)
    tb_wait_for 20 "c2 reports to the restarted manager" check "(( \$(node_field c2 last_seen_ms) > $seen1 ))"
    # Joins still work after the restart (the cluster API is served again).
    expect_contains "token after restart" "$(ctl $H1 cluster token create --json)" '"token":"ctl1.'
}

c_report_events() {
    local seen n
    # The page's stream says `cluster` when a node shows something new, not at every report
    # (gauges such as the load change at every one; the page refreshes those on its own timer).
    # Every node reported once to the manager restarted above (a first report is news).
    seen=$(node_field c3 last_seen_ms)
    tb_wait_for 20 "c3 reports to the restarted manager" check "(( \$(node_field c3 last_seen_ms) > $seen ))"
    tb_host $H1 sh -c 'curl -sN --unix-socket /run/containerctl/containerctl.sock http://x/api/v1/stream >/tmp/stream.txt 2>&1 & echo $! >/tmp/stream.pid'
    tb_wait_for 10 "the stream is open" check "tb_host $H1 grep -q 'event: units' /tmp/stream.txt"
    for n in 1 2 3 4; do
        seen=$(node_field c2 last_seen_ms)
        tb_wait_for 20 "report $n of c2" check "(( \$(node_field c2 last_seen_ms) > $seen ))"
        seen=$(node_field c3 last_seen_ms)
        tb_wait_for 20 "report $n of c3" check "(( \$(node_field c3 last_seen_ms) > $seen ))"
    done
    # At least eight reports came, and the manager's own: an event each before. A few real changes
    # meanwhile (a container of an earlier step going) are allowed.
    n=$(tb_host $H1 grep -c 'event: cluster' /tmp/stream.txt || true)
    expect "at most three cluster events for eight reports or more (saw $n)" check "(( $n <= 3 ))"
    # c2 runs one more container: its next report shows it, and the stream says so.
    tb_host $H2 docker run -d --name report-event ctl-test/busybox:1 sleep 600 >/dev/null
    tb_wait_for 20 "a cluster event after c2 has one more container" check "(( \$(tb_host $H1 grep -c 'event: cluster' /tmp/stream.txt) > $n ))"
    tb_host $H2 docker rm -f report-event >/dev/null
    tb_host $H1 sh -c 'kill $(cat /tmp/stream.pid)'
}

c_leave_and_remove() {
    local rc
    # The first manager does not take the cluster down while others are in it.
    rc=$(run_status $H1 cluster leave)
    expect_eq "first manager's leave refused while members remain" "$rc" 1
    expect_contains "names the members" "$(cat "$OUT")" "c2"
    rc=$(run_status $H2 cluster leave)
    cat "$OUT"
    expect_eq "c2 leaves" "$rc" 0
    not_member $H2
    expect "c2 unmounted" check "! tb_host $H2 findmnt /var/lib/containerctl/shared"
    expect "c2 no longer trusts the registry" check "! tb_host $H2 test -e /etc/docker/certs.d/$REG"
    expect_eq "manager shows c2 left" "$(node_field c2 state)" left
    # auth.allow shrank: c2, now outside, cannot mount the volume; the members still can.
    expect_eq "auth.allow without c2" "$(auth_allow)" "$IP1,$IP3"
    cannot_mount $H2
    expect "c1 still reads the shared volume" check "tb_host $H1 test -f $SHARED/hello.txt"
    expect "c3 still reads the shared volume" check "tb_host $H3 test -f $SHARED/hello.txt"
    # The manager removes c3 (a manager with a brick): demoted, brick and peer removed.
    rc=$(run_status $H1 cluster remove c3)
    cat "$OUT"
    expect_eq "remove c3" "$rc" 0
    expect_eq "c3 removed" "$(node_field c3 state)" removed
    tb_wait_for 60 "Swarm nodes gone" check "[[ \$(tb_host $H1 docker node ls -q | wc -l) == 1 ]]"
    expect_contains "volume back to one brick" "$(tb_host $H1 gluster volume info containerctl)" "Number of Bricks: 1"
    expect_eq "auth.allow back to the manager" "$(auth_allow)" "$IP1"
    expect "c1 still reads the shared file" check "tb_host $H1 test -f /var/lib/containerctl/shared/hello.txt"
    # c3's credential stopped working; leaving still cleans c3 up.
    rc=$(run_status $H3 cluster leave)
    cat "$OUT"
    expect_eq "c3 leaves after removal" "$rc" 0
    not_member $H3
}

c_teardown_and_init_again() {
    local rc
    rc=$(run_status $H1 cluster leave)
    cat "$OUT"
    expect_eq "the first manager takes the cluster down" "$rc" 0
    not_member $H1
    expect "registry stopped" check "! tb_host $H1 systemctl is-active -q containerctl-registry"
    expect "shared volume unmounted" check "! tb_host $H1 findmnt /var/lib/containerctl/shared"
    expect_contains "Gluster volume deleted" "$(tb_host $H1 sh -c 'gluster volume list 2>&1')" "No volumes present"
    expect "the registry's images are kept" check "tb_host $H1 test -d /var/lib/containerctl/registry/docker"
    # A new cluster on the same host, with the same CA.
    rc=$(run_status $H1 cluster init --advertise-addr "$IP1")
    cat "$OUT"
    expect_eq "init again" "$rc" 0
    expect_eq "shared volume mounted again" "$(ctl $H1 cluster status --json | json_get shared mounted)" True
}

passed=0
# Steps of other files (tests/system/cluster_*.sh) come in through CLUSTER_STEPS_EXTRA, which each file
# appends to; they run after c_private_registry, while all three hosts are members.
CLUSTER_STEPS_EXTRA=()
for f in tests/system/cluster_*.sh; do
    [[ -e $f ]] || continue
    # shellcheck source=/dev/null
    source "$f"
done
steps=(c_init c_tokens_refused c_join c_shared_volume c_hostile_cluster_api c_registry c_service c_secret_service c_private_registry
    "${CLUSTER_STEPS_EXTRA[@]}" c_inventory_and_down c_manager_restart c_report_events c_leave_and_remove c_teardown_and_init_again)
# `tests/system/cluster.sh c_init c_join c_registry c_mine` runs only the steps named, in that order.
(($# > 0)) && steps=("$@")
for t in "${steps[@]}"; do
    start=$SECONDS
    set +e
    (set -eo pipefail; "$t")
    rc=$?
    set -e
    if ((rc != 0)); then
        echo "FAILED $t ($((SECONDS - start))s)"
        echo "--- journal of $H1 (last 60 lines) ---"
        tb_host $H1 journalctl --no-pager -n 60 || true
        echo "cluster: $passed passed, 1 failed (later steps depend on it and were not run)"
        exit 1
    fi
    echo "ok     $t ($((SECONDS - start))s)"
    passed=$((passed + 1))
done
echo "cluster: $passed passed, 0 failed"
