# shellcheck shell=bash
# A private registry for the credential tests (issue 13): Debian's docker-registry (distribution)
# with htpasswd (bcrypt) authentication, served over TLS with a certificate from a test CA made
# here with openssl. Docker trusts the CA only where private_registry_trust installs it
# (/etc/docker/certs.d/ADDR/ca.crt), exactly as an administrator would. Sourced after
# testbed/lib.sh; works under `set -euo pipefail`.

PRIVREG_DIR=/etc/ctl-test-registry
PRIVREG_UNIT=ctl-test-registry

# private_registry_start HOST IP PORT USER PASSWORD: CA, server certificate for IP, htpasswd with
# USER's bcrypt hash (htpasswd -B, password on stdin) and the registry as a transient unit on
# HOST, listening on IP:PORT. Waits until it answers 401 over TLS with the CA.
private_registry_start() {
    local host=$1 ip=$2 port=$3 user=$4 password=$5
    tb_host "$host" sh -ec "
        systemctl stop $PRIVREG_UNIT 2>/dev/null || true
        systemctl reset-failed $PRIVREG_UNIT 2>/dev/null || true
        # The update scenarios' registry had this unit: it is gone, and they must make it again.
        rm -f /run/ctl-test-registry.ready
        rm -rf $PRIVREG_DIR /var/lib/$PRIVREG_UNIT
        mkdir -p $PRIVREG_DIR /var/lib/$PRIVREG_UNIT
        cd $PRIVREG_DIR
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj '/CN=containerctl test CA' -keyout ca.key -out ca.crt 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj '/CN=$ip' \
            -keyout server.key -out server.csr 2>/dev/null
        printf '%s\n' 'subjectAltName=IP:$ip' 'basicConstraints=CA:FALSE' \
            'keyUsage=digitalSignature' 'extendedKeyUsage=serverAuth' > server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile server.ext -out server.crt 2>/dev/null
        printf '%s\n' 'version: 0.1' \
            'storage:' '  filesystem:' '    rootdirectory: /var/lib/$PRIVREG_UNIT' \
            'http:' '  addr: $ip:$port' '  tls:' '    certificate: $PRIVREG_DIR/server.crt' \
            '    key: $PRIVREG_DIR/server.key' \
            'auth:' '  htpasswd:' '    realm: ctl-test' '    path: $PRIVREG_DIR/htpasswd' > config.yml
    " </dev/null
    printf '%s' "$password" | tb_host "$host" htpasswd -ciB "$PRIVREG_DIR/htpasswd" "$user" >/dev/null 2>&1
    tb_host "$host" grep -q "^$user:\\\$2y\\\$" "$PRIVREG_DIR/htpasswd" </dev/null ||
        tb_die "$PRIVREG_DIR/htpasswd on $host holds no bcrypt hash for $user" || return 1
    tb_host "$host" systemd-run --quiet --unit="$PRIVREG_UNIT" \
        /usr/bin/docker-registry serve "$PRIVREG_DIR/config.yml" </dev/null
    tb_wait_for 30 "the private registry on $host to answer 401 at https://$ip:$port/v2/" \
        _private_registry_wants_login "$host" "$ip:$port"
}

_private_registry_wants_login() {
    [[ $(tb_host "$1" curl -s -o /dev/null -w '%{http_code}' --cacert "$PRIVREG_DIR/ca.crt" \
        "https://$2/v2/" </dev/null) == 401 ]]
}

# private_registry_trust FROM TO ADDR: HOST TO's dockerd trusts the CA of the registry that runs
# on FROM, for ADDR (IP:PORT), through /etc/docker/certs.d.
private_registry_trust() {
    local from=$1 to=$2 addr=$3
    tb_host "$from" cat "$PRIVREG_DIR/ca.crt" </dev/null |
        tb_host "$to" sh -c "mkdir -p '/etc/docker/certs.d/$addr' && cat > '/etc/docker/certs.d/$addr/ca.crt'"
}

# private_registry_push HOST ADDR REPO USER PASSWORD: pushes ctl-test/busybox:1 from HOST as
# ADDR/REPO:1, with a throw-away Docker client configuration (no password left in root's), then
# removes ADDR/REPO:1 from HOST, so that only the registry has it.
private_registry_push() {
    local host=$1 addr=$2 repo=$3 user=$4 password=$5
    printf '%s' "$password" | tb_host "$host" sh -ec "
        export DOCKER_CONFIG=\$(mktemp -d)
        trap 'rm -rf \"\$DOCKER_CONFIG\"' EXIT
        docker login -u '$user' --password-stdin '$addr' >/dev/null
        docker tag ctl-test/busybox:1 '$addr/$repo:1'
        docker push -q '$addr/$repo:1' >/dev/null
        docker logout '$addr' >/dev/null
        docker rmi '$addr/$repo:1' >/dev/null
    "
}
