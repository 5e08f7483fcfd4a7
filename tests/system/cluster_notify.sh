# Cluster step for webhook notifications (issue 14 item 5): the primary manager sends node_down
# when a member stops reporting and node_up when it reports again, to a real HTTP listener on the
# manager (the listener helpers of scenarios_notify.sh). Sourced by tests/system/cluster.sh:
#   tests/system/cluster.sh c_init c_join c_notify_node_down

# shellcheck source=tests/system/scenarios_notify.sh
source tests/system/scenarios_notify.sh

c_notify_node_down() {
    local port=18095 url body
    url=$(ntf_url $port)
    ntf_listener_start $H1 $port
    tb_host $H1 sh -ec "
        f=/etc/containerctl/containerctl.toml
        cp \$f /root/ntf-cluster-base.toml
        printf '[notify]\nwebhooks = [\"%s\"]\nevents = [\"node_down\", \"node_up\"]\n' '$url' >> \$f
    "
    tb_host $H1 systemctl restart containerctld
    tb_wait_for 30 "c2 up before the test" check "[[ \$(node_field c2 state) == up ]]"
    # c2's daemon stops: its reports stop (every 2s here), and after three intervals the manager
    # says it is down; Swarm still sees the node, so silence is the only sign.
    tb_host $H2 systemctl stop containerctld
    ntf_wait_log 60 $H1 $port '"event":"node_down","unit":null,"host":"c2"'
    body=$(ntf_log $H1 $port | grep '"node_down"' | head -1)
    expect_contains "node_down names the address and why" "$body" "\"detail\":\"$IP2: no report for "
    expect_eq "node_down state" "$(node_field c2 state)" down
    tb_host $H2 systemctl start containerctld
    ntf_wait_log 60 $H1 $port '"event":"node_up","unit":null,"host":"c2"'
    expect_contains "node_up says it reports again" "$(ntf_log $H1 $port | grep '"node_up"')" "\"detail\":\"$IP2: reports again\""
    expect_eq "two messages: down, then up" "$(ntf_log $H1 $port | grep -o '"event":"node_[a-z]*"' | tr '\n' ' ')" \
        '"event":"node_down" "event":"node_up" '
    expect "the attempts audited" check "tb_host $H1 curl -sf --unix-socket /run/containerctl/containerctl.sock \
        'http://x/api/v1/audit?limit=100' | grep -qF 'notify node_up'"
    ntf_no_token "the manager's journal" "$(tb_host $H1 journalctl --no-pager -u containerctld)"
    ntf_listener_stop $H1 $port
    tb_host $H1 cp /root/ntf-cluster-base.toml /etc/containerctl/containerctl.toml
    tb_host $H1 systemctl restart containerctld
    tb_wait_for 30 "c2 up after the test" check "[[ \$(node_field c2 state) == up ]]"
}

CLUSTER_STEPS_EXTRA+=(c_notify_node_down)
