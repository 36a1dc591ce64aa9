#!/usr/bin/env bash
# Build the service images of the compose stack without a registry (nothing can be pulled here):
#   abaco/redis:local      Debian's redis-server      images/redis/
#   abaco/rabbitmq:local   Debian's rabbitmq-server   images/rabbitmq/   (management plugin included)
#   abaco/nginx$TAG        Debian's nginx + openssl   images/nginx/      (TAG default :dev)
#   abaco/prometheus:local Debian's prometheus        images/prometheus/ (not in `all`: the Ansible
#                                                     deployment's metrics hosts run it)
# Each is FROM abaco/python-base:local (images/base/python.sh). The host downloads the Debian packages
# the base lacks with `apt-get install --download-only`, resolved against the base image's own dpkg
# status, into images/<name>/debs/ (not in git); the build then installs them with --network none.
#
#   images/services.sh [redis|rabbitmq|nginx|prometheus|all]... [--force]     (default: all)
#
# --force downloads the packages again (e.g. after a Debian security update). Builds use the layer
# cache, so a rebuild with nothing changed takes a second or two.
set -euo pipefail
# shellcheck source=../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

HERE="$ABACO_ROOT/images"
BASE_IMAGE="${BASE_IMAGE:-abaco/python-base:local}"
TAG="${TAG:-:dev}"
FORCE=0
TARGETS=()
for arg in "$@"; do
    case "$arg" in
        redis | rabbitmq | nginx | prometheus) TARGETS+=("$arg") ;;
        all) TARGETS+=(redis rabbitmq nginx) ;;
        --force) FORCE=1 ;;
        *) die "usage: $0 [redis|rabbitmq|nginx|prometheus|all]... [--force]" ;;
    esac
done
((${#TARGETS[@]})) || TARGETS=(redis rabbitmq nginx)

packages_of() {
    case "$1" in
        redis) echo redis-server ;;
        rabbitmq) echo rabbitmq-server ;;
        nginx) echo nginx openssl gettext-base ;;
        prometheus) echo prometheus ;;
    esac
}

image_of() {
    case "$1" in
        nginx) echo "abaco/nginx$TAG" ;;
        *) echo "abaco/$1:local" ;;
    esac
}

# apt-get update when this machine has no package lists yet (a fresh one).
ensure_apt_lists() {
    compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null && return 0
    log "no apt package lists yet: apt-get update..."
    apt-get update -q
}

# download_debs NAME: the packages of NAME and every dependency the base image does not have.
download_debs() {
    local name="$1" dir="$HERE/$1/debs" want status
    want="$(packages_of "$name") $(sha256sum <<<"$BASE_IMAGE $("$DOCKER" image inspect -f '{{.Id}}' "$BASE_IMAGE")" | cut -c1-16)"
    if ((!FORCE)) && [[ -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$want" ]]; then
        info "$name: Debian packages already in ${dir#"$ABACO_ROOT"/} ($(find "$dir" -name '*.deb' | wc -l) files)"
        return 0
    fi
    log "$name: downloading $(packages_of "$name") and what $BASE_IMAGE lacks of their dependencies..."
    status="$(mktemp)"
    "$DOCKER" run --rm --network none "$BASE_IMAGE" cat /var/lib/dpkg/status >"$status"
    rm -rf "$dir"
    mkdir -p "$dir/partial"
    ensure_apt_lists
    # shellcheck disable=SC2046 # the package list is words
    apt-get install --download-only --no-install-recommends -y -q \
        -o Dir::State::status="$status" -o Dir::Cache::archives="$dir" -o Debug::NoLocking=1 \
        $(packages_of "$name") | grep -E '^(Get|Fetched|Need)' | sed 's/^/    /' >&2
    rm -rf "$status" "$dir/partial" "$dir/lock"
    printf '%s\n' "$want" >"$dir/.stamp"
    info "$(find "$dir" -name '*.deb' | wc -l) packages, $(du -sh "$dir" | cut -f1)"
}

build_image() {
    # shellcheck disable=SC2034 # t0 is read through timer_elapsed
    local name="$1" image t0
    image="$(image_of "$name")"
    timer_start t0
    log "building $image from images/$name (FROM $BASE_IMAGE, --network none)..."
    DOCKER_BUILDKIT=0 "$DOCKER" build --network none --force-rm -q \
        --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$image" "$HERE/$name" >/dev/null
    log "built $image in $(timer_elapsed t0) s ($("$DOCKER" image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
}

main() {
    require_docker
    image_exists "$BASE_IMAGE" || "$HERE/base/python.sh"
    local name
    for name in "${TARGETS[@]}"; do
        download_debs "$name"
        build_image "$name"
    done
}

main
