# System scenarios for `containerctl import` and POST /api/v1/import (issue 16, items 1 and 5):
# a Compose project (a database with a health check, an app that waits for it, an env_file, a
# .env variable, a named volume) becomes units that start in dependency order, recorded as
# revisions with action import; a file that does not wholly convert, a unit the policy refuses
# or a name that exists writes nothing; a docker run command line becomes a unit; a pasted file
# converts in the daemon but can read no file of the host. Helpers (cli, as, status_of,
# audit_has, http, code) are in the other scenario files.

# import_project DIR: a small Compose project in DIR on the host.
import_project() {
    tb_host "$HOST" sh -ec "mkdir -p $1 && cd $1
cat > compose.yaml <<'YAML'
name: imp
services:
  db:
    image: ctl-test/busybox:\${DB_TAG:-0}
    command: [\"sh\", \"-c\", \"echo db-\$\$DB_ROLE > /data/role; touch /tmp/ready; exec sleep 1000\"]
    init: true
    environment:
      DB_ROLE: primary
    volumes:
      - data:/data
    healthcheck:
      test: [\"CMD\", \"test\", \"-f\", \"/tmp/ready\"]
      interval: 1s
      retries: 3
    restart: unless-stopped
  app:
    image: ctl-test/busybox:1
    command: sh -c 'echo \"app-sees \$\$GREETING \$\$LEVEL\"; exec sleep 1000'
    init: true
    env_file: app.env
    environment:
      LEVEL: \${LEVEL:?set LEVEL in .env}
    depends_on:
      db:
        condition: service_healthy
    container_name: imp_app
volumes:
  data:
YAML
printf 'GREETING=hello-from-env-file\n' > app.env
printf 'DB_TAG=1\nLEVEL=info\n' > .env
" </dev/null
}

t_import_compose_project_starts_in_dependency_order() {
    import_project /root/imp
    local out
    # A dry run shows the units and writes nothing.
    out=$(tb_host "$HOST" sh -c 'cd /root/imp && containerctl import compose compose.yaml --dry-run' </dev/null 2>&1)
    expect_contains "dry run shows the db unit" "$out" "# imp-db would be written to /etc/containerctl/units/imp-db.toml"
    expect_contains "the .env variable is used" "$out" 'version = "1"'
    expect_contains "a dropped key is noted with its place" "$out" "compose.yaml:26:5: container_name: dropped"
    expect_contains "dry run says so" "$out" "dry run: 2 unit(s) checked, nothing written"
    expect_eq "dry run wrote nothing" "$(tb_host "$HOST" ls /etc/containerctl/units/ </dev/null | grep -c '^imp-' || true)" 0

    out=$(tb_host "$HOST" containerctl import compose /root/imp/compose.yaml --start </dev/null)
    expect_contains "db created" "$out" "imp-db: created /etc/containerctl/units/imp-db.toml (revision 1), started"
    expect_contains "app created" "$out" "imp-app: created /etc/containerctl/units/imp-app.toml (revision 1), started"
    expect_eq "db active" "$(prop imp-db ActiveState)" active
    expect_eq "app active" "$(prop imp-app ActiveState)" active
    expect_contains "app requires db" "$(prop imp-app Requires)" "containerctl@imp-db.service"
    expect_contains "app is ordered after db" "$(prop imp-app After)" "containerctl@imp-db.service"
    # service_healthy: the app started only once the db was READY (healthy).
    local db_ready app_start
    db_ready=$(tb_host "$HOST" systemctl show -p ActiveEnterTimestampMonotonic --value containerctl@imp-db.service </dev/null)
    app_start=$(tb_host "$HOST" systemctl show -p ExecMainStartTimestampMonotonic --value containerctl@imp-app.service </dev/null)
    expect "app started after db was ready ($app_start > $db_ready)" test "$app_start" -gt "$db_ready"
    wait_journal 30 imp-app "app-sees hello-from-env-file info"
    expect_eq "the named volume is Compose's" \
        "$(tb_host "$HOST" docker run --rm -v imp_data:/d ctl-test/busybox:1 cat /d/role </dev/null)" db-primary
    expect_eq "unless-stopped: enabled at boot" "$(prop imp-db UnitFileState)" enabled-runtime
    expect_contains "history records the import" "$(cli history imp-app)" "import"
    audit_has '"action":"import"'
}

t_import_writes_nothing_unless_everything_converts() {
    import_project /root/imp2
    local out rc=0 before
    before=$(tb_host "$HOST" ls /etc/containerctl/units/ </dev/null | sort | tr '\n' ' ')
    # A key that cannot be expressed: FILE:LINE:COL, why, and nothing written.
    tb_host "$HOST" sh -c 'cd /root/imp2 && sed -i "s/^    init: true$/    init: true\n    tmpfs: \/run/" compose.yaml' </dev/null
    out=$(tb_host "$HOST" containerctl import compose /root/imp2/compose.yaml --prefix bad </dev/null 2>&1) || rc=$?
    expect_eq "exit status" "$rc" 1
    expect_contains "the error names file, line and column" "$out" "error: /root/imp2/compose.yaml:7:5: service db: tmpfs cannot be expressed in a containerctl unit"
    expect_contains "nothing written" "$out" "nothing was written"
    # An unset required variable.
    tb_host "$HOST" sh -c 'cd /root/imp2 && sed -i "/tmpfs/d" compose.yaml && sed -i "/^LEVEL=/d" .env' </dev/null
    rc=0
    out=$(tb_host "$HOST" containerctl import compose /root/imp2/compose.yaml --prefix bad </dev/null 2>&1) || rc=$?
    expect_eq "exit status for a required variable" "$rc" 1
    expect_contains "the required variable" "$out" "variable LEVEL is required: set LEVEL in .env"
    # An operator whose policy refuses one of the two units: neither is written.
    tb_host "$HOST" sh -c 'cd /root/imp2 && echo LEVEL=warn >> .env && sed -i "s|^    init: true$|    init: true\n    privileged: true|" compose.yaml && chmod -R a+rX /root /root/imp2' </dev/null
    rc=0
    out=$(tb_host "$HOST" runuser -u alice -- containerctl import compose /root/imp2/compose.yaml --prefix opimp </dev/null 2>&1) || rc=$?
    expect_eq "exit status of a policy refusal" "$rc" 4
    expect_contains "the rule" "$out" "privileged"
    # A name that exists: nothing written either.
    tb_host "$HOST" sh -c 'cd /root/imp2 && sed -i "/privileged/d" compose.yaml' </dev/null
    cli new clash-db --image ctl-test/busybox --version 1 -- sleep 1000 >/dev/null
    before=$(tb_host "$HOST" ls /etc/containerctl/units/ </dev/null | sort | tr '\n' ' ')
    rc=0
    out=$(tb_host "$HOST" containerctl import compose /root/imp2/compose.yaml --prefix clash </dev/null 2>&1) || rc=$?
    expect_eq "exit status of a name clash" "$rc" 1
    expect_contains "the clash is named" "$out" "clash-db already exists: nothing was written"
    expect_eq "no unit file was added" "$(tb_host "$HOST" ls /etc/containerctl/units/ </dev/null | sort | tr '\n' ' ')" "$before"
    expect_eq "no opimp or bad unit" "$(tb_host "$HOST" ls /etc/containerctl/units/ </dev/null | grep -c '^\(opimp\|bad\)-' || true)" 0
}

t_import_docker_run_command_line() {
    local out
    out=$(cli import docker-run -- docker run -d --name runimp --restart always -p 18088:80 -e MODE=test --init \
        --health-cmd 'test -f /tmp/up' --health-interval 1s -it ctl-test/busybox:1 sh -c 'touch /tmp/up; echo runimp-$MODE; exec sleep 1000' 2>&1)
    expect_contains "created" "$out" "runimp: created /etc/containerctl/units/runimp.toml (revision 1)"
    expect_contains "-it is noted" "$out" "a unit runs without a terminal"
    cli start runimp
    wait_journal 30 runimp "runimp-test"
    expect_eq "health check from --health-cmd" \
        "$(tb_host "$HOST" docker inspect -f '{{json .Config.Healthcheck.Test}}' containerctl-runimp </dev/null)" \
        '["CMD","/bin/sh","-c","test -f /tmp/up"]'
    expect_eq "published" "$(tb_host "$HOST" docker port containerctl-runimp 80/tcp </dev/null | head -1)" "0.0.0.0:18088"
    # --entrypoint replaces the image's; the arguments follow it.
    cli import docker-run -- run --name runentry --entrypoint /bin/echo ctl-test/busybox:1 entry-says-hi >/dev/null
    expect_contains "the unit's entrypoint" "$(cli cat runentry)" 'entrypoint = ["/bin/echo"]'
    cli start runentry || true
    wait_journal 30 runentry "entry-says-hi"
    expect_eq "the container's entrypoint" \
        "$(tb_host "$HOST" docker inspect -f '{{json .Config.Entrypoint}}' containerctl-runentry </dev/null)" '["/bin/echo"]'
    local rc=0
    out=$(cli import docker-run -- run --name runbad --pid host ctl-test/busybox:1 2>&1) || rc=$?
    expect_eq "an option that cannot be expressed" "$rc" 1
    expect_contains "it is named" "$out" "option --pid cannot be expressed"
    expect_eq "nothing written" "$(status_of cli cat runbad)" 3
}

t_import_pasted_compose_over_http_reads_no_host_file() {
    local admin viewer r body
    admin=$(cli token create --name imp-admin --role admin)
    viewer=$(cli token create --name imp-viewer --role viewer)
    body='{"compose":{"text":"services:\n  web:\n    image: ctl-test/busybox:1\n    command: [\"sleep\", \"1000\"]\n    init: true\n    ports: [\"18089:80\"]\n","prefix":"paste"},"start":true}'
    r=$(http POST /api/v1/import -H "Authorization: Bearer $viewer" -H 'content-type: application/json' --data-raw "$body")
    expect_eq "a viewer may not import" "$(code "$r")" 403
    expect_eq "nothing written for the viewer" "$(status_of cli cat paste-web)" 3
    r=$(http POST /api/v1/import -H "Authorization: Bearer $admin" -H 'content-type: application/json' --data-raw "$body")
    expect_eq "an admin imports a pasted file" "$(code "$r")" 200
    expect_contains "and it started" "$r" '"started":"done"'
    expect_eq "paste-web active" "$(prop paste-web ActiveState)" active
    # A pasted file cannot make the daemon read a file of the host, or mount a relative path.
    for hostile in 'env_file: /etc/shadow' 'volumes: [\"../../../etc:/host-etc\"]' 'env_file: ../../../../etc/containerctl/containerctl.toml'; do
        body="{\"compose\":{\"text\":\"services:\\n  x:\\n    image: ctl-test/busybox:1\\n    $hostile\\n\",\"prefix\":\"hostile\"}}"
        r=$(http POST /api/v1/import -H "Authorization: Bearer $admin" -H 'content-type: application/json' --data-raw "$body")
        expect_eq "refused: $hostile" "$(code "$r")" 422
        if [[ $r == *root:* || $r == *allowed_host_paths* ]]; then
            echo "a host file's content is in the answer to $hostile: $r" >&2
            return 1
        fi
    done
    expect_eq "nothing written for the hostile files" "$(status_of cli cat hostile-x)" 3
    # Two units of one import on the same host port: both refused.
    body='{"units":[{"name":"dup-a","text":"[container]\nimage = \"ctl-test/busybox\"\nversion = \"1\"\nports = [\"18090:80\"]\n"},{"name":"dup-b","text":"[container]\nimage = \"ctl-test/busybox\"\nversion = \"1\"\nports = [\"18090:81\"]\n"}]}'
    r=$(http POST /api/v1/import -H "Authorization: Bearer $admin" -H 'content-type: application/json' --data-raw "$body")
    expect_eq "a port clash inside one import" "$(code "$r")" 422
    expect_contains "the clash is named" "$r" "also published by"
    expect_eq "neither written" "$(status_of cli cat dup-a)$(status_of cli cat dup-b)" 33
}

# An imported unit is an ordinary unit file: a hand edit and a daemon-reload get a revision by the
# file after the import's, the diff between them shows the edit, and a revert to the import's
# revision puts its text back (recorded as a revert). Uses scenarios_files.sh's helpers.
t_import_then_hand_edit_has_history_diff_revert() {
    cli import docker-run -- run --name runhand --init ctl-test/busybox:1 sleep 1000 >/dev/null
    expect_contains "revision 1 is the import" "$(revision_of runhand 1)" '"action":"import"'
    local imported
    imported=$(cli cat runhand)
    hand_edit runhand 's/"1000"/"2000"/'
    reload
    tb_wait_for 20 "the hand edit of runhand as a revision by its file" history_has runhand '"actor":"file(uid0root)"'
    expect_eq "revision 2 of runhand" "$(revision_of runhand 2)" '"action":"file","actor":"file(uid0root)"'
    local diff
    diff=$(cli diff runhand 1 2)
    expect_contains "the diff removes the imported argument" "$diff" '-args = ["sleep", "1000"]'
    expect_contains "the diff adds the hand-edited one" "$diff" '+args = ["sleep", "2000"]'
    cli revert runhand 1 >/dev/null
    expect_eq "the revert puts the imported text back" "$(cli cat runhand)" "$imported"
    expect_contains "revision 3 is the revert" "$(revision_of runhand 3)" '"action":"revert"'
    expect "the audit has the hand edit" audit_has '"actor":"file (uid 0 root)"'
}
