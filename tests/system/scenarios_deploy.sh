# System scenarios for units with [deploy] (issue 6): a Swarm service instead of one container.
# The host's own dockerd is put in swarm mode only inside t_deploy_runs_updates_and_stops_a_service
# (and leaves it again), so the other scenarios keep a plain engine. With one node, Swarm runs
# every replica on this host from the image loaded into it (ctl-test/busybox:1).

# service_field NAME TEMPLATE: one `docker service ls` column of containerctl-NAME (empty if none).
service_field() {
    tb_host "$HOST" docker service ls --filter "name=containerctl-$1" --format "$2" </dev/null
}

# service_replicas NAME: running/desired tasks of containerctl-NAME, like 2/2.
service_replicas() {
    local r
    r=$(service_field "$1" '{{.Replicas}}')
    echo "${r%% *}"
}

_service_replicas_are() {
    [[ $(service_replicas "$1") == "$2" ]]
}

# Task containers of the service on this host.
_service_containers() {
    tb_host "$HOST" docker ps -q --filter "label=com.docker.swarm.service.name=containerctl-$1" </dev/null
}

_no_service_containers() {
    [[ -z $(_service_containers "$1") ]]
}

t_deploy_refused_without_swarm_and_with_devices() {
    # Not a Swarm manager: a configuration error, not restarted.
    unit_write nomanager <<EOF
[container]
$BUSYBOX
args = ["sleep", "1000"]
[deploy]
replicas = 2
EOF
    reload
    sctl start containerctl@nomanager 2>/dev/null || true
    wait_prop 20 nomanager ActiveState failed
    expect_eq "exit status on a host that is not a manager" "$(prop nomanager ExecMainStatus)" 78
    expect_contains "StatusText" "$(prop nomanager StatusText)" "this host is not a Swarm manager"
    expect_eq "no restart loop" "$(prop nomanager NRestarts)" 0
    sctl reset-failed containerctl@nomanager 2>/dev/null || true
    unit_rm nomanager

    # Devices cannot be mapped by Swarm: validate says so at the devices key.
    tb_host "$HOST" sh -c 'cat > /tmp/swarmdev.toml' <<EOF
[container]
$BUSYBOX
devices = ["/dev/zero"]
[deploy]
replicas = 2
EOF
    local out rc=0
    out=$(tb_host "$HOST" containerctl validate /tmp/swarmdev.toml </dev/null 2>&1) || rc=$?
    expect "validate refuses devices with [deploy] (exit status $rc)" test "$rc" -ne 0
    expect_contains "validate output" "$out" "/tmp/swarmdev.toml:5:11: Swarm services cannot map host devices"
    expect_contains "validate hint" "$out" "remove [deploy] to run this unit on one host, or remove the devices"
}

t_deploy_runs_updates_and_stops_a_service() {
    # Also on failure: no unit left running on the service, no swarm mode for later scenarios.
    trap 'sctl stop containerctl@swarmweb containerctl@swarmforeign </dev/null 2>/dev/null || true
        tb_host "$HOST" docker swarm leave --force </dev/null >/dev/null 2>&1 || true' EXIT
    tb_host "$HOST" docker swarm init </dev/null >/dev/null
    unit_write swarmweb <<EOF
description = "Swarm test unit"
[container]
$BUSYBOX
args = ["sh", "-c", "echo swarm-task-says-hi; exec sleep 1000"]
[service]
stop_timeout = "3s"
restart_sec = "1s"
[deploy]
replicas = 2
max_replicas_per_node = 3
constraints = ["node.role==manager"]
EOF
    reload
    sctl start containerctl@swarmweb
    expect_eq "ActiveState after start" "$(prop swarmweb ActiveState)" active
    # READY=1 came only once both tasks ran.
    expect_eq "docker service ls right after the start" "$(service_replicas swarmweb)" 2/2
    expect_contains "StatusText" "$(prop swarmweb StatusText)" "2/2 tasks running"
    expect_eq "task containers on this host" "$(_service_containers swarmweb | wc -l)" 2
    expect_eq "no plain container for a [deploy] unit" "$(container_id swarmweb)" ""
    expect_eq "the service's label" \
        "$(tb_host "$HOST" docker service inspect -f '{{index .Spec.Labels "io.containerctl.unit"}}' containerctl-swarmweb </dev/null)" \
        swarmweb
    wait_journal 30 swarmweb swarm-task-says-hi

    # The CLI edits and restarts it like any unit.
    tb_host "$HOST" containerctl set swarmweb deploy.replicas=3 </dev/null >/dev/null
    tb_host "$HOST" containerctl restart swarmweb </dev/null >/dev/null
    expect_eq "ActiveState after containerctl restart" "$(prop swarmweb ActiveState)" active
    expect_eq "replicas after set + restart" "$(service_replicas swarmweb)" 3/3

    # A runner that dies is replaced and updates the same service in place (rolling update).
    local id
    id=$(service_field swarmweb '{{.ID}}')
    tb_host "$HOST" containerctl set swarmweb deploy.replicas=1 </dev/null >/dev/null
    sctl kill --kill-who=main --signal=KILL containerctl@swarmweb
    wait_restarts 30 swarmweb 1
    wait_prop 60 swarmweb ActiveState active
    tb_wait_for 60 "containerctl-swarmweb at 1/1" _service_replicas_are swarmweb 1/1
    expect_eq "the same service was updated, not replaced" "$(service_field swarmweb '{{.ID}}')" "$id"
    wait_journal 20 swarmweb "updating service containerctl-swarmweb"

    # Stop removes the service and waits for its tasks.
    sctl stop containerctl@swarmweb
    expect_eq "ActiveState after stop" "$(prop swarmweb ActiveState)" inactive
    expect_eq "docker service ls after stop" "$(service_field swarmweb '{{.Name}}')" ""
    tb_wait_for 20 "the task containers to go" _no_service_containers swarmweb

    # A service of that name that containerctl did not create is never touched.
    tb_host "$HOST" docker service create --detach --replicas 0 --name containerctl-swarmforeign \
        ctl-test/busybox:1 sleep 1000 </dev/null >/dev/null
    unit_write swarmforeign <<EOF
[container]
$BUSYBOX
args = ["sleep", "1000"]
[deploy]
EOF
    reload
    sctl start containerctl@swarmforeign 2>/dev/null || true
    wait_prop 20 swarmforeign ActiveState failed
    expect_eq "exit status for a foreign service" "$(prop swarmforeign ExecMainStatus)" 78
    expect_contains "StatusText" "$(prop swarmforeign StatusText)" "exists that containerctl did not create"
    expect_eq "the foreign service is still there" "$(service_field swarmforeign '{{.Name}}')" \
        containerctl-swarmforeign
    sctl reset-failed containerctl@swarmforeign 2>/dev/null || true
    unit_rm swarmforeign
    unit_rm swarmweb
    reload
}
