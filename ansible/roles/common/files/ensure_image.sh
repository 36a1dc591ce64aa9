#!/bin/sh
# ensure_image.sh pull|build|load IMAGE: make IMAGE present on the daemon at $DOCKER_HOST.
#   pull    docker pull (a registry is reachable)
#   build   when missing: $BUILD (one of the repository's image scripts) in $ABACO_REPO, with $TAG
#   load    when missing or another image: from the daemon at $SOURCE_DOCKER_HOST (docker save |
#           docker load, or only a tag when the daemon has that image under another name)
# Prints "changed: ..." when it changed something.
set -eu
mode="$1" image="$2"
image_id() { docker -H "$1" image inspect -f '{{.Id}}' "$image" 2>/dev/null || true; }

case "$mode" in
    pull)
        out="$(docker pull "$image")"
        case "$out" in *"Downloaded newer image"*) echo "changed: pulled $image" ;; esac
        ;;
    build)
        [ -n "$(image_id "$DOCKER_HOST")" ] && exit 0
        [ -n "${BUILD:-}" ] || { echo "$image is missing and there is no build for it (image_builds)" >&2; exit 1; }
        [ -d "${ABACO_REPO:-}/images" ] || { echo "building $image needs the repository at abaco_repo (${ABACO_REPO:-unset})" >&2; exit 1; }
        cd "$ABACO_REPO"
        $BUILD >&2
        [ -n "$(image_id "$DOCKER_HOST")" ] || { echo "$BUILD did not make $image" >&2; exit 1; }
        echo "changed: built $image ($BUILD)"
        ;;
    load)
        want="$(image_id "$SOURCE_DOCKER_HOST")"
        [ -n "$want" ] || { echo "$image is not on $SOURCE_DOCKER_HOST either" >&2; exit 1; }
        [ "$(image_id "$DOCKER_HOST")" = "$want" ] && exit 0
        if docker image inspect "$want" >/dev/null 2>&1; then
            docker tag "$want" "$image"
        else
            docker -H "$SOURCE_DOCKER_HOST" save "$image" | docker load >&2
        fi
        echo "changed: loaded $image from $SOURCE_DOCKER_HOST"
        ;;
    *) echo "usage: $0 pull|build|load IMAGE" >&2; exit 2 ;;
esac
