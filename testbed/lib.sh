# shellcheck shell=bash
# Testbed library for containerctl system tests: a local Docker engine, cached test images and
# "hosts" (containers running systemd as PID 1 with their own dockerd). Source it from a test
# script; it works under `set -euo pipefail` and changes no shell options itself.
# Why caps instead of --privileged, host cgroupns etc.: see TESTBED.md.

TB_LABEL=io.containerctl.testbed
# Hosts and volumes carry $TB_LABEL=$TB_RUN; tb_cleanup removes only those of this TB_RUN, so a
# long-lived demo host (TB_RUN=demo) survives a test run.
TB_RUN=${TB_RUN:-1}
# Extra `docker run` arguments for host containers (for example "-p 127.0.0.1:5000:5000").
TB_HOST_ARGS=${TB_HOST_ARGS:-}
TB_NETWORK=${TB_NETWORK:-containerctl-testbed}
TB_SUBNET=${TB_SUBNET:-172.29.77.0/24}
TB_PREFIX=${TB_PREFIX:-ctl-tb-}
TB_DOCKERD_LOG=${TB_DOCKERD_LOG:-/var/log/containerctl-testbed-dockerd.log}
TB_LOCK=${TB_LOCK:-/var/lock/containerctl-testbed.lock}
TB_BOOT_TIMEOUT=${TB_BOOT_TIMEOUT:-180}

TB_DEPS=(docker.io debootstrap busybox-static iptables iproute2 ca-certificates make go-md2man)

TB_HOST_SUITE=bookworm
TB_HOST_INCLUDE=systemd,systemd-sysv,dbus
# glusterfs-* and docker-registry: the engines of federation (shared volume, cluster registry).
# apache2-utils: htpasswd -B, the bcrypt password file of the private registry tests.
TB_HOST_PACKAGES=(docker.io iptables iproute2 ca-certificates procps curl
    glusterfs-server glusterfs-client docker-registry apache2-utils)
# Extra Debian packages for the host image (space separated); part of the recipe hash.
TB_HOST_EXTRA_PACKAGES=${TB_HOST_EXTRA_PACKAGES:-}
# Units that make no sense in a container.
TB_HOST_MASK=(getty@tty1.service console-getty.service serial-getty@.service getty.target
    systemd-remount-fs.service apt-daily.timer apt-daily-upgrade.timer)

TB_BUSYBOX_DOCKERFILE='FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /etc /root /tmp /var/tmp && chmod 1777 /tmp /var/tmp && echo root:x:0:0:root:/root:/bin/sh >/etc/passwd && echo root:x:0: >/etc/group"]
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["sh"]
'

tb_log() {
    printf '[testbed %(%H:%M:%S)T] %s\n' -1 "$*" >&2
}

tb_die() {
    printf '[testbed] ERROR: %s\n' "$*" >&2
    return 1
}

# tb_wait_for SECONDS DESCRIPTION CMD...: poll CMD (output discarded, stdin /dev/null) until it
# succeeds; on timeout report DESCRIPTION and CMD's last output, return 1.
tb_wait_for() {
    local secs=$1 desc=$2 out deadline
    shift 2
    deadline=$((SECONDS + secs))
    while :; do
        if out=$("$@" </dev/null 2>&1); then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            echo "timeout after ${secs}s waiting for $desc" >&2
            if [[ -n $out ]]; then
                printf '  last output of %s: %s\n' "$*" "$out" >&2
            fi
            return 1
        fi
        sleep 0.5
    done
}

_tb_pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

tb_ensure_deps() {
    local missing=() p
    for p in "${TB_DEPS[@]}"; do
        _tb_pkg_installed "$p" || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    tb_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -q
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
}

_tb_docker_up() {
    docker info >/dev/null 2>&1
}

tb_ensure_dockerd() {
    _tb_docker_up && return 0
    local pid=
    if [[ -s /var/run/docker.pid ]]; then
        pid=$(</var/run/docker.pid)
    fi
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        tb_log "dockerd (pid $pid) is starting; waiting for it"
    else
        command -v dockerd >/dev/null || tb_die "dockerd not installed (run tb_ensure_deps)" || return 1
        tb_log "starting dockerd (log: $TB_DOCKERD_LOG)"
        setsid nohup dockerd >>"$TB_DOCKERD_LOG" 2>&1 </dev/null &
    fi
    if ! tb_wait_for 60 "dockerd to answer on /var/run/docker.sock" docker info; then
        tail -n 20 "$TB_DOCKERD_LOG" >&2 || true
        return 1
    fi
}

_tb_hash() {
    sha256sum | cut -c1-12
}

_tb_image_exists() {
    docker image inspect "$1" >/dev/null 2>&1
}

# The first URI of an enabled "deb" source for SUITE, from one-line or deb822 apt sources.
_tb_debian_mirror() {
    local suite=$1 f uri
    if [[ -n ${TB_DEBIAN_MIRROR:-} ]]; then
        echo "$TB_DEBIAN_MIRROR"
        return 0
    fi
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        uri=$(awk -v suite="$suite" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite && $i ~ /^https?:/) { print $i; exit }
            }' "$f")
        [[ -n $uri ]] && { echo "$uri"; return 0; }
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        uri=$(awk -v suite="$suite" '
            BEGIN { RS = ""; FS = "\n" }
            {
                types = ""; uris = ""; suites = ""; enabled = "yes"
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^#/ || !match($i, /^[A-Za-z-]+:/)) continue
                    key = tolower(substr($i, 1, RLENGTH - 1)); val = substr($i, RLENGTH + 1)
                    if (key == "types") types = val
                    else if (key == "uris") uris = val
                    else if (key == "suites") suites = val
                    else if (key == "enabled") enabled = tolower(val)
                }
                if (enabled ~ /no/ || (" " types " ") !~ /[ \t]deb[ \t]/) next
                n = split(suites, s, /[ \t]+/)
                for (j = 1; j <= n; j++) if (s[j] == suite) {
                    m = split(uris, u, /[ \t]+/)
                    for (k = 1; k <= m; k++) if (u[k] ~ /^https?:/) { print u[k]; exit }
                }
            }' "$f")
        [[ -n $uri ]] && { echo "$uri"; return 0; }
    done
    echo http://deb.debian.org/debian
}

_tb_build_busybox() {
    local ref=$1 hash=$2 ctx bin out
    bin=$(dpkg -L busybox-static | grep -m1 '/bin/busybox$') || tb_die "busybox-static not installed" || return 1
    ctx=$(mktemp -d /var/tmp/containerctl-testbed-busybox.XXXXXX)
    cp "$bin" "$ctx/busybox"
    printf '%s' "$TB_BUSYBOX_DOCKERFILE" >"$ctx/Dockerfile"
    tb_log "building $ref"
    if ! out=$(DOCKER_BUILDKIT=0 docker build --label "$TB_LABEL.recipe=$hash" -t "$ref" "$ctx" 2>&1); then
        rm -rf "$ctx"
        printf '%s\n' "$out" >&2
        tb_die "docker build of $ref failed"
        return 1
    fi
    rm -rf "$ctx"
}

# Unmount anything under DIR, then remove it (refuses while anything is still mounted there).
_tb_rootfs_discard() {
    local dir=$1 m
    [[ -d $dir ]] || return 0
    while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done < <(findmnt -rn -o TARGET | grep "^$dir/" | sort -r)
    if findmnt -rn -o TARGET | grep -q "^$dir/"; then
        tb_die "not removing $dir: something is still mounted under it"
        return 1
    fi
    rm -rf --one-file-system "$dir"
}

# Runs in a subshell (own EXIT trap). Builds the systemd host rootfs in DIR and imports it as REF.
_tb_build_host_rootfs() (
    set -euo pipefail
    local ref=$1 hash=$2 dir mirror t0 f key
    local packages=("${TB_HOST_PACKAGES[@]}")
    read -ra extra <<<"$TB_HOST_EXTRA_PACKAGES"
    packages+=("${extra[@]}")
    dir=$(mktemp -d /var/tmp/containerctl-testbed-rootfs.XXXXXX)
    # shellcheck disable=SC2064
    trap "_tb_rootfs_discard '$dir'" EXIT
    mirror=$(_tb_debian_mirror "$TB_HOST_SUITE")

    tb_log "host image 1/4: debootstrap $TB_HOST_SUITE from $mirror into $dir"
    t0=$SECONDS
    debootstrap --variant=minbase --include="$TB_HOST_INCLUDE" "$TB_HOST_SUITE" "$dir" "$mirror" \
        >"$dir.debootstrap.log" 2>&1 || {
        tail -n 30 "$dir.debootstrap.log" >&2
        tb_die "debootstrap failed (log: $dir.debootstrap.log)"
        exit 1
    }
    rm -f "$dir.debootstrap.log"
    tb_log "host image 1/4: debootstrap done in $((SECONDS - t0))s"

    tb_log "host image 2/4: installing ${packages[*]} in a chroot"
    t0=$SECONDS
    [[ -f /etc/apt/sources.list ]] && cp /etc/apt/sources.list "$dir/etc/apt/sources.list"
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] && cp "$f" "$dir/etc/apt/sources.list.d/"
    done
    # Keyrings named by signed-by that the fresh rootfs does not have yet.
    while read -r key; do
        if [[ -f $key && ! -e $dir$key ]]; then
            mkdir -p "$dir$(dirname "$key")"
            cp "$key" "$dir$key"
        fi
    done < <(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oiE '(signed-by=|signed-by:[[:space:]]*)/[^] [:space:]]+' | sed -E 's/^[^/]*//' | sort -u)
    cp -L /etc/resolv.conf "$dir/etc/resolv.conf"
    printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
    chmod 755 "$dir/usr/sbin/policy-rc.d"
    mount -t proc proc "$dir/proc"
    local chroot_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8)
    chroot "$dir" "${chroot_env[@]}" apt-get update -q >"$dir.apt.log" 2>&1 ||
        tb_log "warning: apt-get update in the chroot reported errors (continuing)"
    chroot "$dir" "${chroot_env[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}" \
        >>"$dir.apt.log" 2>&1 || {
        tail -n 30 "$dir.apt.log" >&2
        tb_die "package installation in the chroot failed (log: $dir.apt.log)"
        exit 1
    }
    rm -f "$dir.apt.log"
    tb_log "host image 2/4: packages installed in $((SECONDS - t0))s"

    tb_log "host image 3/4: configuring units and cleaning up"
    chroot "$dir" "${chroot_env[@]}" systemctl enable containerd.service docker.service glusterd.service \
        >/dev/null 2>&1
    # Debian enables its registry on :5000, the port of containerctld's web page; containerctl runs
    # the registry under a unit of its own, with its own config.
    chroot "$dir" "${chroot_env[@]}" systemctl disable docker-registry.service >/dev/null 2>&1
    chroot "$dir" "${chroot_env[@]}" systemctl mask "${TB_HOST_MASK[@]}" >/dev/null 2>&1
    chroot "$dir" "${chroot_env[@]}" apt-get clean
    umount "$dir/proc"
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir/usr/sbin/policy-rc.d"
    : >"$dir/etc/resolv.conf"
    : >"$dir/etc/machine-id"
    rm -f "$dir/var/lib/dbus/machine-id"

    tb_log "host image 4/4: importing as $ref"
    t0=$SECONDS
    tar --numeric-owner -C "$dir" -c . |
        docker import -c 'CMD ["/lib/systemd/systemd"]' -c 'ENV container=docker' \
            -c "LABEL $TB_LABEL.recipe=$hash" - "$ref" >/dev/null
    tb_log "host image 4/4: imported in $((SECONDS - t0))s"
)

# tb_build_images: build (or reuse) the busybox test image and the systemd host image; exports
# TB_BUSYBOX_IMAGE and TB_HOST_IMAGE. The busybox image is also tagged ctl-test/busybox:1.
tb_build_images() {
    tb_ensure_dockerd || return 1
    local bb_hash host_hash bb_version t0
    bb_version=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null) ||
        tb_die "busybox-static not installed (run tb_ensure_deps)" || return 1
    bb_hash=$(printf '%s\nbusybox-static=%s\n' "$TB_BUSYBOX_DOCKERFILE" "$bb_version" | _tb_hash)
    host_hash=$({
        printf 'suite=%s include=%s packages=%s extra=%s mask=%s\n' "$TB_HOST_SUITE" \
            "$TB_HOST_INCLUDE" "${TB_HOST_PACKAGES[*]}" "$TB_HOST_EXTRA_PACKAGES" "${TB_HOST_MASK[*]}"
        declare -f _tb_build_host_rootfs
    } | _tb_hash)
    export TB_BUSYBOX_IMAGE="containerctl-testbed/busybox:$bb_hash"
    export TB_HOST_IMAGE="containerctl-testbed/host:$host_hash"

    # One builder at a time per machine; the loser of the race finds the image built.
    (
        exec 9>"$TB_LOCK"
        flock 9
        if _tb_image_exists "$TB_BUSYBOX_IMAGE"; then
            tb_log "reusing $TB_BUSYBOX_IMAGE"
        else
            t0=$SECONDS
            _tb_build_busybox "$TB_BUSYBOX_IMAGE" "$bb_hash" || exit 1
            tb_log "built $TB_BUSYBOX_IMAGE in $((SECONDS - t0))s"
        fi
        docker tag "$TB_BUSYBOX_IMAGE" ctl-test/busybox:1
        # TB_ONLY_BUSYBOX=1: a machine with systemd of its own needs no host image.
        if [[ ${TB_ONLY_BUSYBOX:-} == 1 ]]; then
            exit 0
        elif _tb_image_exists "$TB_HOST_IMAGE"; then
            tb_log "reusing $TB_HOST_IMAGE"
        else
            t0=$SECONDS
            tb_log "building $TB_HOST_IMAGE (takes a few minutes)"
            _tb_build_host_rootfs "$TB_HOST_IMAGE" "$host_hash" || exit 1
            tb_log "built $TB_HOST_IMAGE in $((SECONDS - t0))s"
        fi
    )
}

# The shared network is made, joined and removed under one lock ($TB_LOCK.net), so that a run
# that ends (tb_cleanup removes the network once nothing is attached to it) cannot remove it
# between another run's check that it exists and that run's first host joining it.
_tb_network_ensure_locked() {
    docker network inspect "$TB_NETWORK" >/dev/null 2>&1 && return 0
    tb_log "creating network $TB_NETWORK ($TB_SUBNET)"
    docker network create --driver bridge --subnet "$TB_SUBNET" --label "$TB_LABEL=1" \
        "$TB_NETWORK" >/dev/null
}
tb_network_ensure() {
    (
        exec 9>"$TB_LOCK.net"
        flock 9
        _tb_network_ensure_locked
    )
}

_tb_host_state() {
    local state
    state=$(docker exec "$TB_PREFIX$1" systemctl is-system-running 2>/dev/null) || true
    [[ $state == running || $state == degraded ]]
}

# Wait for systemd to finish booting in host NAME and for its inner dockerd to answer.
_tb_host_wait() {
    local name=$1 c=$TB_PREFIX$1 t0=$SECONDS state
    tb_wait_for "$TB_BOOT_TIMEOUT" "systemd in $c to finish booting" _tb_host_state "$name" || {
        docker exec "$c" systemctl list-jobs --no-pager >&2 || true
        return 1
    }
    state=$(docker exec "$c" systemctl is-system-running 2>/dev/null) || true
    tb_log "$c: systemd $state after $((SECONDS - t0))s"
    if [[ $state == degraded ]]; then
        docker exec "$c" systemctl --failed --no-pager >&2 || true
    fi
    tb_wait_for 60 "the docker engine in $c" docker exec "$c" docker info || {
        docker exec "$c" journalctl -u docker.service -u containerd.service --no-pager -n 30 >&2 || true
        return 1
    }
    tb_log "$c: docker answers after $((SECONDS - t0))s"
}

# tb_host_start NAME [IP]
tb_host_start() {
    local name=${1:?usage: tb_host_start NAME [IP]} ip=${2:-} c vol
    c=$TB_PREFIX$name
    vol=$c-docker
    [[ -n ${TB_HOST_IMAGE:-} && -n ${TB_BUSYBOX_IMAGE:-} ]] || tb_build_images || return 1
    if docker container inspect "$c" >/dev/null 2>&1; then
        tb_log "removing stale $c"
        docker rm -f -v "$c" >/dev/null
    fi
    docker volume rm "$vol" >/dev/null 2>&1 || true
    docker volume create --label "$TB_LABEL=$TB_RUN" "$vol" >/dev/null

    # shellcheck disable=SC2054  # commas are tmpfs mount options
    local args=(
        --detach --name "$c" --hostname "$name" --label "$TB_LABEL=$TB_RUN"
        --network "$TB_NETWORK" --network-alias "$name"
        --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE --cap-add MKNOD --cap-add NET_RAW --cap-add DAC_READ_SEARCH
        --security-opt seccomp=unconfined --security-opt apparmor=unconfined
        --tmpfs /run:rw,nosuid,nodev,exec,mode=755 --tmpfs /run/lock:rw,nosuid,nodev,noexec
        --env container=docker
        --cgroupns=host --volume /sys/fs/cgroup:/sys/fs/cgroup:rw
        --volume "$vol:/var/lib/docker"
        --stop-signal SIGRTMIN+3 --stop-timeout 30
    )
    [[ -n $ip ]] && args+=(--ip "$ip")
    local extra=()
    read -ra extra <<<"$TB_HOST_ARGS"
    args+=("${extra[@]}")
    [[ -e /dev/fuse ]] && args+=(--device /dev/fuse)
    tb_log "starting host $c${ip:+ ($ip)}"
    (
        exec 9>"$TB_LOCK.net"
        flock 9
        _tb_network_ensure_locked && docker run --pull never "${args[@]}" "$TB_HOST_IMAGE" /lib/systemd/systemd >/dev/null
    ) || return 1
    _tb_host_wait "$name" || return 1
    if ! docker exec "$c" docker image inspect ctl-test/busybox:1 >/dev/null 2>&1; then
        docker save "$TB_BUSYBOX_IMAGE" ctl-test/busybox:1 | docker exec -i "$c" docker load -q >/dev/null ||
            tb_die "loading ctl-test/busybox:1 into $c failed" || return 1
    fi
}

# tb_host_install NAME STAGEDIR: copy a `make install DESTDIR=STAGEDIR` tree into host NAME as
# root-owned files; directories and directory symlinks already in the host (/lib -> usr/lib) stay.
tb_host_install() {
    local name=${1:?usage: tb_host_install NAME STAGEDIR} stage=${2:?usage: tb_host_install NAME STAGEDIR}
    [[ -d $stage ]] || tb_die "$stage is not a directory" || return 1
    tar -C "$stage" --numeric-owner --owner=0 --group=0 -cf - . |
        docker exec -i "$TB_PREFIX$name" tar -C / --no-overwrite-dir --keep-directory-symlink -xpf - ||
        return 1
    docker exec "$TB_PREFIX$name" systemctl daemon-reload
}

# tb_host NAME CMD...: run CMD in host NAME; stdin is passed through when it is not a terminal.
tb_host() {
    local name=${1:?usage: tb_host NAME CMD...}
    shift
    if [[ -t 0 ]]; then
        if [[ -t 1 ]]; then
            docker exec -it "$TB_PREFIX$name" "$@"
        else
            docker exec "$TB_PREFIX$name" "$@"
        fi
    else
        docker exec -i "$TB_PREFIX$name" "$@"
    fi
}

# TB_STOP_TIMEOUT (default 30): seconds the host's systemd has to shut down before the host is
# killed (a real machine's shutdown waits for its units; 30 s cuts a long one short). The log says
# how long the shutdown took and whether it finished (exit status 0) or was killed (137).
tb_host_reboot() {
    local name=${1:?usage: tb_host_reboot NAME} c=$TB_PREFIX${1:-} t0
    tb_log "rebooting $c"
    t0=$(date +%s%3N)
    docker stop -t "${TB_STOP_TIMEOUT:-30}" "$c" >/dev/null || return 1
    tb_log "$c shut down in $(($(date +%s%3N) - t0)) ms, exit status $(docker inspect -f '{{.State.ExitCode}}' "$c")"
    docker start "$c" >/dev/null || return 1
    _tb_host_wait "$name"
}

# tb_cleanup: remove every container, volume and network labelled io.containerctl.testbed=1.
# Never fails, so it is safe in an EXIT trap.
tb_cleanup() {
    _tb_docker_up || return 0
    local ids
    ids=$(docker ps -aq --filter "label=$TB_LABEL=$TB_RUN" 2>/dev/null) || true
    # shellcheck disable=SC2086
    [[ -n $ids ]] && { docker rm -f -v $ids >/dev/null 2>&1 || true; }
    ids=$(docker volume ls -q --filter "label=$TB_LABEL=$TB_RUN" 2>/dev/null) || true
    # shellcheck disable=SC2086
    [[ -n $ids ]] && { docker volume rm -f $ids >/dev/null 2>&1 || true; }
    # Networks nothing is attached to any more (docker refuses to remove one in use).
    (
        exec 9>"$TB_LOCK.net"
        flock -w 60 9 || exit 0
        ids=$(docker network ls -q --filter "label=$TB_LABEL=1" 2>/dev/null) || true
        # shellcheck disable=SC2086
        [[ -n $ids ]] && { docker network rm $ids >/dev/null 2>&1 || true; }
    )
    return 0
}

# A test host with the project installed and containerctld running, in two steps so that a caller
# can configure the host in between (containerctl.toml, users):
#   tb_host_with_project NAME [IP]   boot, `make install`, then tb_project_postinst
#   tb_daemon_start NAME             enable --now containerctld, wait until its socket answers
# The deb and rpm do the post-install part themselves (tests/package/run.sh checks that).
TB_DAEMON_TIMEOUT=${TB_DAEMON_TIMEOUT:-30}

# _tb_on NAME CMD...: run CMD in host NAME, or on this machine when NAME is "."; stdin /dev/null.
_tb_on() {
    local name=$1
    shift
    if [[ $name == . ]]; then
        "$@" </dev/null
    else
        docker exec "$TB_PREFIX$name" "$@" </dev/null
    fi
}

# tb_host_with_project NAME [IP]: start host NAME (at IP), install this checkout into it the way
# users do, through `make install DESTDIR=... PREFIX=/usr` (release binaries must be built), and
# run tb_project_postinst there. containerctld is not started: see tb_daemon_start.
tb_host_with_project() {
    local name=${1:?usage: tb_host_with_project NAME [IP]} ip=${2:-} stage
    stage=$(mktemp -d)
    make -s install DESTDIR="$stage" PREFIX=/usr >/dev/null || { rm -rf "$stage"; return 1; }
    tb_host_start "$name" "$ip" || { rm -rf "$stage"; return 1; }
    tb_host_install "$name" "$stage"
    local rc=$?
    rm -rf "$stage"
    ((rc == 0)) || return "$rc"
    tb_project_postinst "$name"
}

# tb_project_postinst NAME: what the packages do once the files are in place (docs/packaging.md):
# the group (sysusers.d), the directories (tmpfiles.d), systemd reloaded. NAME is a test host, or
# "." for this machine (a PREFIX=/usr install).
tb_project_postinst() {
    local name=${1:?usage: tb_project_postinst NAME|.}
    if ! { _tb_on "$name" systemd-sysusers /usr/lib/sysusers.d/containerctl.conf &&
        _tb_on "$name" systemd-tmpfiles --create /usr/lib/tmpfiles.d/containerctl.conf &&
        _tb_on "$name" systemctl daemon-reload; }; then
        tb_die "post-install (sysusers, tmpfiles, daemon-reload) failed on $name"
    fi
}

_tb_daemon_answers() {
    _tb_on "$1" containerctl list >/dev/null
}

# tb_daemon_start NAME: enable and start containerctld in host NAME (or "." for this machine), then
# wait up to TB_DAEMON_TIMEOUT seconds until the CLI gets an answer through the daemon's socket.
tb_daemon_start() {
    local name=${1:?usage: tb_daemon_start NAME|.}
    if _tb_on "$name" systemctl enable --now containerctld.service &&
        tb_wait_for "$TB_DAEMON_TIMEOUT" "containerctld on $name to answer on its socket" \
            _tb_daemon_answers "$name"; then
        return 0
    fi
    _tb_on "$name" journalctl --no-pager -n 30 -u containerctld.service >&2 || true
    tb_die "containerctld did not come up on $name"
}
