#!/usr/bin/env bash
# Build abaco/python-base:local without a registry: Debian minbase with python3 and pip made
# by debootstrap, stripped of apt caches, docs and translations, then `tar | docker import`. About 40 s
# cold; the downloaded .debs are kept in .build/cache/debootstrap so a --force rebuild skips the download.
#
#   images/base/python.sh [--force]      (skips when the image exists, unless --force)
#   IMAGE=abaco/python-base:local  SUITE=bookworm  MIRROR=<url>   (overrides)
#
# The mirror is the one apt uses on this machine (so the download goes through the same package
# registry), unless MIRROR is set.
set -euo pipefail
# shellcheck source=../../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

IMAGE="${IMAGE:-abaco/python-base:local}"
SUITE="${SUITE:-bookworm}"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

ROOTFS="$ABACO_BUILD/rootfs/python-base"
CACHE="$ABACO_BUILD/cache/debootstrap"
BUILD_LOG="$ABACO_LOGS/debootstrap-python-base.log"

# The first Debian archive URL that apt's sources use for $SUITE (deb822 .sources files first, then
# one-line .list files); deb.debian.org if none is found.
debian_mirror() {
    local url="" f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] || continue
        # Stanzas are separated by blank lines; pick one with Types: deb and our suite in Suites.
        url="$(awk -v suite="$SUITE" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "" && enabled != "no") {
                    split(uris, u, " "); print u[1]; found = 1; exit
                }
                types = ""; suites = ""; uris = ""; enabled = ""
            }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]*#/ { next }
            tolower($1) == "types:"   { $1 = ""; types = $0 }
            tolower($1) == "suites:"  { $1 = ""; suites = $0 }
            tolower($1) == "uris:"    { $1 = ""; uris = $0; sub(/^ +/, "", uris) }
            tolower($1) == "enabled:" { enabled = tolower($2) }
            END { if (!found) flush() }
        ' "$f")"
        [[ -n "$url" ]] && break
    done
    if [[ -z "$url" ]]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [[ -r "$f" ]] || continue
            # deb [options] URL SUITE COMPONENTS...
            url="$(sed -E 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }')"
            [[ -n "$url" ]] && break
        done
    fi
    printf '%s' "${url:-http://deb.debian.org/debian}"
}

# Turn debootstrap's one-line-per-package output into one line per stage with a dot per package.
progress_filter() {
    awk '
        { key = $1 " " $2 }
        /^I: (Retrieving|Validating) [^ ]+ [^ ]+$/ { key = "fetch" }   # one pair of lines per package
        key == prev && /^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) / { printf "."; fflush(); next }
        { printf "%s    %s", (NR > 1 ? "\n" : ""), $0; fflush(); prev = key }
        END { printf "\n" }
    '
}

bootstrap() {
    local mirror="$1"
    safe_rmtree "$ROOTFS"
    mkdir -p "$ROOTFS" "$CACHE" "$ABACO_LOGS"
    log "debootstrap $SUITE minbase + python3 from $mirror (log $BUILD_LOG)..."
    if ! debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates \
        --cache-dir="$CACHE" "$SUITE" "$ROOTFS" "$mirror" 2>&1 | tee "$BUILD_LOG" | progress_filter; then
        show_log_tail "$BUILD_LOG" 30
        [[ -f "$ROOTFS/debootstrap/debootstrap.log" ]] && show_log_tail "$ROOTFS/debootstrap/debootstrap.log" 30
        safe_rmtree "$ROOTFS"
        die "debootstrap failed"
    fi
}

strip_rootfs() {
    local r="$ROOTFS"
    log "stripping apt caches, docs, man pages and translations..."
    rm -rf "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* \
        "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/* \
        "$r"/usr/share/lintian "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old \
        "$r"/var/log/*.log "$r"/var/log/apt/* "$r"/tmp/* "$r"/root/.cache
    # Docker mounts its own at run time; do not ship the build host's resolver and name.
    : >"$r/etc/resolv.conf"
    : >"$r/etc/hostname"
    # Keep later `apt-get install`s in derived images small too.
    mkdir -p "$r/etc/dpkg/dpkg.cfg.d"
    cat >"$r/etc/dpkg/dpkg.cfg.d/01-abaco-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
    info "root filesystem: $(du -sh --one-file-system "$r" | cut -f1)"
}

import_rootfs() {
    log "importing into docker as $IMAGE..."
    tar --numeric-owner -C "$ROOTFS" \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf - . |
        "$DOCKER" import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["python3"]' \
            - "$IMAGE" >/dev/null
}

main() {
    if image_exists "$IMAGE" && ((!FORCE)); then
        log "$IMAGE exists (use --force to rebuild)"
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "debootstrap needs root"
    ensure_packages debootstrap debian-archive-keyring
    require_docker
    # shellcheck disable=SC2034 # t0 is read through timer_elapsed
    local t0 mirror
    timer_start t0
    mirror="${MIRROR:-$(debian_mirror)}"
    log "building $IMAGE (debootstrap, ~40 s cold)..."
    bootstrap "$mirror"
    strip_rootfs
    import_rootfs
    safe_rmtree "$ROOTFS"
    "$DOCKER" run --rm --network none "$IMAGE" \
        python3 -c 'import ssl, sys; print("    python", sys.version.split()[0], "ok")' ||
        die "$IMAGE does not run python3"
    log "built $IMAGE in $(timer_elapsed t0) s ($("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

main
