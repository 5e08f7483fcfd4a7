# System scenarios for the everyday edit workflow (issue 12, items 3, 6, 7 and 10). Sourced by
# run.sh after scenarios_daemon.sh, whose helpers (cli, as, status_of, file_sum, _daemon_back)
# they use.

# unit_text NAME: the unit file as it is on disk.
unit_text() { tb_host "$HOST" cat "/etc/containerctl/units/$1.toml" </dev/null; }

# Item 3: an inline table is a table, environment values are strings, --unset removes keys, and
# comments and layout survive; an unknown key refuses the whole command.
t_set_edits_inline_tables_and_unsets_keys() {
    printf '%s\n' '# written by hand' '[container]' 'image = "ctl-test/busybox"' 'version = "1"' \
        'args = ["sleep", "1000"]' 'env = { A = "1" } # the environment' | unit_write seta
    cli set seta container.env.B=2
    local text before rc out
    text=$(unit_text seta)
    expect_contains "env after set" "$text" 'env = { A = "1", B = "2" } # the environment'
    expect_contains "comment after set" "$text" '# written by hand'
    as alice set seta container.env.C=true --unset container.env.A
    expect_contains "env after set --unset" "$(unit_text seta)" 'env = { B = "2", C = "true" } # the environment'
    before=$(file_sum seta)
    rc=0
    out=$(cli set seta container.env.D=4 container.imgae=x 2>&1) || rc=$?
    expect_eq "exit status of a set with an unknown key" "$rc" 1
    expect_contains "the refusal of an unknown key" "$out" 'did you mean `image`?'
    rc=$(status_of cli set seta --unset container.usr)
    expect_eq "exit status of an unset of an unknown key" "$rc" 1
    expect_eq "file after refused sets" "$(file_sum seta)" "$before"
    cli set seta --unset container.env
    text=$(unit_text seta)
    expect "env removed" test "${text/env =/}" == "$text"
    expect_contains "args kept" "$text" 'args = ["sleep", "1000"]'
    cli rm seta --yes
}

# Item 6: every unknown key at once, image hints that name valid images only.
t_validate_reports_every_unknown_key_and_valid_hints() {
    printf '%s\n' 'descripton = "x"' '[container]' 'imgae = "ctl-test/busybox"' 'version = "1"' \
        '[service]' 'restrat = "always"' |
        tb_host "$HOST" sh -c 'cat > /tmp/typos.toml'
    local out rc=0
    out=$(tb_host "$HOST" containerctl validate /tmp/typos.toml </dev/null 2>&1) || rc=$?
    expect_eq "exit status of validate" "$rc" 1
    expect_contains "the first unknown key" "$out" '/tmp/typos.toml:1:1: unknown key `descripton`'
    expect_contains "the second unknown key" "$out" '/tmp/typos.toml:3:1: unknown key `imgae` in [container]'
    expect_contains "the third unknown key" "$out" '/tmp/typos.toml:6:1: unknown key `restrat` in [service]'
    expect_contains "a hint" "$out" 'did you mean `restart`?'
    printf '%s\n' '[container]' 'image = "Busybox:latest"' 'version = "1"' |
        tb_host "$HOST" sh -c 'cat > /tmp/tagged.toml'
    out=$(tb_host "$HOST" containerctl validate /tmp/tagged.toml </dev/null 2>&1) || true
    expect_contains "the image hint" "$out" 'write image = "busybox" and the exact tag you tested'
    expect "no invalid image in the hint" test "${out/image = \"Busybox\"/}" == "$out"
    expect "no latest version in the hint" test "${out/version = \"latest\"/}" == "$out"
}

# Item 6: a second unit publishing the same host port is refused when it is saved, admins too.
t_second_unit_on_a_published_port_is_refused() {
    cli new porta --image ctl-test/busybox --version 1 -- sleep 1000
    cli set porta 'container.ports=["28080:80"]'
    cli new portb --image ctl-test/busybox --version 1 -- sleep 1000
    local before rc=0 out
    before=$(file_sum portb)
    out=$(cli set portb 'container.ports=["127.0.0.1:28080:80"]' 2>&1) || rc=$?
    expect_eq "exit status of a conflicting port" "$rc" 1
    expect_contains "the refusal names the other unit and its line" "$out" \
        'host port 127.0.0.1:28080/tcp is already published by unit porta (/etc/containerctl/units/porta.toml:'
    expect_contains "the refusal points at the refused line" "$out" '/etc/containerctl/units/portb.toml:'
    expect_eq "file after the refused port" "$(file_sum portb)" "$before"
    rc=$(status_of as alice set portb 'container.ports=["28080:80"]')
    expect_eq "exit status of an operator's conflicting port" "$rc" 1
    as alice set portb 'container.ports=["28080:80/udp", "28081:80"]'
    cli rm portb --yes
    cli rm porta --yes
}

# Item 7: history, diff and cat of a unit that does not exist exit 3 (not found).
t_missing_unit_history_diff_cat_exit_not_found() {
    local rc
    rc=$(status_of cli history nosuchunit)
    expect_eq "exit status of history of a missing unit" "$rc" 3
    rc=$(status_of cli diff nosuchunit)
    expect_eq "exit status of diff of a missing unit" "$rc" 3
    rc=$(status_of cli cat nosuchunit)
    expect_eq "exit status of cat of a missing unit" "$rc" 3
    rc=$(status_of as alice history nosuchunit --json)
    expect_eq "exit status of history --json of a missing unit" "$rc" 3
}

# Item 10: at start the daemon removes temporaries of writers that are gone, and logs each.
t_daemon_removes_stale_temporaries_at_start() {
    # 4194305 is above the largest pid_max: no process has it. PID 1 runs, but is not containerctld.
    tb_host "$HOST" sh -ec 'cd /etc/containerctl/units
        for f in .tmpa.toml.tmp-4194305-0 .tmpa.toml.tmp-4194305 .tmpa.toml.tmp-1-3 .notes.txt; do
            echo partial > "$f"
        done' </dev/null
    local pid_before left
    pid_before=$(tb_host "$HOST" systemctl show -p MainPID --value containerctld </dev/null)
    sctl restart containerctld
    tb_wait_for 30 "containerctld back" _daemon_back "$pid_before"
    left=$(tb_host "$HOST" ls -A /etc/containerctl/units </dev/null)
    expect "temporaries removed" test "${left/tmp-/}" == "$left"
    expect_contains "other files kept" "$left" .notes.txt
    expect_contains "the removal is logged" \
        "$(tb_host "$HOST" journalctl --no-pager -u containerctld </dev/null)" \
        'removed /etc/containerctl/units/.tmpa.toml.tmp-4194305-0'
    tb_host "$HOST" rm /etc/containerctl/units/.notes.txt </dev/null
}
