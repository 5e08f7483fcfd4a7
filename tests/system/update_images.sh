# shellcheck shell=bash
# The images of the update tests, shared by tests/system/scenarios_update.sh (one host, a local
# registry), tests/system/cluster_update.sh (the cluster registry) and the update benchmarks: tags
# of one image built from ctl-test/busybox:1 whose /version holds the version. A broken one also
# has /broken, which UPD_HEALTH's check refuses: it starts, but never becomes healthy.

# The [health] table of the units that run these images (used by the files that source this).
# shellcheck disable=SC2034
UPD_HEALTH='[health]
cmd = ["sh", "-c", "test ! -e /broken"]
interval = "1s"
timeout = "1s"
retries = 2'

# upd_image_build HOST REF VERSION [broken]: builds REF in HOST's dockerd.
upd_image_build() {
    local broken=
    [[ ${4:-} == broken ]] && broken='&& touch /broken'
    tb_host "$1" sh -ec "
        ctx=\$(mktemp -d)
        printf 'FROM ctl-test/busybox:1\nRUN echo $3 > /version %s\n' '$broken' > \$ctx/Dockerfile
        DOCKER_BUILDKIT=0 docker build -q -t $2 \$ctx >/dev/null
        rm -rf \$ctx
    " </dev/null
}
