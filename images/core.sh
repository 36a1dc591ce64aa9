#!/usr/bin/env bash
# Build the core image abaco/core:dev (the repo's Dockerfile) without a registry: FROM
# abaco/python-base:local, Python packages from .build/wheelhouse (--no-index), no network in the build.
# The pip layer is cached, so a rebuild after a change under actors/ takes seconds.
#
#   images/core.sh                 builds abaco/core:dev and checks that its packages import
#   TAG=:1.2 images/core.sh        builds abaco/core:1.2
#   BASE_IMAGE=...  PIP_ARGS=...   override the build args (defaults: abaco/python-base:local, --no-index)
#
# Needs the base image (images/base/python.sh) and the wheelhouse (images/wheelhouse.sh); images/build.sh
# runs them in order.
set -euo pipefail
# shellcheck source=../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

IMAGE="abaco/core${TAG:-:dev}"
BASE_IMAGE="${BASE_IMAGE:-abaco/python-base:local}"
PIP_ARGS="${PIP_ARGS---no-index}"

# The imports every Abaco process depends on.
CHECK_IMPORTS="import flask, flask_cors, gunicorn, pika, redis, docker, jwt, hashids, pymongo, prometheus_client, cryptography, requests"

build() {
    # shellcheck disable=SC2034 # t0 is read through timer_elapsed
    local t0
    timer_start t0
    log "building $IMAGE from $BASE_IMAGE (legacy builder, --network none, pip $PIP_ARGS)..."
    DOCKER_BUILDKIT=0 "$DOCKER" build --network none --force-rm \
        --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "PIP_ARGS=$PIP_ARGS" \
        -t "$IMAGE" "$ABACO_ROOT"
    log "built $IMAGE in $(timer_elapsed t0) s ($("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

check() {
    log "checking $IMAGE: python packages import..."
    "$DOCKER" run --rm --network host "$IMAGE" python3 -c "$CHECK_IMPORTS; import actors.config; print('    imports ok')" ||
        die "$IMAGE: packages do not import"
}

main() {
    require_docker
    if [[ "$BASE_IMAGE" == *:local ]] && ! image_exists "$BASE_IMAGE"; then
        die "$BASE_IMAGE is missing: run images/build.sh bases (or images/base/python.sh)"
    fi
    if [[ "$PIP_ARGS" == *--no-index* && ! -f "$ABACO_BUILD/wheelhouse/.stamp" ]]; then
        die "no wheelhouse in .build/wheelhouse: run images/wheelhouse.sh first"
    fi
    build
    check
}

main
