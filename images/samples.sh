#!/usr/bin/env bash
# Build the sample actor images from the local bases, without network:
#   abacosamples/test (also tagged jstubbs/abaco_test)   images/abaco_test/   FROM abaco/busybox:local
#   abacosamples/py3_sdk    the SDK + cloudpickle        images/sdk/          FROM abaco/python-base:local
#   abacosamples/py3_func   runs a pickled function      images/py3_func/     FROM abacosamples/py3_sdk
#   abacosamples/wc         word count                   images/wc/           FROM abacosamples/py3_sdk
#   abacosamples/sleep_loop sleeps N iterations          images/sleep_loop/   FROM abacosamples/py3_sdk
#   abacosamples/engine_test  binary size/sha256, or sh -c $ABACO_TEST_SCRIPT  images/abaco_engine_test/  FROM busybox
#   abacosamples/results_test sends MSG to /_abaco_results.sock             images/abaco_results_test/ FROM python-base
#
#   images/samples.sh
#
# py3_sdk installs cloudpickle from .build/wheelhouse-sdk (images/wheelhouse.sh --sdk, skipped when up to
# date); its build context is staged under .build/context/py3_sdk. Each image is checked after its build.
set -euo pipefail
# shellcheck source=../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

BUSYBOX_IMAGE="abaco/busybox:local"
PYTHON_IMAGE="abaco/python-base:local"
SDK_IMAGE="abacosamples/py3_sdk"
HERE="$ABACO_ROOT/images"

# build_sample DIR BASE TAG [EXTRA_TAG...]
build_sample() {
    # shellcheck disable=SC2034 # t0 is read through timer_elapsed
    local dir="$1" base="$2" tag="$3" t0 extra
    shift 3
    timer_start t0
    log "building $tag from ${dir#"$ABACO_ROOT"/} (FROM $base)..."
    DOCKER_BUILDKIT=0 "$DOCKER" build --network none --force-rm \
        --build-arg "BASE_IMAGE=$base" -t "$tag" "$dir"
    for extra in "$@"; do
        "$DOCKER" tag "$tag" "$extra"
    done
    log "built $tag${*:+ (also $*)} in $(timer_elapsed t0) s ($("$DOCKER" image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# The py3_sdk build context: the Dockerfile, the SDK, its requirements and their wheels.
stage_sdk_context() {
    local ctx="$ABACO_BUILD/context/py3_sdk"
    "$HERE/wheelhouse.sh" --sdk >&2
    rm -rf "$ctx"
    mkdir -p "$ctx/wheels"
    cp "$HERE/sdk/Dockerfile" "$HERE/sdk/abaco_sdk.py" "$HERE/sdk/requirements.txt" "$ctx/"
    cp "$ABACO_BUILD/wheelhouse-sdk/"*.whl "$ctx/wheels/"
    printf '%s' "$ctx"
}

check_test_image() {
    local out rc=0
    out="$("$DOCKER" run --rm --network none -e MSG=ping abacosamples/test)" || die "abacosamples/test failed"
    grep -qx 'Contents of MSG: ping' <<<"$out" || die "abacosamples/test printed: $out"
    "$DOCKER" run --rm --network none -e ABACO_TEST_EXIT=3 abacosamples/test >/dev/null || rc=$?
    ((rc == 3)) || die "abacosamples/test: ABACO_TEST_EXIT=3 gave exit code $rc"
    info "abacosamples/test ok"
}

check_python_samples() {
    local out
    out="$("$DOCKER" run --rm --network none "$SDK_IMAGE" python3 -c \
        'import abaco_sdk, cloudpickle; print(abaco_sdk.__version__, cloudpickle.__version__)')" ||
        die "$SDK_IMAGE: abaco_sdk or cloudpickle does not import"
    info "$SDK_IMAGE ok (abaco_sdk, cloudpickle $(cut -d' ' -f2 <<<"$out"))"
    out="$("$DOCKER" run --rm --network none -e 'MSG=one two  three' abacosamples/wc)" || die "abacosamples/wc failed"
    grep -qx 'Number of words is: 3' <<<"$out" || die "abacosamples/wc printed: $out"
    info "abacosamples/wc ok"
    out="$("$DOCKER" run --rm --network none -e MSG=2 -e SLEEP_LOOP_SECONDS=0 abacosamples/sleep_loop)" ||
        die "abacosamples/sleep_loop failed"
    grep -qx 'sleep_loop: iteration 2 of 2' <<<"$out" || die "abacosamples/sleep_loop printed: $out"
    info "abacosamples/sleep_loop ok"
    "$DOCKER" run -i --rm --network none abacosamples/py3_func python3 - <"$HERE/py3_func/selftest.py" >&2 ||
        die "abacosamples/py3_func failed its self-test"
}

main() {
    # shellcheck disable=SC2034 # t0 is read through timer_elapsed
    local t0 ctx
    timer_start t0
    require_docker
    image_exists "$BUSYBOX_IMAGE" || "$HERE/base/busybox.sh"
    image_exists "$PYTHON_IMAGE" || "$HERE/base/python.sh"
    build_sample "$HERE/abaco_test" "$BUSYBOX_IMAGE" abacosamples/test jstubbs/abaco_test
    check_test_image
    build_sample "$HERE/abaco_engine_test" "$BUSYBOX_IMAGE" abacosamples/engine_test
    build_sample "$HERE/abaco_results_test" "$PYTHON_IMAGE" abacosamples/results_test
    ctx="$(stage_sdk_context)"
    build_sample "$ctx" "$PYTHON_IMAGE" "$SDK_IMAGE"
    build_sample "$HERE/py3_func" "$SDK_IMAGE" abacosamples/py3_func
    build_sample "$HERE/wc" "$SDK_IMAGE" abacosamples/wc
    build_sample "$HERE/sleep_loop" "$SDK_IMAGE" abacosamples/sleep_loop
    check_python_samples
    log "sample images built and checked in $(timer_elapsed t0) s"
}

main
