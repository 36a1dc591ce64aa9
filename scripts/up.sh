#!/usr/bin/env bash
# Start the whole Abaco stack on this machine: install what is missing, start Redis, RabbitMQ and
# dockerd when they are not running, build the local images, start the web apps under gunicorn and
# the spawner, and print the base URL. Idempotent: what already runs is left alone.
#
#   scripts/up.sh                      # with local-dev.conf
#   ABACO_CONF=/path/to/file scripts/up.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ABACO_CONF="$(realpath "${ABACO_CONF:-$ABACO_ROOT/local-dev.conf}")"
ABACO_BIND="${ABACO_BIND:-127.0.0.1:8000}"
VENV="$ABACO_ROOT/.venv"
export ABACO_CONF abaco_conf_host_path="$ABACO_CONF" logs_host_dir="$ABACO_LOGS"

ensure_python_env() {
    local stamp="$VENV/.requirements.sha256" want
    want="$(cat "$ABACO_ROOT/requirements.txt" "$ABACO_ROOT/requirements-test.txt" | sha256sum | cut -d' ' -f1)"
    if [[ -x "$VENV/bin/python" && -r "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    log "installing Python dependencies into .venv (about a minute the first time)"
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --disable-pip-version-check --progress-bar off -q -r "$ABACO_ROOT/requirements-test.txt"
    printf '%s\n' "$want" >"$stamp"
}

prepare_dirs() {
    ensure_run_dirs
    local c dir
    for c in socket_host_path_dir fifo_host_path_dir; do
        dir="$(conf_value workers "$c")"
        [[ -n "$dir" ]] && mkdir -p "$dir"
    done
    return 0
}

# conf_value SECTION OPTION: the value the Python config would see (env overrides included).
conf_value() {
    "$VENV/bin/python" -c "from actors.config import conf; print(conf().get('$1', '$2', ''))"
}

start_gunicorn() {
    local name="$1" bind="$2" app="$3" workers="$4" probe="$5"
    if owned_pid "$name" >/dev/null; then
        info "$name already running (pid $(read_pidfile "$name"))"
        return 0
    fi
    log "starting $name ($app) under gunicorn on $bind"
    (cd "$ABACO_ROOT" && "$VENV/bin/gunicorn" --daemon --pid "$(pidfile_path "$name")" \
        --bind "$bind" --worker-class gthread --workers "$workers" --threads 16 \
        --timeout 300 --graceful-timeout 30 --limit-request-field_size 65536 --access-logfile "$ABACO_LOGS/$name-access.log" \
        --error-logfile "$ABACO_LOGS/$name.log" "$app")
    # any HTTP answer means the app is up: with access_control jwt, GET /actors without a token is a 400
    wait_for --log "$ABACO_LOGS/$name.log" "$name" 30 http_answers "http://$bind$probe"
}

start_web() {
    start_gunicorn web "$ABACO_BIND" actors.app:app "${ABACO_WEB_WORKERS:-2}" /actors
}

# /metrics lists every actor without authentication: it has its own listener, off the public port
start_metrics() {
    start_gunicorn metrics "$METRICS_BIND" actors.metrics_api:app 1 /metrics
}

start_agent() {
    local name="$1"
    shift
    if owned_pid "$name" >/dev/null; then
        info "$name already running (pid $(read_pidfile "$name"))"
        return 0
    fi
    log "starting the $name"
    # setsid: the agent leaves this shell's session and process group, so it outlives the terminal
    # and never holds the caller's pipes open
    # a simple command in the background, so that $! is the agent's own PID
    (
        cd "$ABACO_ROOT" || exit 1
        setsid "$VENV/bin/python" -m "$@" >>"$ABACO_LOGS/$name.out" 2>&1 </dev/null &
        echo $! >"$(pidfile_path "$name")"
    )
    sleep 0.5
    owned_pid "$name" >/dev/null || { show_log_tail "$ABACO_LOGS/$name.out" 30; die "the $name exited at start"; }
}

# Prometheus scrapes /metrics every 5 s and, with [workers] autoscaling on, each scrape is one
# autoscaling pass: it runs only then. Debian's package (about 20 MB) is installed either way, so the
# autoscaling test (tests/functional/test_autoscaling.py) can start its own; without root that is
# only a warning.
ensure_prometheus_package() {
    if ! package_installed prometheus && [[ $EUID -ne 0 ]]; then
        warn "Debian's prometheus is not installed (needs root): autoscaling and its test need it"
        return 0
    fi
    ensure_packages prometheus
}

start_prometheus() {
    local addr="${ABACO_PROM_ADDR:-127.0.0.1:9090}" dir="$ABACO_RUN/prometheus" enabled
    enabled="$("$VENV/bin/python" -c "from actors.config import conf; print(conf().get_bool('workers', 'autoscaling', False))")"
    [[ "$enabled" == "True" ]] || return 0
    [[ -x /usr/bin/prometheus ]] || die "autoscaling is on but Debian's prometheus is not installed (apt-get install prometheus)"
    if owned_pid prometheus >/dev/null; then
        info "Prometheus already running (pid $(read_pidfile prometheus))"
        return 0
    fi
    if curl -s -o /dev/null "http://$addr/"; then
        warn "something already answers on $addr: not starting Prometheus (choose another with ABACO_PROM_ADDR)"
        return 0
    fi
    log "starting Prometheus on $addr: autoscaling is on, every scrape of /metrics is one pass"
    mkdir -p "$dir/data"
    # prometheus/prometheus.yml with this stack's addresses and an absolute path to the rules
    sed -e "s|127.0.0.1:5004|$METRICS_BIND|" -e "s|127.0.0.1:9090|$addr|" \
        -e "s|- alert.rules.yml|- $ABACO_ROOT/prometheus/alert.rules.yml|" \
        "$ABACO_ROOT/prometheus/prometheus.yml" >"$dir/prometheus.yml"
    (
        cd "$dir" || exit 1
        setsid /usr/bin/prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
            --web.listen-address="$addr" >>"$ABACO_LOGS/prometheus.log" 2>&1 </dev/null &
        echo $! >"$(pidfile_path prometheus)"
    )
    wait_for --log "$ABACO_LOGS/prometheus.log" "Prometheus" 30 curl -fsS -o /dev/null "http://$addr/-/ready"
}

main() {
    timer_start t0
    cd "$ABACO_ROOT"
    ensure_packages curl
    ensure_prometheus_package
    ensure_python_env
    "$ABACO_ROOT/scripts/services.sh" start all
    "$ABACO_ROOT/images/build.sh" all
    prepare_dirs
    METRICS_BIND="$(conf_value web metrics_address)"
    METRICS_BIND="${METRICS_BIND:-127.0.0.1:5004}"
    start_web
    start_metrics
    start_agent spawner actors.spawner
    start_agent events actors.events
    start_agent health actors.health
    start_prometheus
    printf '%s\n' "$ABACO_CONF" >"$ABACO_RUN/conf"
    log "Abaco is up in $(timer_elapsed t0)s (configuration: $ABACO_CONF; metrics for Prometheus on http://$METRICS_BIND/metrics)"
    echo "http://$ABACO_BIND"
}

main "$@"
