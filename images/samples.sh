#!/usr/bin/env bash
# Build the sample actor images from the local busybox base, without network (DESIGN §6):
#   abacosamples/test (also tagged jstubbs/abaco_test)   images/abaco_test/
#
#   images/samples.sh
set -euo pipefail
# shellcheck source=../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

BUSYBOX_IMAGE="abaco/busybox:local"

# build_sample DIR TAG [EXTRA_TAG...]
build_sample() {
    # shellcheck disable=SC2034 # t0 is read through timer_elapsed
    local dir="$1" tag="$2" t0 extra
    shift 2
    timer_start t0
    log "building $tag from $dir..."
    DOCKER_BUILDKIT=0 "$DOCKER" build --network none --force-rm \
        --build-arg "BASE_IMAGE=$BUSYBOX_IMAGE" -t "$tag" "$dir"
    for extra in "$@"; do
        "$DOCKER" tag "$tag" "$extra"
    done
    log "built $tag${*:+ (also $*)} in $(timer_elapsed t0) s"
}

check_test_image() {
    local out rc=0
    out="$("$DOCKER" run --rm --network none -e MSG=ping abacosamples/test)" || die "abacosamples/test failed"
    grep -qx 'Contents of MSG: ping' <<<"$out" || die "abacosamples/test printed: $out"
    "$DOCKER" run --rm --network none -e ABACO_TEST_EXIT=3 abacosamples/test >/dev/null || rc=$?
    ((rc == 3)) || die "abacosamples/test: ABACO_TEST_EXIT=3 gave exit code $rc"
    info "abacosamples/test ok"
}

main() {
    require_docker
    image_exists "$BUSYBOX_IMAGE" || "$ABACO_ROOT/images/base/busybox.sh"
    build_sample "$ABACO_ROOT/images/abaco_test" abacosamples/test jstubbs/abaco_test
    check_test_image
}

main
