# System scenarios for webhook notifications (issue 14 item 5, `[notify]` in containerctl.toml).
# The webhook is a real HTTP server in the test host: busybox httpd in a container on the host's
# network, whose CGI script appends each request's content type and body (newlines as |) as one
# line to /srv/ntf-PORT/log on the host. The URL carries a token in its query, which must show
# nowhere.

NTF_TOKEN=ntf-s3cret-t0ken

# ntf_url PORT: the webhook's URL, token included.
ntf_url() { echo "http://127.0.0.1:$1/cgi-bin/hook?token=$NTF_TOKEN"; }

# ntf_listener_start HOST PORT: the listener on HOST's 127.0.0.1:PORT, its log empty.
ntf_listener_start() {
    local host=$1
    shift
    tb_host "$host" sh -ec "
        d=/srv/ntf-$1
        docker rm -f ntf-hook-$1 >/dev/null 2>&1 || true
        mkdir -p \$d/cgi-bin
        : > \$d/log
        cat > \$d/cgi-bin/hook <<'EOF'
#!/bin/sh
{ printf '%s\t' \"\$CONTENT_TYPE\"; head -c \"\${CONTENT_LENGTH:-0}\" | tr '\n' '|'; echo; } >> /www/log
printf 'Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok\n'
EOF
        chmod 755 \$d/cgi-bin/hook
        echo ready > \$d/ready
        docker run -d --name ntf-hook-$1 --network host -v \$d:/www ctl-test/busybox:1 \
            httpd -f -p 127.0.0.1:$1 -h /www >/dev/null
    " </dev/null
    # A GET of a plain file: nothing in the log but what the daemon sends.
    tb_wait_for 20 "the webhook listener on $host:$1" \
        tb_host "$host" curl -sf -o /dev/null "http://127.0.0.1:$1/ready" </dev/null
}

# ntf_listener_stop HOST PORT
ntf_listener_stop() {
    tb_host "$1" docker rm -f "ntf-hook-$2" >/dev/null </dev/null || true
}

# ntf_log HOST PORT: what the listener received, one request a line.
ntf_log() { tb_host "$1" cat "/srv/ntf-$2/log" </dev/null; }

# ntf_wait_log SECONDS HOST PORT TEXT: TEXT arrives at the listener.
ntf_wait_log() {
    tb_wait_for "$1" "'$4' received by the webhook on $2:$3" _ntf_log_has "$2" "$3" "$4"
}

_ntf_log_has() { ntf_log "$1" "$2" | has_text "$3"; }

# ntf_configure TOML: the test run's containerctl.toml plus TOML ([notify]), daemon restarted.
ntf_configure() {
    tb_host "$HOST" sh -ec '
        f=/etc/containerctl/containerctl.toml
        [ -e /root/ntf-base.toml ] || cp $f /root/ntf-base.toml
        { cat /root/ntf-base.toml; cat; } > $f
    ' <<<"$1"
    # Type=notify: restart returns once the new daemon said READY (socket bound).
    sctl restart containerctld
}

# ntf_restore: the configuration without [notify], daemon restarted.
ntf_restore() {
    tb_host "$HOST" cp /root/ntf-base.toml /etc/containerctl/containerctl.toml </dev/null
    sctl restart containerctld
}

# ntf_audit: the audit's notify entries, newest first, one "ACTION UNIT RESULT" a line.
ntf_audit() {
    tb_host "$HOST" curl -sf --unix-socket /run/containerctl/containerctl.sock \
        'http://x/api/v1/audit?limit=500' </dev/null |
        json_eval '"\n".join("%s %s %s" % (a["action"], a["unit"], a["result"]) for a in v if a["action"].startswith("notify"))'
}

# ntf_wait_audit SECONDS TEXT: TEXT appears in the notify entries of the audit.
ntf_wait_audit() {
    tb_wait_for "$1" "'$2' in the audit" _ntf_audit_has "$2"
}

_ntf_audit_has() { ntf_audit | has_text "$1"; }

# ntf_unit NAME ARGS TOML: a unit of ctl-test/busybox running ARGS (a TOML array) under tini (a
# stop does not wait for stop_timeout), then TOML.
ntf_unit() {
    unit_write "$1" <<EOF
[container]
image = "ctl-test/busybox"
version = "1"
init = true
args = $2

$3
EOF
}

# ntf_failing_unit NAME [RESTART [RESTART_SEC]]: a unit whose container exits with status 3.
ntf_failing_unit() {
    ntf_unit "$1" '["sh", "-c", "echo failing on purpose; sleep 0.3; exit 3"]' \
        "$(printf '[service]\nrestart = "%s"\nrestart_sec = "%s"' "${2:-no}" "${3:-1s}")"
}

# ntf_metric NAME: a value of /metrics (over HTTP, with a viewer token made once per host).
ntf_metric() {
    tb_host "$HOST" sh -ec '
        t=/root/ntf-viewer.token
        [ -s $t ] || containerctl token create --name ntf-metrics --role viewer --ttl 2h > $t
        curl -sf -H "Authorization: Bearer $(cat $t)" http://127.0.0.1:5000/metrics
    ' </dev/null | awk -v n="$1" '$1 == n { print $2 }'
}

# ntf_no_token WHERE TEXT: the webhook's token is not in TEXT.
ntf_no_token() {
    expect "no token in $1" test "${2/$NTF_TOKEN/}" == "$2"
}

t_notify_unit_failed_and_restart_loop() {
    ntf_listener_start "$HOST" 18091
    ntf_configure "$(printf '[notify]\nwebhooks = ["%s"]\n' "$(ntf_url 18091)")"
    ntf_failing_unit ntf-fail no
    ntf_failing_unit ntf-loop always 2s
    reload
    local host body
    host=$(tb_host "$HOST" hostname </dev/null)
    sctl start --no-block containerctl@ntf-fail.service containerctl@ntf-loop.service
    ntf_wait_log 60 "$HOST" 18091 '"event":"unit_failed"'
    body=$(ntf_log "$HOST" 18091 | grep '"event":"unit_failed"' | grep '"unit":"ntf-fail"' | head -1)
    expect_contains "unit_failed body" "$body" 'application/json'
    expect_contains "unit_failed body" "$body" "\"host\":\"$host\""
    expect_contains "unit_failed detail" "$body" 'status 3'
    expect "an RFC 3339 time" grep -qE '"at":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z"' <<<"$body"
    # Three automatic restarts (every 2 s after the exit) make a loop, said once.
    ntf_wait_log 60 "$HOST" 18091 '"event":"restart_loop","unit":"ntf-loop"'
    expect_contains "restart_loop detail" "$(ntf_log "$HOST" 18091)" "3 automatic restarts within 5 min"
    wait_restarts 30 ntf-loop 5
    expect_eq "restart_loop said once" "$(ntf_log "$HOST" 18091 | grep -c '"event":"restart_loop"')" 1
    sctl stop containerctl@ntf-loop.service
    sctl reset-failed containerctl@ntf-fail.service
    # Every attempt is in the audit, the URL without its token; the journal has no token either.
    ntf_wait_audit 20 "notify restart_loop ntf-loop delivered: http://127.0.0.1:18091/cgi-bin/hook?*** answered HTTP 200 (attempt 1 of 6)"
    expect_contains "audit of unit_failed" "$(ntf_audit)" \
        "notify unit_failed ntf-fail delivered: http://127.0.0.1:18091/cgi-bin/hook?*** answered HTTP 200"
    ntf_no_token "the audit" "$(ntf_audit)"
    ntf_no_token "the journal" "$(tb_host "$HOST" journalctl --no-pager -u containerctld </dev/null)"
    expect "delivered counted" test "$(ntf_metric containerctl_notifications_delivered_total)" -ge 2
    expect_eq "nothing dropped" "$(ntf_metric containerctl_notifications_dropped_total)" 0
    ntf_listener_stop "$HOST" 18091
    unit_rm ntf-fail
    unit_rm ntf-loop
    reload
    ntf_restore
}

# A health check that fails: Docker's health event is sent as unhealthy, and the runner's exit
# (123, no restart policy) as unit_failed, in that order.
t_notify_unhealthy() {
    ntf_listener_start "$HOST" 18096
    ntf_configure "$(printf '[notify]\nwebhooks = ["%s"]\n' "$(ntf_url 18096)")"
    ntf_unit ntf-sick '["sleep", "100000"]' \
        "$(printf '[health]\ncmd = ["false"]\ninterval = "1s"\ntimeout = "1s"\nretries = 1\n\n[service]\nrestart = "no"')"
    reload
    sctl start --no-block containerctl@ntf-sick.service
    ntf_wait_log 60 "$HOST" 18096 '"event":"unhealthy","unit":"ntf-sick"'
    expect_contains "unhealthy detail" "$(ntf_log "$HOST" 18096)" '"detail":"its health check fails (image ctl-test/busybox:1)"'
    ntf_wait_log 60 "$HOST" 18096 '"event":"unit_failed","unit":"ntf-sick"'
    expect_eq "unhealthy, then failed" \
        "$(ntf_log "$HOST" 18096 | grep -o '"event":"[a-z_]*"' | tr '\n' ' ')" '"event":"unhealthy" "event":"unit_failed" '
    expect_contains "the runner's exit status" "$(ntf_log "$HOST" 18096 | grep unit_failed)" "status 123"
    sctl reset-failed containerctl@ntf-sick.service
    ntf_listener_stop "$HOST" 18096
    unit_rm ntf-sick
    reload
    ntf_restore
}

# A rollback is sent; with events = ["rolled_back"] nothing else is, though the bad version
# turned unhealthy and the other unit failed first (one queue per webhook, in order: had the
# failure been sent it would have arrived before the rollback).
t_notify_rolled_back_and_events_filter() {
    upd_registry
    ntf_listener_start "$HOST" 18092
    ntf_configure "$(printf '[notify]\nwebhooks = ["%s"]\nevents = ["rolled_back"]\n' "$(ntf_url 18092)")"
    ntf_failing_unit ntf-quiet no
    upd_unit ntf-upd 1.0.1
    reload
    sctl start containerctl@ntf-upd.service
    sctl start --no-block containerctl@ntf-quiet.service
    wait_prop 30 ntf-quiet ActiveState failed
    wait_prop 60 ntf-upd ActiveState active
    local rc=0 lines
    upd_cli update ntf-upd --to 1.0.3 --soak 3s >/dev/null 2>&1 || rc=$?
    expect_eq "exit status of the rolled-back update" "$rc" 1
    ntf_wait_log 60 "$HOST" 18092 '"event":"rolled_back","unit":"ntf-upd"'
    expect_contains "rollback detail" "$(ntf_log "$HOST" 18092)" '"detail":"rolled back to 1.0.1: '
    lines=$(ntf_log "$HOST" 18092 | wc -l)
    expect_eq "only the chosen event was sent ($(ntf_log "$HOST" 18092))" "$lines" 1
    sctl stop containerctl@ntf-upd.service
    sctl reset-failed containerctl@ntf-quiet.service
    ntf_listener_stop "$HOST" 18092
    unit_rm ntf-upd
    unit_rm ntf-quiet
    reload
    ntf_restore
}

t_notify_text_format() {
    ntf_listener_start "$HOST" 18093
    ntf_configure "$(printf '[notify]\nwebhooks = ["%s"]\nformat = "text"\n' "$(ntf_url 18093)")"
    ntf_failing_unit ntf-text no
    reload
    local host body
    host=$(tb_host "$HOST" hostname </dev/null)
    sctl start --no-block containerctl@ntf-text.service
    ntf_wait_log 60 "$HOST" 18093 "ntf-text failed on $host"
    body=$(ntf_log "$HOST" 18093 | grep "ntf-text failed" | head -1)
    expect_contains "text body's content type" "$body" "text/plain"
    expect_contains "text body: title, then the detail" "$body" "ntf-text failed on $host|exit-code, status 3"
    expect "no JSON in the text body" test "${body/\{/}" == "$body"
    sctl reset-failed containerctl@ntf-text.service
    ntf_listener_stop "$HOST" 18093
    unit_rm ntf-text
    reload
    ntf_restore
}

# The webhook is down when the event happens: the attempts fail (audited with the next wait),
# then it comes up and a later attempt delivers.
t_notify_retries_until_the_listener_is_up() {
    ntf_listener_stop "$HOST" 18094
    ntf_configure "$(printf '[notify]\nwebhooks = ["%s"]\ntimeout = "2s"\n' "$(ntf_url 18094)")"
    ntf_failing_unit ntf-retry no
    reload
    local before audit
    before=$(ntf_metric containerctl_notification_attempts_failed_total)
    sctl start --no-block containerctl@ntf-retry.service
    ntf_wait_audit 60 "notify unit_failed ntf-retry failed: http://127.0.0.1:18094/cgi-bin/hook?***: "
    expect_contains "the first attempt and the wait" "$(ntf_audit)" "(attempt 1 of 6, next in 1s)"
    ntf_listener_start "$HOST" 18094
    ntf_wait_log 60 "$HOST" 18094 '"event":"unit_failed","unit":"ntf-retry"'
    ntf_wait_audit 20 "notify unit_failed ntf-retry delivered: http://127.0.0.1:18094/cgi-bin/hook?*** answered HTTP 200 (attempt "
    audit=$(ntf_audit | grep 'ntf-retry')
    # The attempts, oldest first, in the run's output (a figure of the retry's timing).
    tac <<<"$audit" | sed 's/^/    /'
    expect "delivered after a retry" grep -qE 'delivered: .*\(attempt [2-6] of 6\)' <<<"$audit"
    expect "failed attempts counted" test "$(ntf_metric containerctl_notification_attempts_failed_total)" -gt "$before"
    expect_eq "one message received" "$(ntf_log "$HOST" 18094 | grep -c ntf-retry)" 1
    ntf_no_token "the audit" "$audit"
    ntf_no_token "the journal" "$(tb_host "$HOST" journalctl --no-pager -u containerctld </dev/null)"
    sctl reset-failed containerctl@ntf-retry.service
    ntf_listener_stop "$HOST" 18094
    unit_rm ntf-retry
    reload
    ntf_restore
}

# A bad [notify] keeps the daemon from starting with an error that names the file, line, key and
# rule, the URL's token hidden; the previous daemon's state is untouched once the file is fixed.
t_notify_bad_config_is_refused() {
    local out
    tb_host "$HOST" sh -ec '
        f=/etc/containerctl/containerctl.toml
        [ -e /root/ntf-base.toml ] || cp $f /root/ntf-base.toml
        cp $f /root/ntf-good.toml
        { cat /root/ntf-base.toml; printf "[notify]\nwebhooks = [\"ftp://127.0.0.1/x?token=%s\"]\n" "$1"; } > $f
    ' sh "$NTF_TOKEN" </dev/null
    out=$(tb_host "$HOST" containerctld --config /etc/containerctl/containerctl.toml 2>&1 </dev/null || true)
    expect_contains "the refusal" "$out" "/etc/containerctl/containerctl.toml:"
    expect_contains "the refusal" "$out" 'notify.webhooks[0]: `ftp://127.0.0.1/x?***`: the scheme `ftp` is not http or https'
    ntf_no_token "the refusal" "$out"
    tb_host "$HOST" cp /root/ntf-good.toml /etc/containerctl/containerctl.toml </dev/null
    expect "the daemon still answers" tb_host "$HOST" containerctl list </dev/null
}
