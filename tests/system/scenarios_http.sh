# System scenarios for the HTTP API on 127.0.0.1:5000 (issue 4): tokens, sessions, CSRF, metrics.

# http METHOD PATH [CURL ARGS...]: "STATUS BODY" of a request to http://127.0.0.1:5000 in the host.
http() {
    local method=$1 path=$2
    shift 2
    tb_host "$HOST" curl -s -o /tmp/http-body -D /tmp/http-headers -w '%{http_code}' -X "$method" "$@" \
        "http://127.0.0.1:5000$path" </dev/null
    printf ' '
    tb_host "$HOST" cat /tmp/http-body </dev/null
}
http_headers() { tb_host "$HOST" cat /tmp/http-headers </dev/null; }
code() { printf '%s' "${1%% *}"; }

t_http_tokens_roles_and_revocation() {
    cli new webby --image ctl-test/busybox --version 1 -- sleep 1000
    cli set webby container.init=true
    cli start webby
    local op viewer r op_id
    op=$(cli token create --name ci-operator --role operator)
    viewer=$(cli token create --name ci-viewer --role viewer --ttl 1h)
    expect_eq "no credentials" "$(code "$(http GET /api/v1/units)")" 401
    r=$(http GET /api/v1/units -H "Authorization: Bearer $op")
    expect_eq "operator lists units" "$(code "$r")" 200
    expect_contains "unit list over HTTP" "$r" '"name":"webby"'
    expect_eq "viewer may read" "$(code "$(http GET /api/v1/units/webby -H "Authorization: Bearer $viewer")")" 200
    expect_eq "viewer may not restart" "$(code "$(http POST /api/v1/units/webby/restart -H "Authorization: Bearer $viewer")")" 403
    # A viewer's edit is refused for its role whatever it sends: an invalid text or assignment gets
    # the same 403 as a valid one (no validation answers for a caller who may not edit), and the
    # file does not change.
    local before
    before=$(tb_host "$HOST" cat /etc/containerctl/units/webby.toml </dev/null)
    expect_eq "viewer's invalid file edit" "$(code "$(http PUT /api/v1/units/webby/file -H "Authorization: Bearer $viewer" -H 'content-type: application/json' -d '{"text":"[container\n"}')")" 403
    expect_eq "viewer's valid file edit" "$(code "$(http PUT /api/v1/units/webby/file -H "Authorization: Bearer $viewer" -H 'content-type: application/json' -d '{"text":"[container]\nimage = \"ctl-test/busybox\"\nversion = \"1\"\n"}')")" 403
    expect_eq "viewer's invalid assignment" "$(code "$(http POST /api/v1/units/webby/set -H "Authorization: Bearer $viewer" -H 'content-type: application/json' -d '{"assignments":["no-equals-sign"]}')")" 403
    expect_eq "the file is unchanged" "$(tb_host "$HOST" cat /etc/containerctl/units/webby.toml </dev/null)" "$before"
    expect_eq "operator restarts" "$(code "$(http POST /api/v1/units/webby/restart -H "Authorization: Bearer $op")")" 200
    expect_eq "a tampered token" "$(code "$(http GET /api/v1/units -H "Authorization: Bearer ${op%?}x")")" 401
    expect_eq "a token without its signature" "$(code "$(http GET /api/v1/units -H "Authorization: Bearer ${op%.*}.")")" 401
    expect_eq "operator may not make tokens" \
        "$(code "$(http POST /api/v1/tokens -H "Authorization: Bearer $op" -H 'content-type: application/json' -d '{"name":"x","role":"admin"}')")" 403
    op_id=$(cli token list --json | tr ',' '\n' | grep -B1 '"name":"ci-operator"' | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
    expect "the operator token is listed" test -n "$op_id"
    cli token revoke "$op_id"
    expect_eq "a revoked token" "$(code "$(http GET /api/v1/units -H "Authorization: Bearer $op")")" 401
    expect_contains "the audit trail" "$(http GET /api/v1/audit -H "Authorization: Bearer $viewer")" forbidden
    cli stop webby
}

t_http_session_csrf_login_link_and_page() {
    cli new pagey --image ctl-test/busybox --version 1 -- sleep 1000
    cli set pagey container.init=true
    cli start pagey
    local link token r cookie csrf
    link=$(cli web login)
    expect_contains "login link" "$link" "http://127.0.0.1:5000/#login="
    token=${link#*#login=}
    r=$(http POST /api/v1/session -H 'content-type: application/json' -d "{\"token\":\"$token\"}")
    expect_eq "login with the link" "$(code "$r")" 200
    cookie=$(http_headers | grep -i '^set-cookie:' | sed 's/^[Ss]et-[Cc]ookie: //; s/;.*//' | tr -d '\r')
    expect_contains "session cookie" "$(http_headers)" "HttpOnly; SameSite=Strict"
    csrf=$(printf '%s' "$r" | grep -o '"csrf":"[0-9a-f]*"' | cut -d'"' -f4)
    expect_eq "the link works only once" \
        "$(code "$(http POST /api/v1/session -H 'content-type: application/json' -d "{\"token\":\"$token\"}")")" 401
    expect_eq "the link's token is no bearer token" "$(code "$(http GET /api/v1/units -H "Authorization: Bearer $token")")" 401
    expect_eq "read with the cookie" "$(code "$(http GET /api/v1/units -H "Cookie: $cookie")")" 200
    expect_eq "a mutation without CSRF" "$(code "$(http POST /api/v1/units/pagey/restart -H "Cookie: $cookie")")" 403
    expect_eq "a mutation with a wrong CSRF" \
        "$(code "$(http POST /api/v1/units/pagey/restart -H "Cookie: $cookie" -H 'X-CSRF-Token: 00')")" 403
    expect_eq "a mutation with CSRF" \
        "$(code "$(http POST /api/v1/units/pagey/restart -H "Cookie: $cookie" -H "X-CSRF-Token: $csrf")")" 200
    r=$(http GET /)
    expect_eq "the page" "$(code "$r")" 200
    expect_contains "the page's security headers" "$(http_headers)" "content-security-policy: default-src 'self'"
    expect_eq "healthz" "$(http GET /healthz)" "200 ok"
    r=$(http GET /metrics -H "Cookie: $cookie")
    expect_contains "metrics" "$r" 'containerctl_unit_active{unit="pagey"} 1'
    expect_contains "metrics" "$r" 'containerctl_build_info{version='
    r=$(tb_host "$HOST" curl -s -N --max-time 2 -H "Cookie: $cookie" http://127.0.0.1:5000/api/v1/stream </dev/null || true)
    expect_contains "the event stream" "$r" "event: units"
    expect_contains "the event stream" "$r" '"name":"pagey"'
    expect_eq "logout" "$(code "$(http DELETE /api/v1/session -H "Cookie: $cookie" -H "X-CSRF-Token: $csrf")")" 200
    expect_eq "after logout" "$(code "$(http GET /api/v1/units -H "Cookie: $cookie")")" 401
    cli stop pagey
}

# jwt HEADER_JSON CLAIMS_JSON KEYFILE|-: a token signed with HS256 by KEYFILE's secret ("-": unsigned).
jwt() {
    local h c sig key=$3
    h=$(printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '=')
    c=$(printf '%s' "$2" | base64 -w0 | tr '+/' '-_' | tr -d '=')
    if [[ $key == - ]]; then
        sig=
    else
        sig=$(printf '%s' "$h.$c" | tb_host "$HOST" sh -c "openssl dgst -sha256 -hmac \"\$(cat $key)\" -binary" |
            base64 -w0 | tr '+/' '-_' | tr -d '=')
    fi
    printf '%s.%s.%s' "$h" "$c" "$sig"
}

t_http_forged_tokens_are_refused_without_side_effects() {
    cli new guarded --image ctl-test/busybox --version 1 -- sleep 1000
    cli set guarded container.init=true
    cli start guarded
    local real keyfile kid id now claims good bad r revoked_id revoked
    real=$(cli token create --name forge-base --role viewer --ttl 1h --json)
    keyfile=$(tb_host "$HOST" sh -c 'ls /var/lib/containerctl/keys/*.key | head -1' </dev/null)
    kid=$(basename "$keyfile" .key)
    # The id of a real viewer token, so only the forged part decides.
    id=$(printf '%s' "$real" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
    expect "the real token's id" test -n "$id"
    now=$(date +%s)
    claims() { printf '{"sub":"forge","role":"%s","aud":"%s","iss":"containerctld","exp":%s,"nbf":%s,"iat":%s,"jti":"%s"}' "$@"; }
    good=$(jwt "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"$kid\"}" "$(claims viewer containerctl $((now + 600)) $((now - 5)) $((now - 5)) "$id")" "$keyfile")
    expect_eq "a token forged with the real key and a real id (control)" \
        "$(code "$(http GET /api/v1/units -H "Authorization: Bearer $good")")" 200
    local -A cases=(
        [alg-none]=$(jwt "{\"alg\":\"none\",\"kid\":\"$kid\"}" "$(claims admin containerctl $((now + 600)) $((now - 5)) $((now - 5)) "$id")" -)
        [expired]=$(jwt "{\"alg\":\"HS256\",\"kid\":\"$kid\"}" "$(claims viewer containerctl $((now - 600)) $((now - 900)) $((now - 900)) "$id")" "$keyfile")
        [wrong-audience]=$(jwt "{\"alg\":\"HS256\",\"kid\":\"$kid\"}" "$(claims viewer other $((now + 600)) $((now - 5)) $((now - 5)) "$id")" "$keyfile")
        [string-exp]=$(jwt "{\"alg\":\"HS256\",\"kid\":\"$kid\"}" "$(claims viewer containerctl "\"$((now + 600))\"" $((now - 5)) $((now - 5)) "$id")" "$keyfile")
        [string-nbf]=$(jwt "{\"alg\":\"HS256\",\"kid\":\"$kid\"}" "$(claims viewer containerctl $((now + 600)) "\"$((now - 5))\"" $((now - 5)) "$id")" "$keyfile")
        [escalated-role]=$(jwt "{\"alg\":\"HS256\",\"kid\":\"$kid\"}" "$(claims admin containerctl $((now + 600)) $((now - 5)) $((now - 5)) "$id")" "$keyfile")
        [unknown-id]=$(jwt "{\"alg\":\"HS256\",\"kid\":\"$kid\"}" "$(claims admin containerctl $((now + 600)) $((now - 5)) $((now - 5)) 00ff)" "$keyfile")
        [wrong-key]=$(jwt "{\"alg\":\"HS256\",\"kid\":\"$kid\"}" "$(claims viewer containerctl $((now + 600)) $((now - 5)) $((now - 5)) "$id")" /etc/hostname)
    )
    id_before=$(container_id guarded)
    for name in "${!cases[@]}"; do
        r=$(http POST /api/v1/units/guarded/restart -H "Authorization: Bearer ${cases[$name]}")
        expect_eq "restart with a $name token" "$(code "$r")" 401
    done
    r=$(cli token create --name forge-revoked --role operator --ttl 1h --json)
    revoked=$(printf '%s' "$r" | grep -o '"token":"[^"]*"' | cut -d'"' -f4)
    revoked_id=$(printf '%s' "$r" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
    cli token revoke "$revoked_id"
    expect_eq "restart with a revoked token" \
        "$(code "$(http POST /api/v1/units/guarded/restart -H "Authorization: Bearer $revoked")")" 401
    expect_eq "the container after refused restarts" "$(container_id guarded)" "$id_before"
    # Path tricks and oversized bodies over HTTP, with a valid admin token.
    bad=$(cli token create --name forge-admin --role admin --ttl 1h)
    expect_eq "a path trick over HTTP" \
        "$(code "$(http PUT '/api/v1/units/..%2F..%2Fetc%2Fpasswd/file' -H "Authorization: Bearer $bad" -H 'content-type: application/json' -d '{"text":"x"}')")" 400
    tb_host "$HOST" sh -c 'head -c 400000 /dev/zero | tr "\0" a > /tmp/big && printf "{\"text\": \"%s\"}" "$(cat /tmp/big)" > /tmp/big.json' </dev/null
    expect_eq "an oversized body over HTTP" \
        "$(code "$(http PUT /api/v1/units/guarded/file -H "Authorization: Bearer $bad" -H 'content-type: application/json' --data-binary @/tmp/big.json)")" 413
    expect_contains "the file after refused requests" "$(cli cat guarded)" 'args = ["sleep", "1000"]'
    cli stop guarded
}

t_http_key_rotation_keeps_older_tokens() {
    local old new
    old=$(cli token create --name before-rotation --role viewer --ttl 1h)
    cli token rotate-key
    new=$(cli token create --name after-rotation --role viewer --ttl 1h)
    expect_eq "a token signed before the rotation" "$(code "$(http GET /api/v1/units -H "Authorization: Bearer $old")")" 200
    expect_eq "a token signed after the rotation" "$(code "$(http GET /api/v1/units -H "Authorization: Bearer $new")")" 200
    expect "two keys, mode 0600" test "$(tb_host "$HOST" sh -c 'stat -c %a /var/lib/containerctl/keys/*.key | sort -u' </dev/null)" = 600
    expect_eq "key files" "$(tb_host "$HOST" sh -c 'ls /var/lib/containerctl/keys | wc -l' </dev/null)" 2
}

# _followers_at_least N: at least N `journalctl ... -f` processes of the daemon run in the host.
_followers_at_least() {
    local n
    n=$(tb_host "$HOST" sh -c 'pgrep -f "journalctl --no-pager -o json .* -f" | wc -l' </dev/null)
    ((n >= $1))
}
_no_followers() { ! tb_host "$HOST" pgrep -f "journalctl --no-pager -o json .* -f" </dev/null >/dev/null; }

t_http_limits_refuse_clearly_and_free_their_places() {
    cli new follow --image ctl-test/busybox --version 1 -- sh -c 'trap "exit 0" TERM; while true; do echo tick; sleep 5 & wait $!; done'
    cli start follow
    local viewer r
    viewer=$(cli token create --name ci-follow --role viewer --ttl 1h)
    # 32 log followers hold every place (each is a journalctl process of the daemon).
    tb_host "$HOST" sh -c "for i in \$(seq 32); do
        curl -sN -o /dev/null -H 'Authorization: Bearer $viewer' \
            'http://127.0.0.1:5000/api/v1/units/follow/logs?follow=true' &
    done" </dev/null
    tb_wait_for 30 "32 log followers" _followers_at_least 32
    r=$(http GET '/api/v1/units/follow/logs?follow=true' -H "Authorization: Bearer $viewer")
    expect_eq "the 33rd follower" "$(code "$r")" 429
    expect_contains "the limit is named" "$r" '"kind":"too_many_requests"'
    expect_contains "and what to do" "$r" "log followers are open"
    expect_eq "reads still work" "$(code "$(http GET /api/v1/units/follow -H "Authorization: Bearer $viewer")")" 200
    # Followers that go away give their places back.
    tb_host "$HOST" pkill -f "curl -sN -o /dev/null" </dev/null || true
    tb_wait_for 30 "followers gone" _no_followers
    r=$(tb_host "$HOST" curl -s -m 3 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $viewer" \
        'http://127.0.0.1:5000/api/v1/units/follow/logs?follow=true&n=1' </dev/null || true)
    expect_eq "a follower after the others left" "$r" 200
    cli stop follow
}
