# Assertions for the shell-driven tests (system, package): each prints what was expected and
# returns 1, so a scenario running under `set -e` fails at the first broken expectation.

# expect DESCRIPTION CMD...: fail with DESCRIPTION unless CMD succeeds.
expect() {
    local desc=$1
    shift
    if ! "$@"; then
        echo "expected: $desc" >&2
        return 1
    fi
}

# expect_eq DESCRIPTION GOT WANT
expect_eq() {
    if [[ $2 != "$3" ]]; then
        printf 'expected %s to be %q, got %q\n' "$1" "$3" "$2" >&2
        return 1
    fi
}

# expect_contains DESCRIPTION HAYSTACK NEEDLE
expect_contains() {
    if [[ $2 != *"$3"* ]]; then
        printf 'expected %s to contain %q; it was:\n%s\n' "$1" "$3" "$2" >&2
        return 1
    fi
}

# has_text TEXT: standard input contains TEXT. It reads all of it, unlike `grep -q`, which stops
# at the first match: under pipefail the writer's broken pipe would then fail the check.
has_text() {
    local all
    all=$(cat)
    [[ $all == *"$1"* ]]
}
