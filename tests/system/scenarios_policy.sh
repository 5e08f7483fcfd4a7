# System scenarios for the operators' policy (issue 11, item 2): one per attack class, each showing
# the refusal (exit status 4, the rule, where and what an admin can change), that the file did not
# change, and the allowed neighbour. Helpers (cli, as, status_of, file_sum) are in
# scenarios_daemon.sh; the host's containerctl.toml is written by tests/system/run.sh.

# refused_as USER FILE_NAME ARGS...: runs `containerctl ARGS...` as USER, expects exit status 4 and
# prints its output (for the rule, location and fix).
refused_as() {
    local user=$1 out rc=0
    shift
    out=$(tb_host "$HOST" runuser -u "$user" -- containerctl "$@" </dev/null 2>&1) || rc=$?
    expect_eq "exit status of containerctl $* as $user" "$rc" 4 >&2 || return 1
    printf '%s\n' "$out"
}

# audit_has TEXT: the audit trail (read as root) contains TEXT.
audit_has() {
    tb_host "$HOST" curl -s --unix-socket /run/containerctl/containerctl.sock \
        'http://localhost/api/v1/audit?limit=50' </dev/null | has_text "$1"
}

t_policy_dependencies_name_container_units_or_allowed_targets() {
    as alice new pdep --image ctl-test/busybox --version 1 -- sleep 1000
    local sum out
    sum=$(file_sum pdep)
    out=$(refused_as alice set pdep 'service.requires=["poweroff.target"]')
    expect_contains "the rule" "$out" "policy rule units allow-list"
    expect_contains "the location" "$out" "at /etc/containerctl/units/pdep.toml:"
    expect_contains "the key" "$out" "(service.requires[0])"
    expect_contains "the fix" "$out" "add \"poweroff.target\" to policy.allowed_units in /etc/containerctl/containerctl.toml"
    out=$(refused_as alice set pdep 'service.after=["ssh.service"]')
    expect_contains "a system service is refused" "$out" "policy rule units allow-list"
    refused_as alice set pdep 'service.requires=["containerctld.service"]' >/dev/null
    refused_as alice set pdep 'service.requires=["var-lib-containerctl-shared.mount"]' >/dev/null
    expect_eq "the file after refused dependencies" "$(file_sum pdep)" "$sum"
    expect_eq "poweroff.target was not started" "$(sctl is-active poweroff.target || true)" inactive
    expect "the refusal is audited" audit_has "units allow-list"
    # Neighbours: other container units and the default targets are allowed; root is not limited.
    as alice set pdep 'service.after=["network-online.target", "pother"]' 'service.requires=["pother"]'
    expect_contains "the allowed dependencies were written" "$(cli cat pdep)" '"pother"'
    cli set pdep 'service.after=["ssh.service"]'
    cli rm pdep --yes
}

t_policy_ports_are_unprivileged_and_never_the_daemons() {
    as alice new pport --image ctl-test/busybox --version 1 -- sleep 1000
    local sum out
    sum=$(file_sum pport)
    out=$(refused_as alice set pport 'container.ports=["127.0.0.1:5000:80"]')
    expect_contains "the daemon's port" "$out" "policy rule reserved ports"
    expect_contains "what uses it" "$out" "containerctld's web page and HTTP API"
    expect_contains "the location" "$out" "at /etc/containerctl/units/pport.toml:"
    out=$(refused_as alice set pport 'container.ports=["22:22"]')
    expect_contains "a privileged port" "$out" "policy rule ports allow-list"
    expect_contains "the fix" "$out" "add 22 to policy.allowed_ports in /etc/containerctl/containerctl.toml"
    # The line of the text set would have written is quoted, as a validation error quotes it.
    expect_contains "the quoted line" "$out" ' | ports = ["22:22"]'
    out=$(refused_as alice set pport 'container.ports=["18080:80", "0.0.0.0:5001:80/udp"]')
    expect_contains "the cluster API's port" "$out" "the cluster API"
    expect_contains "the second entry" "$out" "(container.ports[1])"
    expect_eq "the file after refused ports" "$(file_sum pport)" "$sum"
    as alice set pport 'container.ports=["18080:80", "127.0.0.1:19000:9000/udp"]'
    expect_contains "the allowed ports were written" "$(cli cat pport)" '18080:80'
    cli set pport 'container.ports=["22:22"]'
    cli rm pport --yes
}

t_policy_volumes_belong_to_their_unit() {
    cli new pv-db --image ctl-test/busybox --version 1 -- sleep 1000
    cli set pv-db 'container.volumes=["pv-db-data:/data", "shared:pv-db:/shared"]'
    as alice new pvweb --image ctl-test/busybox --version 1 -- sleep 1000
    local sum out
    sum=$(file_sum pvweb)
    out=$(refused_as alice set pvweb 'container.volumes=["pv-db-data:/stolen"]')
    expect_contains "another unit's named volume" "$out" "policy rule volume ownership"
    expect_contains "the fix" "$out" "add \"pv-db-data\" to policy.allowed_volumes"
    out=$(refused_as alice set pvweb 'container.volumes=["shared:pv-db:/stolen"]')
    expect_contains "another unit's shared volume" "$out" "policy rule shared volume ownership"
    # [deploy] runs anywhere: no host path at all, even an allowed one.
    out=$(refused_as alice set pvweb 'container.volumes=["/srv/containers/ops:/data"]' deploy.replicas=1)
    expect_contains "a deploy unit's host path" "$out" "policy rule deploy units are host-independent"
    expect_eq "the file after refused volumes" "$(file_sum pvweb)" "$sum"
    # A unit whose NAME starts the other's does not get that unit's volumes (pv-db-data is pv-db's).
    as alice new pv --image ctl-test/busybox --version 1
    sum=$(file_sum pv)
    out=$(refused_as alice set pv 'container.volumes=["pv-db-data:/stolen"]')
    expect_contains "the owner is named" "$out" "it belongs to unit pv-db"
    expect_eq "the file after a refused prefix volume" "$(file_sum pv)" "$sum"
    as alice set pv 'container.volumes=["pv-cache:/cache"]'
    as alice set pvweb 'container.volumes=["pvweb-data:/data", "pvweb_cache:/cache", "shared:pvweb-media:/m", "/srv/containers/ops:/ops"]'
    expect_contains "the unit's own volumes were written" "$(cli cat pvweb)" 'pvweb-data:/data'
    cli set pvweb 'container.volumes=["pv-db-data:/shared-by-root"]'
    cli rm pvweb --yes
    cli rm pv --yes
    cli rm pv-db --yes
}

t_policy_networks_come_from_the_allow_list() {
    as alice new pnet --image ctl-test/busybox --version 1 -- sleep 1000
    local sum out host_id
    sum=$(file_sum pnet)
    out=$(refused_as alice set pnet container.network=backend)
    expect_contains "a network not allowed" "$out" "policy rule networks allow-list"
    expect_contains "the fix" "$out" "add \"backend\" to policy.allowed_networks"
    host_id=$(tb_host "$HOST" docker network inspect -f '{{.Id}}' host </dev/null)
    out=$(refused_as alice set pnet "container.network=$host_id")
    expect_contains "the host network by its ID" "$out" "policy rule networks allow-list"
    out=$(refused_as alice set pnet container.network=host)
    expect_contains "the host network by name" "$out" "policy rule no host network"
    expect_eq "the file after refused networks" "$(file_sum pnet)" "$sum"
    as alice set pnet container.network=bridge
    as alice set pnet container.network=ops-net
    expect_contains "the allowed network was written" "$(cli cat pnet)" 'network = "ops-net"'
    cli rm pnet --yes
}

t_policy_protected_units_are_changed_by_admins_only() {
    cli new pprot --image ctl-test/busybox --version 1 -- sh -c 'echo first; exec sleep 1000'
    cli set pprot container.init=true service.protected=true
    cli set pprot 'container.args=["sh", "-c", "echo second; exec sleep 1000"]'
    cli start pprot
    local sum out
    sum=$(file_sum pprot)
    out=$(refused_as alice set pprot 'container.args=["sh", "-c", "echo pwned"]')
    expect_contains "an edit" "$out" "policy rule protected units"
    expect_contains "the location" "$out" "at /etc/containerctl/units/pprot.toml:"
    expect_contains "the fix" "$out" "service.protected = false"
    out=$(refused_as alice revert pprot 1)
    expect_contains "a revert" "$out" "only an admin may revert it"
    refused_as alice disable pprot >/dev/null
    refused_as alice enable pprot >/dev/null
    out=$(refused_as alice stop pprot)
    expect_contains "a stop, located in the current file" "$out" "at /etc/containerctl/units/pprot.toml:"
    refused_as alice rm pprot --yes >/dev/null
    expect_eq "the file after refused changes" "$(file_sum pprot)" "$sum"
    expect_eq "the protected unit still runs" "$(prop pprot ActiveState)" active
    expect "the refusal is audited" audit_has "only an admin may revert it"
    # Start and restart stay the operators'; root edits and reverts.
    as alice restart pprot
    cli revert pprot 2
    expect_contains "root's revert" "$(cli cat pprot)" 'echo first'
    cli set pprot 'container.args=["sleep", "1000"]'
    cli stop pprot
    cli rm pprot --yes
}

t_policy_an_operators_legitimate_unit_starts_and_serves() {
    # Everything issue 11 added (allow-lists, the runner's walk, nosuid,nodev roots,
    # no-new-privileges) leaves an operator's ordinary unit working: an allowed bind mount, an
    # allowed device and an unprivileged port.
    tb_host "$HOST" sh -ec 'mkdir -p /srv/containers/legit && echo legit-page > /srv/containers/legit/index.html' </dev/null
    as alice new legit --image ctl-test/busybox --version 1 -- httpd -f -p 18081 -h /www
    as alice set legit 'container.volumes=["/srv/containers/legit:/www:ro"]' 'container.devices=["/dev/zero"]' \
        'container.ports=["18081:18081"]' container.init=true
    as alice start legit
    expect_eq "the operator's unit runs" "$(prop legit ActiveState)" active
    tb_wait_for 20 "the page on :18081" tb_host "$HOST" sh -c 'curl -fsS http://127.0.0.1:18081/ | grep -q legit-page'
    expect_contains "the device is mapped" "$(tb_host "$HOST" docker exec containerctl-legit ls -l /dev/zero </dev/null)" "/dev/zero"
    expect_contains "no-new-privileges" \
        "$(tb_host "$HOST" docker exec containerctl-legit grep NoNewPrivs /proc/1/status </dev/null)" "1"
    as alice stop legit
    cli rm legit
}
