#!/usr/bin/env bash
# The containerised stack (docker-compose.yml) on this machine, building what is missing first.
#
#   scripts/compose.sh build [--testsuite]   the images: core, nginx, redis, rabbitmq, samples (+ testsuite)
#   scripts/compose.sh up                    build what is missing, `docker-compose up -d`, wait until it answers
#   scripts/compose.sh wait                  wait until every web app and nginx answer (any HTTP status)
#   scripts/compose.sh test [pytest args]    the testsuite image against the running stack
#   scripts/compose.sh down                  `docker-compose down`, then the worker and actor containers
#                                            of this stack's host id and its IPC folders
#
# Settings come from the environment, as docker-compose.yml reads them (TAG, ABACO_*_PORT,
# ABACO_HOST_ID, ABACO_COMPOSE_CONF, ABACO_SPAWNERS for `--scale spawner=N`, passwords...);
# abaco_path defaults to the repository. COMPOSE_PROJECT_NAME picks the compose project, DOCKER_HOST
# the daemon. Progress goes to stderr.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export TAG="${TAG:-:dev}"
export abaco_path="${abaco_path:-$ABACO_ROOT}"
HOST_ID="${ABACO_HOST_ID:-compose}"
COMPOSE=(docker-compose --project-directory "$ABACO_ROOT" -f "$ABACO_ROOT/docker-compose.yml")

port() { # port NAME DEFAULT: the value of ABACO_<NAME>_PORT
    local var="ABACO_${1}_PORT"
    printf '%s' "${!var:-$2}"
}

ensure_tools() {
    ensure_packages docker.io docker-compose curl
    require_docker
}

# The DOCKER CLI of lib.sh talks to $DOCKER_HOST too, so the images land where compose runs.
build_images() {
    local with_testsuite="${1:-}"
    image_exists abaco/python-base:local || "$ABACO_ROOT/images/base/python.sh"
    if [[ -n "$with_testsuite" ]]; then
        "$ABACO_ROOT/images/wheelhouse.sh" --with-test
    else
        "$ABACO_ROOT/images/wheelhouse.sh"
    fi
    "$ABACO_ROOT/images/core.sh"
    "$ABACO_ROOT/images/services.sh" all
    image_exists abacosamples/test || "$ABACO_ROOT/images/samples.sh"
    [[ -n "$with_testsuite" ]] && build_testsuite
    return 0
}

build_testsuite() {
    # shellcheck disable=SC2034 # t0 is read through timer_elapsed
    local image="abaco/testsuite$TAG" t0
    timer_start t0
    log "building $image from Dockerfile-test (legacy builder, --network none)..."
    DOCKER_BUILDKIT=0 "$DOCKER" build --network none --force-rm -q -f "$ABACO_ROOT/Dockerfile-test" \
        -t "$image" "$ABACO_ROOT" >/dev/null
    log "built $image in $(timer_elapsed t0) s"
}

build_missing() {
    local image
    for image in "abaco/core$TAG" "abaco/nginx$TAG" abaco/redis:local abaco/rabbitmq:local abacosamples/test; do
        if ! image_exists "$image"; then
            log "$image is missing: building the images"
            build_images
            return 0
        fi
    done
}

# Abaco processes bind-mount these from the host: make them files and folders, not Docker's empty dirs.
prepare_host_paths() {
    touch "$abaco_path/abaco.log"
    mkdir -p "${ABACO_SOCKETS_DIR:-/tmp/abaco-compose/results_sockets}" "${ABACO_FIFOS_DIR:-/tmp/abaco-compose/fifos}"
    local conf="$abaco_path/${ABACO_COMPOSE_CONF:-local-dev.conf}"
    [[ -f "$conf" ]] || die "no configuration at $conf (ABACO_COMPOSE_CONF is relative to abaco_path)"
}

report_stores() {
    if [[ "${ABACO_MONGO_STORES:-redis}" == mongo ]]; then
        log "stores: logs, permissions, executions and clients in MongoDB, the others in Redis"
    elif image_exists "${ABACO_MONGO_IMAGE:-mongo}"; then
        log "stores: every store in Redis (a Mongo image exists: COMPOSE_PROFILES=mongo ABACO_MONGO_STORES=mongo uses it)"
    else
        log "stores: no MongoDB image on this machine, so every store lives in Redis"
    fi
}

# Any HTTP answer means up (lib.sh's http_answers): a stack with JWT authentication answers 400
# without a token.
wait_ready() {
    local name url
    for name in REG:5000 MES:5001 ADMIN:5003 METRICS:5004 NGINX:8000; do
        url="http://127.0.0.1:$(port "${name%%:*}" "${name#*:}")/actors"
        [[ "$name" == METRICS:* ]] && url="${url%/actors}/metrics"
        wait_for "the ${name%%:*} app ($url)" "${ABACO_COMPOSE_WAIT:-120}" http_answers "$url" ||
            { "${COMPOSE[@]}" logs --tail 30 >&2 || true; die "the compose stack did not come up"; }
    done
}

up() {
    # shellcheck disable=SC2034 # t0 is read through timer_elapsed
    local t0
    timer_start t0
    ensure_tools
    build_missing
    prepare_host_paths
    report_stores
    log "docker-compose up -d (project ${COMPOSE_PROJECT_NAME:-$(basename "$ABACO_ROOT")}, host id $HOST_ID, tag $TAG)..."
    "${COMPOSE[@]}" up -d --scale "spawner=${ABACO_SPAWNERS:-1}"
    wait_ready
    log "the compose stack is up in $(timer_elapsed t0) s"
    echo "http://127.0.0.1:$(port NGINX 8000)"
}

down() {
    ensure_tools
    log "docker-compose down..."
    "${COMPOSE[@]}" down -v --remove-orphans
    local ids
    ids="$("$DOCKER" ps -aq --filter label=org.abaco.role --filter "label=org.abaco.host_id=$HOST_ID")"
    if [[ -n "$ids" ]]; then
        log "removing $(wc -w <<<"$ids") worker and actor container(s) of host id $HOST_ID"
        # shellcheck disable=SC2086 # ids are words
        "$DOCKER" rm -f $ids >/dev/null
    fi
    local dir
    for dir in "${ABACO_SOCKETS_DIR:-/tmp/abaco-compose/results_sockets}" "${ABACO_FIFOS_DIR:-/tmp/abaco-compose/fifos}"; do
        [[ -d "$dir" ]] && find "$dir" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    done
    log "the compose stack is down"
}

run_tests() {
    ensure_tools
    image_exists "abaco/testsuite$TAG" || build_images --testsuite
    log "running the testsuite image against http://127.0.0.1:$(port NGINX 8000) (case ${case:-snake})..."
    "${COMPOSE[@]}" run --rm testsuite "$@"
}

main() {
    local cmd="${1:-}"
    shift || true
    case "$cmd" in
        build) ensure_tools && build_images "${1:+testsuite}" ;;
        up) up ;;
        wait) wait_ready ;;
        test) run_tests "$@" ;;
        down) down ;;
        *) die "usage: $0 build [--testsuite] | up | wait | test [pytest args] | down" ;;
    esac
}

main "$@"
