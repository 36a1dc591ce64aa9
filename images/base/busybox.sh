#!/usr/bin/env bash
# Build abaco/busybox:local without a registry: a root filesystem holding Debian's static
# /bin/busybox (package busybox-static) with a symlink for every applet, /tmp, and /etc/passwd and
# /etc/group with root and nobody, imported with `docker import`. Takes under a second.
#
#   images/base/busybox.sh [--force]     (skips when the image exists, unless --force)
#   IMAGE=abaco/busybox:local            (override the name)
set -euo pipefail
# shellcheck source=../../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

IMAGE="${IMAGE:-abaco/busybox:local}"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

make_rootfs() {
    local root="$1" applet
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,var,proc,sys,dev}
    chmod 1777 "$root/tmp"
    chmod 0700 "$root/root"
    install -m 0755 /bin/busybox "$root/bin/busybox"
    # --list-full prints each applet with its usual folder (bin/sh, usr/bin/env, sbin/ifconfig...).
    while read -r applet; do
        # linuxrc is for initramfs boots, not containers
        [[ -n "$applet" && "$applet" != "bin/busybox" && "$applet" != "linuxrc" ]] || continue
        [[ -e "$root/$applet" ]] || ln -s /bin/busybox "$root/$applet"
    done < <(/bin/busybox --list-full)
    cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
    cat >"$root/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
}

main() {
    if image_exists "$IMAGE" && ((!FORCE)); then
        log "$IMAGE exists (use --force to rebuild)"
        return 0
    fi
    ensure_packages busybox-static
    require_docker
    # shellcheck disable=SC2034 # t0 is read through timer_elapsed
    local t0 tmp
    timer_start t0
    log "building $IMAGE (busybox-static rootfs + docker import, ~1 s)..."
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    make_rootfs "$tmp/rootfs"
    info "$(find "$tmp/rootfs" -type l | wc -l) applet links"
    tar --numeric-owner --owner=0 --group=0 -C "$tmp/rootfs" -cf - . |
        "$DOCKER" import \
            --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["sh"]' \
            - "$IMAGE" >/dev/null
    "$DOCKER" run --rm --network none "$IMAGE" sh -c 'test -x /bin/sh && /usr/bin/env true' ||
        die "$IMAGE does not run"
    log "built $IMAGE in $(timer_elapsed t0) s ($("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}'))"
}

main
