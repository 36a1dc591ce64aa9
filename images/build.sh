#!/usr/bin/env bash
# Build the project's images without a registry, in order:
#   bases    abaco/busybox:local, abaco/python-base:local   (skipped when present, unless --force)
#   core     .build/wheelhouse, then abaco/core:dev          (layer cache keeps rebuilds to seconds)
#   samples  abacosamples/test (= jstubbs/abaco_test), abacosamples/py3_sdk, py3_func, wc, sleep_loop
#
#   images/build.sh [all|bases|core|samples] [--force]       (default: all)
#
# --force rebuilds the base images and the wheelhouse even when they are present.
# Starts a Docker daemon through scripts/services.sh if none answers.
set -euo pipefail
# shellcheck source=../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

HERE="$ABACO_ROOT/images"
TARGET="all"
FORCE=()
for arg in "$@"; do
    case "$arg" in
        all | bases | core | samples) TARGET="$arg" ;;
        --force) FORCE=(--force) ;;
        *) die "usage: $0 [all|bases|core|samples] [--force]" ;;
    esac
done

build_bases() {
    "$HERE/base/busybox.sh" "${FORCE[@]}"
    "$HERE/base/python.sh" "${FORCE[@]}"
}

build_core() {
    image_exists abaco/python-base:local || "$HERE/base/python.sh"
    "$HERE/wheelhouse.sh" "${FORCE[@]}"
    "$HERE/core.sh"
}

build_samples() {
    image_exists abaco/busybox:local || "$HERE/base/busybox.sh"
    image_exists abaco/python-base:local || "$HERE/base/python.sh"
    "$HERE/samples.sh"
}

main() {
    # shellcheck disable=SC2034 # t0 is read through timer_elapsed
    local t0
    timer_start t0
    ensure_packages docker.io busybox-static debootstrap
    require_docker
    case "$TARGET" in
        all) build_bases; build_core; build_samples ;;
        bases) build_bases ;;
        core) build_core ;;
        samples) build_samples ;;
    esac
    log "images ($TARGET) done in $(timer_elapsed t0) s"
}

main
