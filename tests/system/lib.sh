# Helpers for system tests: unit files, systemctl and journalctl inside a test host.
# Sourced after testbed/lib.sh; HOST names the host container the scenarios run on.

HOST=${HOST:-h1}

# unit_write NAME < TOML: installs /etc/containerctl/units/NAME.toml on the host.
unit_write() {
    tb_host "$HOST" sh -c "mkdir -p /etc/containerctl/units && cat > /etc/containerctl/units/$1.toml"
}

unit_rm() {
    tb_host "$HOST" rm -f "/etc/containerctl/units/$1.toml"
}

reload() {
    tb_host "$HOST" systemctl daemon-reload
}

sctl() {
    tb_host "$HOST" systemctl "$@"
}

# prop NAME PROPERTY: one property of containerctl@NAME.service.
prop() {
    tb_host "$HOST" systemctl show -p "$2" --value "containerctl@$1.service" </dev/null
}

# wait_prop SECONDS NAME PROPERTY VALUE
wait_prop() {
    tb_wait_for "$1" "containerctl@$2 $3=$4" _prop_is "$2" "$3" "$4"
}

_prop_is() {
    [[ $(prop "$1" "$2") == "$3" ]]
}

# wait_restarts SECONDS NAME MIN: NRestarts reaches at least MIN.
wait_restarts() {
    tb_wait_for "$1" "containerctl@$2 NRestarts>=$3" _restarts_at_least "$2" "$3"
}

_restarts_at_least() {
    local n
    n=$(prop "$1" NRestarts)
    ((${n:-0} >= $2))
}

journal() {
    tb_host "$HOST" journalctl --no-pager -o cat -u "containerctl@$1.service" </dev/null
}

# wait_journal SECONDS NAME TEXT: TEXT appears in the unit's journal.
wait_journal() {
    tb_wait_for "$1" "'$3' in the journal of containerctl@$2" _journal_has "$2" "$3"
}

_journal_has() {
    journal "$1" | has_text "$2"
}


container_id() {
    tb_host "$HOST" docker ps -q --no-trunc --filter "name=^containerctl-$1\$" </dev/null
}

container_absent() {
    [[ -z $(tb_host "$HOST" docker ps -aq --filter "name=^containerctl-$1\$" </dev/null) ]]
}

# shellcheck source=tests/assert.sh
source "$(dirname "${BASH_SOURCE[0]}")/../assert.sh"
