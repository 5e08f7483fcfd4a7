#!/usr/bin/env bash
# Package tests (issue 5): build the .deb with dpkg-buildpackage and the .rpm with rpmbuild, lint
# both, compare their files, then install the .deb with apt on a clean systemd host (no Rust
# toolchain) and check install, upgrade, remove, reinstall and purge as docs/packaging.md says.
#   tests/package/run.sh            needs root, a Rust toolchain on PATH and the test bed's Docker
# Environment: TB_RUN (default pkg: cleanup removes only this run's hosts), PKG_HOST (pkg1),
# PKG_HOST_IP (172.29.77.201), PKG_OUT (where packages go, default /var/tmp/containerctl-package),
# PKG_MAX_EXPOSURE (4.0, for containerctld.service and containerctl-registry.service alike).
# shellcheck disable=SC2016  # dpkg-query's ${Field} formats
set -euo pipefail
cd "$(dirname "$0")/../.."
exec </dev/null
export TB_RUN=${TB_RUN:-pkg}
# shellcheck source=testbed/lib.sh
source testbed/lib.sh

HOST=${PKG_HOST:-pkg1}
HOST_IP=${PKG_HOST_IP:-172.29.77.201}
OUT=${PKG_OUT:-/var/tmp/containerctl-package}
MAX_EXPOSURE=${PKG_MAX_EXPOSURE:-4.0}
# The runner (one per container unit) needs less than the daemon: issue 11 asks for at most 3.0.
RUNNER_MAX_EXPOSURE=${PKG_RUNNER_MAX_EXPOSURE:-3.0}
# What the test bed's host image adds for federation (tests/system/cluster.sh): the package's
# Recommends (glusterfs-client) and Suggests. The host purges them first, to be a clean Debian.
FEDERATION_PACKAGES=(glusterfs-server glusterfs-client docker-registry)
C=$TB_PREFIX$HOST
t0=$SECONDS
mkdir -p "$OUT"

# Debian packages the build and lint steps need (the test bed's own come from tb_ensure_deps).
TB_DEPS+=(debhelper dpkg-dev lintian rpm rpmlint go-md2man curl)

log() { printf '[package %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
on_host() { docker exec "$C" "$@"; }
# quiet CMD...: CMD's status only.
quiet() { "$@" >/dev/null 2>&1; }
# shellcheck source=tests/assert.sh
source tests/assert.sh
wait_for() { tb_wait_for "$@"; }

version_of_deb() { dpkg-deb -f "$1" Version; }
# The package's files (not directories), one path a line, in a form both formats share: no
# leading "." and no compression suffix on man pages and docs; packaging-only files dropped.
files_of_deb() {
    dpkg-deb -c "$1" | awk '$1 !~ /^d/ {print $6}' | sed -e 's|^\./|/|' |
        grep -v -e '^/usr/share/doc/containerctl/changelog\.Debian\.gz$' \
            -e '^/usr/share/doc/containerctl/copyright$' -e '^/usr/share/lintian/overrides/' |
        sed -e 's/\.gz$//' | sort
}
files_of_rpm() {
    rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$1" | awk '$1 !~ /^d/ {print $2}' |
        grep -v '^/usr/lib/\.build-id/' |
        sed -e 's|^/usr/share/zsh/site-functions/|/usr/share/zsh/vendor-completions/|' -e 's/\.gz$//' | sort
}

# --- the steps; each is a test. State passes between them through these variables. ---
DEB='' DEB_NEW='' RPM='' CID='' DPID='' HISTORY='' RPID=''

t_versions_agree() {
    local cargo deb spec
    cargo=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
    deb=$(dpkg-parsechangelog -S Version)
    spec=$(awk '$1 == "Version:" {print $2}' rpm/containerctl.spec)
    expect_eq "debian/changelog's upstream version" "${deb%-*}" "$cargo"
    expect_eq "rpm/containerctl.spec's Version" "$spec" "$cargo"
}

t_deb_builds() {
    local v arch
    v=$(dpkg-parsechangelog -S Version)
    arch=$(dpkg --print-architecture)
    mkdir -p "$OUT"
    rm -f "$OUT"/containerctl_*
    # dpkg-buildpackage writes next to the source tree; one build at a time, results moved away.
    (
        flock 9
        dpkg-buildpackage -b -us -uc >"$OUT/dpkg-buildpackage.log" 2>&1 || {
            tail -n 40 "$OUT/dpkg-buildpackage.log" >&2
            exit 1
        }
        mv ../containerctl_"$v"_"$arch".{deb,buildinfo,changes} "$OUT/"
        rm -f ../containerctl-dbgsym_"$v"_"$arch".deb
        debian/rules clean >/dev/null
    ) 9>/var/lock/containerctl-package.lock
    DEB=$OUT/containerctl_${v}_${arch}.deb
    expect "$DEB to exist" test -s "$DEB"
    # The package's own checks: man pages rendered, not markdown fallbacks.
    local files
    files=$(files_of_deb "$DEB")
    local f
    for f in /usr/share/man/man1/containerctl.1 /usr/share/man/man5/containerctl.unit.5 \
        /usr/share/man/man5/containerctl.toml.5 /usr/share/man/man8/containerctld.8 \
        /usr/share/bash-completion/completions/containerctl /usr/share/zsh/vendor-completions/_containerctl \
        /usr/share/fish/vendor_completions.d/containerctl.fish /usr/lib/sysusers.d/containerctl.conf \
        /usr/lib/tmpfiles.d/containerctl.conf /usr/share/doc/containerctl/examples/hello.toml \
        /usr/lib/systemd/system/containerctl-registry.service /usr/share/containerctl/openapi.json; do
        expect "$f in the .deb" grep -qx "$f" <<<"$files"
    done
    expect "the shipped openapi.json is an OpenAPI 3.1 document" \
        grep -q '"openapi": "3.1.0"' <<<"$(dpkg-deb --fsys-tarfile "$DEB" | tar -xOf - ./usr/share/containerctl/openapi.json)"
    expect "/etc/containerctl/cluster/ in the .deb" grep -qx '\./etc/containerctl/cluster/' \
        <<<"$(dpkg-deb -c "$DEB" | awk '{print $6}')"
    # The registry runs only after `cluster init` (the generator wants it): the maintainer
    # scripts never enable or start it, they stop it on remove and try-restart it on upgrade.
    local scripts
    scripts=$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./postinst ./prerm)
    expect "the postinst never starts or enables the registry" \
        test -z "$(grep -E "(deb-systemd-invoke (start|restart)|systemctl.* (start|enable)|preset).*containerctl-registry" <<<"$scripts" || true)"
    expect "the postinst try-restarts the registry on upgrade" \
        grep -q "deb-systemd-invoke try-restart 'containerctl-registry.service'" <<<"$scripts"
    expect "the prerm stops the registry on remove" \
        grep -q "'containerctl@\*.service' containerctl-registry.service" <<<"$scripts"
    expect_eq "the .deb's conffiles" "$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles)" \
        /etc/containerctl/containerctl.toml
}

t_lintian_clean() {
    [[ -s $DEB ]] || { echo "no .deb was built" >&2; return 1; }
    local out
    out=$(lintian --pedantic --display-experimental "${DEB%.deb}.changes" 2>/dev/null) || true
    [[ -n $out ]] && printf '%s\n' "$out" >&2
    # Errors and warnings fail; every one must be fixed or overridden with a reason.
    expect "no lintian errors or warnings" test -z "$(grep -E '^[EW]: ' <<<"$out" || true)"
}

t_rpm_builds() {
    rm -rf "$OUT/rpm" && mkdir -p "$OUT/rpm"
    # --nodeps: Debian has no rpm database to check BuildRequires against. brp-compress under
    # bash: Debian's /bin/sh (dash) fails on its `read -d` and would leave man pages uncompressed.
    rpmbuild -bb --nodeps --build-in-place --define "_topdir $OUT/rpm" \
        --define '__brp_compress bash %{_rpmconfigdir}/brp-compress %{?_prefix}' \
        rpm/containerctl.spec >"$OUT/rpmbuild.log" 2>&1 || {
        tail -n 40 "$OUT/rpmbuild.log" >&2
        return 1
    }
    RPM=$(ls "$OUT"/rpm/RPMS/*/containerctl-*.rpm)
    expect "one rpm" test -s "$RPM"
    local scripts
    scripts=$(rpm -qp --scripts "$RPM")
    expect "%preun stops container units only on erase" grep -q "containerctl@\*.service" <<<"$scripts"
    local files
    files=$(rpm -qlp "$RPM")
    expect "containerctl-registry.service in the .rpm" grep -qx /usr/lib/systemd/system/containerctl-registry.service <<<"$files"
    expect "/etc/containerctl/cluster in the .rpm" grep -qx /etc/containerctl/cluster <<<"$files"
    # %post presets containerctld only; %preun and %postun stop and try-restart the registry too.
    expect "%post does not preset or start the registry" \
        test -z "$(sed -n '/^postinstall scriptlet/,/^preuninstall scriptlet/p' <<<"$scripts" | grep containerctl-registry || true)"
    expect "%preun stops the registry" grep -q "disable --now containerctld.service containerctl-registry.service" <<<"$scripts"
    expect "%postun try-restarts the registry" grep -q "try-restart containerctld.service containerctl-registry.service" <<<"$scripts"
}

t_rpmlint_clean() {
    [[ -s $RPM ]] || { echo "no .rpm was built" >&2; return 1; }
    if ! command -v rpmlint >/dev/null; then
        echo "rpmlint not installed" >&2
        return 1
    fi
    local out
    out=$(rpmlint -c rpm/rpmlint.toml rpm/containerctl.spec "$RPM" 2>&1) || true
    expect "rpmlint: 0 errors, 0 warnings" grep -q ' 0 errors, 0 warnings' <<<"$out" || {
        printf '%s\n' "$out" >&2
        return 1
    }
}

t_deb_and_rpm_hold_the_same_files() {
    [[ -s $DEB && -s $RPM ]] || { echo "a package is missing" >&2; return 1; }
    local d
    d=$(diff <(files_of_deb "$DEB") <(files_of_rpm "$RPM")) || {
        printf 'files only in the .deb (<) or the .rpm (>):\n%s\n' "$d" >&2
        return 1
    }
}

exposure_of() { awk '/Overall exposure level/ {for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+$/) print $i}'; }

# expect_exposure HOW UNIT E: E (systemd-analyze's overall exposure) is at most MAX_EXPOSURE
# (RUNNER_MAX_EXPOSURE for container units).
expect_exposure() {
    local max=$MAX_EXPOSURE
    [[ $2 == containerctl@* ]] && max=$RUNNER_MAX_EXPOSURE
    echo "exposure ($1) of $2: $3" >&2
    expect "$2's exposure $3 <= $max" awk -v e="$3" -v m="$max" 'BEGIN { exit !(e != "" && e <= m) }'
}

t_unit_exposure_offline() {
    [[ -s $DEB ]] || { echo "no .deb was built" >&2; return 1; }
    local dir unit e rc=0
    dir=$(mktemp -d)
    dpkg-deb -x "$DEB" "$dir"
    for unit in containerctld.service containerctl-registry.service containerctl@hello.service; do
        e=$(systemd-analyze security --offline=yes --root="$dir" "$unit" 2>/dev/null | exposure_of)
        expect_exposure offline "$unit" "$e" || rc=1
    done
    rm -rf "$dir"
    return $rc
}

# --- on a clean systemd host ---

t_host_boots() {
    tb_ensure_dockerd
    tb_build_images
    tb_network_ensure
    tb_host_start "$HOST" "$HOST_IP"
    expect "no Rust toolchain on the host" test -z "$(on_host sh -c 'command -v cargo rustc || true')"
    expect "containerctl not installed yet" test -z "$(on_host sh -c 'command -v containerctl || true')"
    on_host apt-get update -q >"$OUT/apt-update.log" 2>&1 || {
        tail -n 20 "$OUT/apt-update.log" >&2
        return 1
    }
    # The test bed's host image carries federation's packages for the system tests; a clean
    # Debian host with Docker has none, so that the install step sees what apt pulls in itself.
    on_host env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${FEDERATION_PACKAGES[@]}" \
        >"$OUT/apt-purge-federation.log" 2>&1 || {
        tail -n 20 "$OUT/apt-purge-federation.log" >&2
        return 1
    }
}

apt_install() {
    docker cp "$1" "$C:/root/"
    on_host env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/root/$(basename "$1")" \
        >"$OUT/apt-$2.log" 2>&1 || {
        tail -n 30 "$OUT/apt-$2.log" >&2
        return 1
    }
}

hello_id() { on_host docker ps -q --no-trunc --filter 'name=^containerctl-hello$'; }
unit_prop() { on_host systemctl show -p "$2" --value "$1"; }
_active() { [[ $(on_host systemctl is-active "$1") == active ]]; }
_journal_has() { on_host journalctl --no-pager -o cat -u "$1" | grep -q -- "$2"; }

t_install_with_apt() {
    [[ -s $DEB ]] || { echo "no .deb was built" >&2; return 1; }
    apt_install "$DEB" install
    expect "glusterfs-client (Recommends) resolved from Debian" quiet on_host dpkg -s glusterfs-client
    expect "glusterfs-server (Suggests) not installed" test "$(pkg_status glusterfs-server)" != installed
    expect "docker-registry (Suggests) not installed" test "$(pkg_status docker-registry)" != installed
    expect_eq "containerctld enabled" "$(on_host systemctl is-enabled containerctld.service)" enabled
    expect_eq "containerctld active" "$(on_host systemctl is-active containerctld.service)" active
    expect "group containerctl" quiet on_host getent group containerctl
    expect_eq "socket owner and mode" "$(on_host stat -c '%F %a %U %G' /run/containerctl/containerctl.sock)" \
        "socket 660 root containerctl"
    expect_eq "state directory" "$(on_host stat -c '%a %U' /var/lib/containerctl)" "700 root"
    expect "the CLI reaches the daemon" quiet on_host containerctl list
    # Federation's files: the registry unit is installed but only `cluster init` turns it on.
    expect "systemctl cat containerctl-registry.service" quiet on_host systemctl cat containerctl-registry.service
    expect_eq "containerctl-registry not enabled" "$(on_host systemctl is-enabled containerctl-registry.service || true)" disabled
    expect_eq "containerctl-registry not active" "$(on_host systemctl is-active containerctl-registry.service || true)" inactive
    expect "the generator did not want the registry" \
        on_host test ! -e /run/systemd/generator/multi-user.target.wants/containerctl-registry.service
    expect_eq "/etc/containerctl/cluster" "$(on_host stat -c '%F %a %U' /etc/containerctl/cluster)" "directory 755 root"
    expect_eq "/etc/docker/certs.d" "$(on_host stat -c '%F %a %U' /etc/docker/certs.d)" "directory 755 root"
}

pkg_status() { on_host dpkg-query -W -f '${db:Status-Status}' "$1" 2>/dev/null || true; }

t_web_page_answers() {
    # Only builds whose daemon serves the web page: its default address is then documented in
    # the shipped containerctl.toml (every key, commented) or compiled into the daemon.
    if ! on_host grep -q ':5000' /etc/containerctl/containerctl.toml /usr/sbin/containerctld; then
        echo "skip: this containerctld has no web page yet" >&2
        return 77
    fi
    wait_for 20 "the web page on 127.0.0.1:5000" on_host curl -fsS -o /dev/null http://127.0.0.1:5000/
    # The API's description, public, is the document the package installed.
    expect "GET /api/v1/openapi.json is /usr/share/containerctl/openapi.json" on_host sh -c \
        'curl -fsS http://127.0.0.1:5000/api/v1/openapi.json | cmp -s - /usr/share/containerctl/openapi.json'
}

t_installed_unit_exposure() {
    local unit e rc=0
    for unit in containerctld.service containerctl-registry.service containerctl@hello.service; do
        e=$(on_host systemd-analyze security "$unit" 2>/dev/null | exposure_of)
        expect_exposure installed "$unit" "$e" || rc=1
    done
    return $rc
}

t_example_unit_runs_and_logs() {
    on_host sh -ec '
        install -d /var/lib/containerctl-example/www
        echo "hello from the package test" > /var/lib/containerctl-example/www/index.html
        cp /usr/share/doc/containerctl/examples/hello.toml /etc/containerctl/units/hello.toml
        containerctl enable hello >/dev/null
        containerctl start hello >/dev/null'
    expect_eq "containerctl@hello active" "$(on_host systemctl is-active containerctl@hello.service)" active
    expect_eq "the page" "$(on_host curl -fsS http://127.0.0.1:8080/)" "hello from the package test"
    wait_for 20 "httpd's log line in journalctl -u containerctl@hello" _journal_has containerctl@hello.service response:200
    HISTORY=$(on_host containerctl history hello --json)
    expect "two revisions (import, enable)" test "$(grep -o '"rev"' <<<"$HISTORY" | wc -l)" -ge 2
    CID=$(hello_id)
    expect "a container" test -n "$CID"
    DPID=$(unit_prop containerctld.service MainPID)
}

# Issue 12, item 8: the template's Documentation=man:containerctl.unit(5) resolves to a rendered
# page with a well-formed title line, and bash completes unit names (asked of the daemon).
t_man_pages_and_completion() {
    on_host env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends man-db \
        >"$OUT/apt-man-db.log" 2>&1 || {
        tail -n 20 "$OUT/apt-man-db.log" >&2
        return 1
    }
    # systemctl show quotes each entry: "man:containerctl.unit(5)".
    expect "the template's Documentation= (man:containerctl.unit(5))" \
        grep -qF 'man:containerctl.unit(5)' <<<"$(unit_prop containerctl@hello.service Documentation)"
    local page
    for page in containerctl.unit containerctl.toml containerctl containerctld; do
        expect "man -w $page" quiet on_host man -w "$page"
    done
    local head
    head=$(on_host sh -c 'MANWIDTH=80 man containerctl.unit 2>/dev/null | head -n 1')
    expect "containerctl.unit(5)'s header (${head})" grep -Eq '^CONTAINERCTL\.UNIT\(5\) +File Formats +CONTAINERCTL\.UNIT\(5\)$' <<<"$head"
    # shellcheck disable=SC2016  # expanded by the host's bash
    expect_eq "bash completes unit names" "$(on_host bash -c '
        source /usr/share/bash-completion/completions/containerctl
        COMP_WORDS=(containerctl status he); COMP_CWORD=2
        _containerctl_units containerctl he status; echo "${COMPREPLY[*]}"')" hello
    # shellcheck disable=SC2016
    expect_eq "quiet without the daemon's socket" "$(on_host bash -c '
        source /usr/share/bash-completion/completions/containerctl
        COMP_WORDS=(containerctl status he); COMP_CWORD=2
        CONTAINERCTL_SOCKET=/nonexistent _containerctl_units containerctl he status 2>&1; echo "[${COMPREPLY[*]}]"')" "[]"
}

# What `containerctl cluster init` leaves for the package's registry unit: registry.yml (so the
# generator wants the unit) and its storage. docker-registry is not installed (a Suggests): a
# drop-in runs a stand-in, so that upgrade and remove can be checked against a running registry.
t_registry_runs_once_configured() {
    on_host sh -ec '
        echo "# stand-in written by tests/package/run.sh" > /etc/containerctl/cluster/registry.yml
        install -d -m 0700 /var/lib/containerctl/registry
        install -d /etc/systemd/system/containerctl-registry.service.d
        printf "[Service]\nExecStart=\nExecStart=/bin/sleep infinity\n" \
            > /etc/systemd/system/containerctl-registry.service.d/package-test.conf
        systemctl daemon-reload'
    expect "the generator wants the registry" \
        on_host test -L /run/systemd/generator/multi-user.target.wants/containerctl-registry.service
    on_host systemctl start containerctl-registry.service
    expect_eq "containerctl-registry active" "$(on_host systemctl is-active containerctl-registry.service)" active
    RPID=$(unit_prop containerctl-registry.service MainPID)
}

t_upgrade_keeps_units_history_and_containers() {
    [[ -s $DEB && -n $CID ]] || { echo "needs the install and the example unit" >&2; return 1; }
    # A newer build: the same tree with only the package version bumped.
    local dir v enter_before
    v="$(version_of_deb "$DEB")+pkgtest1"
    dir=$(mktemp -d)
    dpkg-deb -R "$DEB" "$dir/root"
    sed -i "s/^Version: .*/Version: $v/" "$dir/root/DEBIAN/control"
    DEB_NEW=$OUT/containerctl_${v}_$(dpkg --print-architecture).deb
    dpkg-deb --root-owner-group -b "$dir/root" "$DEB_NEW" >/dev/null
    rm -rf "$dir"
    # An admin's change to the conffile must survive.
    on_host sh -c 'printf "\n[history]\nrevisions_per_unit = 50\n" >> /etc/containerctl/containerctl.toml'
    enter_before=$(unit_prop containerctl@hello.service ActiveEnterTimestampMonotonic)
    apt_install "$DEB_NEW" upgrade
    expect_eq "installed version" "$(on_host dpkg-query -W -f '${Version}' containerctl)" "$v"
    expect_eq "containerctld active" "$(on_host systemctl is-active containerctld.service)" active
    expect "containerctld restarted (MainPID $DPID before)" test "$(unit_prop containerctld.service MainPID)" != "$DPID"
    expect_eq "container of hello" "$(hello_id)" "$CID"
    expect_eq "containerctl@hello not restarted" "$(unit_prop containerctl@hello.service ActiveEnterTimestampMonotonic)" "$enter_before"
    expect_eq "history after the upgrade" "$(on_host containerctl history hello --json)" "$HISTORY"
    expect "the admin's conffile change kept" on_host grep -q 'revisions_per_unit = 50' /etc/containerctl/containerctl.toml
    expect "the unit file kept" on_host test -f /etc/containerctl/units/hello.toml
    if [[ -n $RPID ]]; then
        expect_eq "containerctl-registry active" "$(on_host systemctl is-active containerctl-registry.service)" active
        expect "containerctl-registry restarted (MainPID $RPID before)" \
            test "$(unit_prop containerctl-registry.service MainPID)" != "$RPID"
    fi
}

t_remove_stops_units_keeps_config_and_state() {
    [[ -n $DEB_NEW ]] || { echo "needs the upgrade" >&2; return 1; }
    on_host env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q containerctl >"$OUT/apt-remove.log" 2>&1
    expect_eq "package state" "$(on_host dpkg-query -W -f '${db:Status-Status}' containerctl)" config-files
    expect "containerctld stopped" test "$(on_host systemctl is-active containerctld.service)" != active
    expect "containerctl@hello stopped" test "$(on_host systemctl is-active containerctl@hello.service)" != active
    expect "container removed" test -z "$(on_host docker ps -aq --filter 'name=^containerctl-hello$')"
    expect "binaries gone" on_host test ! -e /usr/sbin/containerctld -a ! -e /usr/libexec/containerctl/containerctl-runner
    expect "unit file kept" on_host test -f /etc/containerctl/units/hello.toml
    expect "conffile kept" on_host grep -q 'revisions_per_unit = 50' /etc/containerctl/containerctl.toml
    expect "database kept" on_host test -s /var/lib/containerctl/containerctl.db
    expect "group kept" quiet on_host getent group containerctl
    expect "containerctl-registry stopped" test "$(on_host systemctl is-active containerctl-registry.service)" != active
    expect "/etc/containerctl/cluster kept" on_host test -f /etc/containerctl/cluster/registry.yml
    expect "/etc/docker/certs.d kept" on_host test -d /etc/docker/certs.d
}

t_reinstall_restarts_what_ran() {
    [[ -n $DEB_NEW ]] || { echo "needs the upgrade" >&2; return 1; }
    apt_install "$DEB_NEW" reinstall
    expect_eq "containerctld active" "$(on_host systemctl is-active containerctld.service)" active
    wait_for 60 "containerctl@hello active again" _active containerctl@hello.service
    expect_eq "history after remove and install" "$(on_host containerctl history hello --json)" "$HISTORY"
    expect "marker file gone" on_host test ! -e /var/lib/containerctl/started-before-remove
    if [[ -n $RPID ]]; then
        wait_for 30 "containerctl-registry active again" _active containerctl-registry.service
    fi
}

t_purge_deletes_state_keeps_admin_units() {
    [[ -n $DEB_NEW ]] || { echo "needs the upgrade" >&2; return 1; }
    on_host env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q containerctl >"$OUT/apt-purge.log" 2>&1
    local state
    state=$(on_host dpkg-query -W -f '${db:Status-Status}' containerctl 2>/dev/null || true)
    expect "package purged (state '$state')" test -z "${state#not-installed}"
    expect "container removed" test -z "$(on_host docker ps -aq --filter 'name=^containerctl-hello$')"
    expect "/var/lib/containerctl deleted" on_host test ! -e /var/lib/containerctl
    expect "/run/containerctl deleted" on_host test ! -e /run/containerctl
    expect "conffile deleted" on_host test ! -e /etc/containerctl/containerctl.toml
    expect "the admin's unit file kept" on_host test -f /etc/containerctl/units/hello.toml
    expect "/etc/containerctl/cluster deleted with the state" on_host test ! -e /etc/containerctl/cluster
    expect "/etc/docker/certs.d (Docker's) kept" on_host test -d /etc/docker/certs.d
    # The test's own drop-in for the stand-in registry is the admin's, so purge keeps it.
    on_host rm -rf /etc/systemd/system/containerctl-registry.service.d
    on_host systemctl daemon-reload
    expect "no containerctl unit left loaded" test -z "$(on_host systemctl list-units --all --plain --no-legend 'containerctl*' | grep -v not-found || true)"
}

# A purge on a host that is still in a cluster keeps the cluster's state and says how to leave.
t_purge_keeps_a_cluster_members_state() {
    [[ -n $DEB_NEW ]] || { echo "needs the upgrade" >&2; return 1; }
    apt_install "$DEB_NEW" install-member
    # What `cluster join` leaves: the membership and a file of the daemon's in the config dir.
    on_host sh -ec 'install -d -m 0700 /var/lib/containerctl/cluster
        echo "{}" > /var/lib/containerctl/cluster/state.json
        echo "# stand-in written by tests/package/run.sh" > /etc/containerctl/cluster/registry.yml'
    on_host env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q containerctl >"$OUT/apt-purge-member.log" 2>&1
    local state
    state=$(pkg_status containerctl)
    expect "package purged (state '$state')" test -z "${state#not-installed}"
    expect "the cluster's state kept" on_host test -f /var/lib/containerctl/cluster/state.json
    expect "/etc/containerctl/cluster kept with it" on_host test -f /etc/containerctl/cluster/registry.yml
    expect "remove and purge say how to leave the cluster" grep -q 'containerctl cluster leave' "$OUT/apt-purge-member.log"
    expect "purge says why it kept the state" grep -q 'not deleting /var/lib/containerctl: this host is still a member' \
        "$OUT/apt-purge-member.log"
    on_host rm -rf /var/lib/containerctl /etc/containerctl
    on_host systemctl daemon-reload
}

# Issue 12, item 9: Debian's docker-registry starts a registry on :5000, containerctld's port.
# Installed with containerctl in one apt install, or after it, it is masked and containerctld
# runs and serves :5000; when :5000 is taken anyway, containerctld names the holder.
_port_5000_owner() { on_host ss -Hltnp 'sport = :5000' | grep -o 'users:(("[^"]*"' | head -n 1 | cut -d'"' -f2; }
t_docker_registry_in_the_same_install() {
    [[ -n $DEB_NEW ]] || { echo "needs the upgrade" >&2; return 1; }
    docker cp "$DEB_NEW" "$C:/root/"
    on_host env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/root/$(basename "$DEB_NEW")" docker-registry \
        >"$OUT/apt-with-registry.log" 2>&1 || {
        tail -n 30 "$OUT/apt-with-registry.log" >&2
        return 1
    }
    expect_eq "docker-registry installed" "$(pkg_status docker-registry)" installed
    expect_eq "containerctld active" "$(on_host systemctl is-active containerctld.service)" active
    expect_eq "docker-registry.service masked" "$(on_host systemctl is-enabled docker-registry.service || true)" masked
    expect "docker-registry.service not running" test "$(on_host systemctl is-active docker-registry.service)" != active
    expect_eq ":5000 served by" "$(_port_5000_owner)" containerctld
    wait_for 20 "the web page on 127.0.0.1:5000" on_host curl -fsS -o /dev/null http://127.0.0.1:5000/
    expect "the postinst said why" grep -q "masked Debian's docker-registry.service" "$OUT/apt-with-registry.log"
    # A reboot keeps it so (no race for the port).
    on_host systemctl daemon-reload

    # The error path: the registry holds :5000 before containerctld starts.
    on_host systemctl stop containerctld.service
    on_host systemctl unmask docker-registry.service >/dev/null 2>&1
    on_host systemctl start docker-registry.service
    wait_for 20 "docker-registry on :5000" sh -c "[ \"\$(docker exec $C ss -Hltn 'sport = :5000' | wc -l)\" -gt 0 ]"
    local rpid
    rpid=$(unit_prop docker-registry.service MainPID)
    on_host systemctl start containerctld.service 2>/dev/null || true
    wait_for 30 "containerctld to name the holder and what to do" _journal_has containerctld.service \
        "127.0.0.1:5000 is in use by docker-registry (pid $rpid, docker-registry.service): .*systemctl disable --now docker-registry.service"
    expect "containerctld not active" test "$(on_host systemctl is-active containerctld.service)" != active
    on_host journalctl --no-pager -o cat -u containerctld.service | grep 'is in use by' | tail -n 1 >&2 || true

    # Removing containerctl takes its mask away; purging cleans up for the next steps.
    on_host systemctl disable --now docker-registry.service >/dev/null 2>&1
    on_host systemctl mask docker-registry.service >/dev/null 2>&1
    on_host systemctl reset-failed containerctld.service
    on_host env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q containerctl >"$OUT/apt-remove-2.log" 2>&1
    expect "the mask is gone with containerctl" test "$(on_host systemctl is-enabled docker-registry.service || true)" != masked
    on_host env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q containerctl docker-registry >"$OUT/apt-purge-2.log" 2>&1
}

# docker-registry installed after containerctl: the dpkg trigger masks it and containerctld runs.
t_docker_registry_installed_later() {
    [[ -n $DEB_NEW ]] || { echo "needs the upgrade" >&2; return 1; }
    # From a host with neither (whatever the step before left).
    on_host env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q containerctl docker-registry >/dev/null 2>&1 || true
    on_host systemctl unmask docker-registry.service >/dev/null 2>&1 || true
    on_host rm -rf /var/lib/containerctl /etc/containerctl
    on_host systemctl daemon-reload
    apt_install "$DEB_NEW" before-registry
    on_host env DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-registry >"$OUT/apt-registry-later.log" 2>&1 || {
        tail -n 30 "$OUT/apt-registry-later.log" >&2
        return 1
    }
    expect_eq "docker-registry.service masked" "$(on_host systemctl is-enabled docker-registry.service || true)" masked
    wait_for 30 "containerctld active" _active containerctld.service
    expect_eq ":5000 served by" "$(_port_5000_owner)" containerctld
    on_host env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q containerctl docker-registry >"$OUT/apt-purge-3.log" 2>&1
    on_host systemctl unmask docker-registry.service >/dev/null 2>&1 || true
    on_host rm -rf /var/lib/containerctl /etc/containerctl
    on_host systemctl daemon-reload
}

# --- runner ---
tb_ensure_deps
trap tb_cleanup EXIT

steps=(t_versions_agree t_deb_builds t_lintian_clean t_rpm_builds t_rpmlint_clean
    t_deb_and_rpm_hold_the_same_files t_unit_exposure_offline t_host_boots t_install_with_apt
    t_web_page_answers t_installed_unit_exposure t_example_unit_runs_and_logs t_man_pages_and_completion
    t_registry_runs_once_configured
    t_upgrade_keeps_units_history_and_containers t_remove_stops_units_keeps_config_and_state
    t_reinstall_restarts_what_ran t_purge_deletes_state_keeps_admin_units t_purge_keeps_a_cluster_members_state
    t_docker_registry_in_the_same_install t_docker_registry_installed_later)
if (($# > 0)); then steps=("$@"); fi

passed=0 failed=0 skipped=0 failures=()
for t in "${steps[@]}"; do
    start=$SECONDS
    # Not in a subshell: later steps use what earlier ones found (package paths, container ID).
    # `set -e` does not apply inside a function called from `if`, hence the explicit status.
    set +e
    (set -eo pipefail; "$t"; declare -p DEB DEB_NEW RPM CID DPID HISTORY RPID >"$OUT/.state") 2>&1
    rc=$?
    set -e
    if ((rc == 0)); then
        # shellcheck disable=SC1091
        source "$OUT/.state"
    fi
    if ((rc == 0)); then
        echo "ok      $t ($((SECONDS - start))s)"
        passed=$((passed + 1))
    elif ((rc == 77)); then
        echo "skipped $t ($((SECONDS - start))s)"
        skipped=$((skipped + 1))
    else
        echo "FAILED  $t ($((SECONDS - start))s)"
        failed=$((failed + 1))
        failures+=("$t")
    fi
done
rm -f "$OUT/.state"
if ((failed > 0)); then
    echo "failed steps: ${failures[*]}"
    if docker container inspect "$C" >/dev/null 2>&1; then
        echo "--- journal of $C (last 60 lines) ---"
        on_host journalctl --no-pager -n 60 || true
    fi
fi
echo "packages in $OUT; took $((SECONDS - t0))s"
echo "package: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
