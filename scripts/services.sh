#!/usr/bin/env bash
# Start, stop and report the services Abaco needs on this machine: Redis, RabbitMQ and a Docker daemon.
#
#   scripts/services.sh start|stop|status [redis|rabbitmq|docker|all]     (default: all)
#   scripts/services.sh start|stop|status docker2                          a second Docker daemon
#
# docker2 is a second daemon beside the first, as a second compute host on this one machine: its own
# --data-root, --exec-root, --pidfile, containerd and socket (ABACO_DOCKER2_SOCKET, default
# /var/run/abaco-docker2.sock), the same "bridge": "none" and no iptables. It is not part of `all`.
# ABACO_DOCKER2_NAME (default docker2) names another such daemon, with its own socket and root
# (/var/run/abaco-<name>.sock, /var/lib/abaco-<name>), so several can run side by side.
#
# Rules:
#   - A service that already answers is used as it is. Only what this script started gets a pidfile in
#     .run/pids/, and `stop` stops only those PIDs: a service someone else started is never stopped here.
#   - Everything listens on 127.0.0.1 only.
#   - Never a second dockerd beside a running one that has a docker0 bridge (a daemon with
#     "bridge": "none" deletes the interface the other one uses); docker2 starts only beside ours.
#
# Settings (environment):
#   ABACO_REDIS_PORT   (6379)              Redis port
#   ABACO_RABBIT_PORT  (5672)              AMQP port
#   ABACO_RABBIT_NODE  (abaco@localhost)   Erlang node name of the broker we start
#   ABACO_EPMD_PORT    (4369)              epmd port used by that broker and rabbitmqctl
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REDIS_PORT="${ABACO_REDIS_PORT:-6379}"
RABBIT_PORT="${ABACO_RABBIT_PORT:-5672}"
RABBIT_NODE="${ABACO_RABBIT_NODE:-abaco@localhost}"
EPMD_PORT="${ABACO_EPMD_PORT:-4369}"
RABBIT_BASE="/var/lib/rabbitmq/abaco-$RABBIT_PORT"
RABBIT_LOGDIR="/var/log/rabbitmq/abaco-$RABBIT_PORT"
RABBIT_PIDFILE="$RABBIT_BASE/rabbitmq.pid"
DOCKERD="/usr/sbin/dockerd"
DOCKER2_NAME="${ABACO_DOCKER2_NAME:-docker2}"
DOCKER2_SOCKET="${ABACO_DOCKER2_SOCKET:-/var/run/abaco-$DOCKER2_NAME.sock}"
DOCKER2_ROOT="${ABACO_DOCKER2_ROOT:-/var/lib/abaco-$DOCKER2_NAME}"

usage() {
    echo "usage: $0 start|stop|status [redis|rabbitmq|docker|all]" >&2
    exit 2
}

# true if something accepts TCP connections on 127.0.0.1:PORT
tcp_open() {
    timeout 2 bash -c ">/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# =============================================================================================== redis

redis_ping() {
    [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]
}

# PONG, or LOADING while it reads its append-only file back
redis_answers() {
    [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" =~ ^(PONG|LOADING) ]]
}

start_redis() {
    local pid
    if redis_ping; then
        if pid="$(owned_pid redis)"; then
            log "redis: already running on 127.0.0.1:$REDIS_PORT (ours, pid $pid)"
        else
            log "redis: something already answers on 127.0.0.1:$REDIS_PORT (not started by us): using it"
        fi
        return 0
    fi
    ensure_packages redis-server
    if ! pid="$(owned_pid redis)"; then
        local dir="$ABACO_RUN/redis" logfile="$ABACO_LOGS/redis.log"
        mkdir -p "$dir"
        ensure_run_dirs
        log "redis: starting on 127.0.0.1:$REDIS_PORT (data in $dir, append-only file on)"
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
            --pidfile "$(pidfile_path redis)" --dir "$dir" --logfile "$logfile" \
            --save '' --appendonly yes
    fi
    wait_for --log "$ABACO_LOGS/redis.log" "redis on 127.0.0.1:$REDIS_PORT" 15 redis_answers
    if ! redis_ping; then
        # a large data set takes a while to load (about 20 s for 2 million keys here)
        local aof_mb
        aof_mb="$(du -sm "$ABACO_RUN/redis" 2>/dev/null | cut -f1)"
        wait_for --log "$ABACO_LOGS/redis.log" "redis to load its data (${aof_mb:-?} MB on disk)" \
            "${ABACO_REDIS_LOAD_TIMEOUT:-600}" redis_ping
    fi
    # redis writes its pidfile right after it daemonizes; give it a moment.
    wait_for "redis pidfile" 5 read_pidfile redis
    log "redis: running (ours, pid $(read_pidfile redis))"
}

stop_redis() {
    if owned_pid redis >/dev/null; then
        # TERM makes redis flush the append-only file and exit cleanly.
        stop_pidfile redis 20 '^redis-server'
    elif redis_ping; then
        log "redis: running on 127.0.0.1:$REDIS_PORT but not started by us: leaving it"
    else
        log "redis: not running"
    fi
}

status_redis() {
    local pid
    if pid="$(owned_pid redis)"; then
        redis_ping && echo "redis     running      ours (pid $pid)  127.0.0.1:$REDIS_PORT" ||
            echo "redis     NOT ANSWERING  ours (pid $pid)  127.0.0.1:$REDIS_PORT"
    elif redis_ping; then
        echo "redis     running      not ours  127.0.0.1:$REDIS_PORT"
    else
        echo "redis     not running  127.0.0.1:$REDIS_PORT"
    fi
}

# ============================================================================================ rabbitmq
# The broker runs as the `rabbitmq` user (Debian's wrappers `su` to it), so its data and log folders
# live where that user can write: /var/lib/rabbitmq/abaco-<port>, /var/log/rabbitmq/abaco-<port>.
# The Erlang distribution port and epmd are kept on 127.0.0.1 too. epmd outlives the broker: if it was
# not running before we started the broker, we record it and stop it afterwards.

rabbit_env() {
    export RABBITMQ_NODENAME="$RABBIT_NODE"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$RABBIT_PORT"
    export RABBITMQ_DIST_PORT=$((RABBIT_PORT + 20000))
    export ERL_EPMD_ADDRESS=127.0.0.1
    export ERL_EPMD_PORT="$EPMD_PORT"
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_PID_FILE="$RABBIT_PIDFILE"
    export RABBITMQ_MNESIA_BASE="$RABBIT_BASE/mnesia"
    export RABBITMQ_LOG_BASE="$RABBIT_LOGDIR"
    # Our own (empty) plugin list: no management listener on other interfaces, whatever /etc says.
    export RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_BASE/enabled_plugins"
}

rabbitctl() {
    (rabbit_env && rabbitmqctl -q -n "$RABBIT_NODE" "$@")
}

# epmd answers on our epmd port? (must be checked before any rabbitmqctl call: the CLI starts epmd itself)
epmd_running() {
    ERL_EPMD_PORT="$EPMD_PORT" epmd -names >/dev/null 2>&1
}

# Is the node name we want already registered with epmd?
rabbit_node_registered() {
    local short="${RABBIT_NODE%@*}"
    ERL_EPMD_PORT="$EPMD_PORT" epmd -names 2>/dev/null | grep -q "^name $short at port "
}

# PID of the process listening on 127.0.0.1:PORT (or any address), from ss.
listener_pid() {
    ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2
}

rabbit_ready() {
    tcp_open "$RABBIT_PORT" && rabbitctl await_startup --timeout 5
}

start_rabbitmq() {
    local pid
    if tcp_open "$RABBIT_PORT"; then
        if pid="$(owned_pid rabbitmq)"; then
            log "rabbitmq: already running on 127.0.0.1:$RABBIT_PORT (ours, pid $pid)"
        else
            log "rabbitmq: something already answers on 127.0.0.1:$RABBIT_PORT (not started by us): using it"
        fi
        return 0
    fi
    ensure_packages rabbitmq-server
    if ! pid="$(owned_pid rabbitmq)"; then
        local had_epmd=0
        epmd_running && had_epmd=1
        if ((had_epmd)) && rabbit_node_registered; then
            die "rabbitmq: node name $RABBIT_NODE is already registered with epmd but nothing answers on port $RABBIT_PORT; another broker uses that name (set ABACO_RABBIT_NODE or stop it)"
        fi
        install -d -o rabbitmq -g rabbitmq -m 0750 "$RABBIT_BASE" "$RABBIT_BASE/mnesia"
        install -d -o rabbitmq -g rabbitmq -m 0755 "$RABBIT_LOGDIR"
        printf '[].\n' >"$RABBIT_BASE/enabled_plugins"
        chown rabbitmq:rabbitmq "$RABBIT_BASE/enabled_plugins"
        rm -f "$RABBIT_PIDFILE"
        ensure_run_dirs
        ln -sfn "$RABBIT_LOGDIR" "$ABACO_LOGS/rabbitmq"
        log "rabbitmq: starting node $RABBIT_NODE on 127.0.0.1:$RABBIT_PORT (data $RABBIT_BASE, logs $RABBIT_LOGDIR, ~6 s)"
        (rabbit_env && cd / && rabbitmq-server -detached) >"$ABACO_LOGS/rabbitmq-start.log" 2>&1 ||
            { show_log_tail "$ABACO_LOGS/rabbitmq-start.log"; die "rabbitmq-server -detached failed"; }
        # The broker writes its pid file early in boot; record it at once so that a failed wait can
        # still be cleaned up by `stop`.
        wait_for "rabbitmq pid file" 30 test -s "$RABBIT_PIDFILE" ||
            { show_log_tail "$ABACO_LOGS/rabbitmq-start.log"; exit 1; }
        write_pidfile rabbitmq "$(tr -dc '0-9' <"$RABBIT_PIDFILE")"
        if ((!had_epmd)); then
            local epid
            epid="$(listener_pid "$EPMD_PORT")"
            if [[ -n "$epid" && "$(cat "/proc/$epid/comm" 2>/dev/null)" == "epmd" ]]; then
                write_pidfile epmd "$epid"
                info "epmd was not running: started with the broker (pid $epid), recorded to stop it later"
            else
                warn "epmd was not running before, but its pid could not be found: it will not be stopped"
            fi
        fi
    fi
    wait_for --log "$RABBIT_LOGDIR/$RABBIT_NODE.log" "rabbitmq (AMQP on 127.0.0.1:$RABBIT_PORT)" 60 rabbit_ready
    set_mailbox_policy
    log "rabbitmq: running (ours, pid $(read_pidfile rabbitmq))"
}

# Actors' mailboxes keep their messages on disk, not in RAM (docs/architecture.md, "Processes and
# queues"): a backlog of 100,000 messages otherwise holds about 100 MB of the broker's memory.
# images/rabbitmq/entry.sh sets the same policy in the containerised stack. Idempotent.
MAILBOX_POLICY='{"queue-mode":"lazy"}'
set_mailbox_policy() {
    rabbitctl set_policy --apply-to queues abaco-mailboxes '^actor_msg_' "$MAILBOX_POLICY" >/dev/null ||
        warn "rabbitmq: could not set the mailbox policy (lazy queues for actor_msg_*)"
}

stop_rabbitmq() {
    local pid
    if pid="$(owned_pid rabbitmq)"; then
        printf '==> rabbitmq: rabbitmqctl stop (node %s, pid %s)...\n' "$RABBIT_NODE" "$pid" >&2
        (rabbit_env && timeout 60 rabbitmqctl -q -n "$RABBIT_NODE" stop) ||
            warn "rabbitmqctl stop failed; falling back to signals"
        # Make sure the recorded process is gone (TERM, then KILL).
        stop_pidfile rabbitmq 20 '^beam'
    elif tcp_open "$RABBIT_PORT"; then
        log "rabbitmq: running on 127.0.0.1:$RABBIT_PORT but not started by us: leaving it"
    else
        log "rabbitmq: not running"
    fi
    stop_epmd
}

# Stop epmd only if we started it (pidfile), and only through `epmd -kill`, which refuses while other
# Erlang nodes (another engineer's broker) are registered.
stop_epmd() {
    local pid out
    pid="$(owned_pid epmd)" || return 0
    if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "epmd" ]]; then
        warn "epmd: pid $pid is not epmd any more; leaving it"
        rm -f "$(pidfile_path epmd)"
        return 0
    fi
    if out="$(ERL_EPMD_PORT="$EPMD_PORT" epmd -kill 2>&1)" && [[ "$out" != *"not allowed"* ]]; then
        local i
        for ((i = 0; i < 40; i++)); do
            pid_alive "$pid" || break
            sleep 0.25
        done
        pid_alive "$pid" && stop_pidfile epmd 5 '^epmd$'
        log "epmd: stopped (pid $pid)"
    else
        warn "epmd (pid $pid) was started with our broker but other Erlang nodes now use it ($out): leaving it running"
    fi
    rm -f "$(pidfile_path epmd)"
}

status_rabbitmq() {
    local pid
    if pid="$(owned_pid rabbitmq)"; then
        tcp_open "$RABBIT_PORT" && echo "rabbitmq  running      ours (pid $pid, node $RABBIT_NODE)  127.0.0.1:$RABBIT_PORT" ||
            echo "rabbitmq  NOT ANSWERING  ours (pid $pid, node $RABBIT_NODE)  127.0.0.1:$RABBIT_PORT"
    elif tcp_open "$RABBIT_PORT"; then
        echo "rabbitmq  running      not ours  127.0.0.1:$RABBIT_PORT"
    else
        echo "rabbitmq  not running  127.0.0.1:$RABBIT_PORT"
    fi
    if pid="$(owned_pid epmd)"; then
        echo "epmd      running      ours (pid $pid)  port $EPMD_PORT"
    fi
}

# ============================================================================================== docker

# nofile limit for containers: 20000, but never above this machine's hard limit (above it every
# container start fails).
docker_nofile() {
    local hard
    hard="$(ulimit -Hn)"
    if [[ "$hard" == "unlimited" ]] || ((hard > 20000)); then
        echo 20000
    else
        echo "$hard"
    fi
}

write_daemon_json() {
    local file="$1" nofile
    nofile="$(docker_nofile)"
    mkdir -p "$(dirname "$file")"
    cat >"$file" <<EOF
{"bridge": "none", "iptables": false, "ip-masq": false, "default-ulimits": {"nofile": {"Name": "nofile", "Hard": $nofile, "Soft": $nofile}}}
EOF
}

start_docker() {
    local pid
    if docker_answers; then
        if pid="$(owned_pid docker)"; then
            log "docker: daemon already running (ours, pid $pid)"
        else
            log "docker: a daemon already answers (not started by us): using it"
        fi
        return 0
    fi
    ensure_packages docker.io
    if ! pid="$(owned_pid docker)"; then
        local others ours
        # an if, not &&: with no pid file the loop must still succeed (set -e)
        ours="$(for f in "$ABACO_PIDS"/docker*.pid; do
            if [[ -r "$f" && "$f" != */docker.pid ]]; then tr -dc '0-9' <"$f" && echo; fi
        done)"
        others="$(pgrep -x dockerd | grep -vxF "${ours:-none}" || true)"
        if [[ -n "$others" ]]; then
            die "docker: a dockerd is running (pid $(echo "$others" | tr '\n' ' ')) but '$DOCKER info' fails; not starting a second daemon beside it"
        fi
        local conf="$ABACO_RUN/docker/daemon.json" logfile="$ABACO_LOGS/dockerd.log"
        write_daemon_json "$conf"
        ensure_run_dirs
        log "docker: starting dockerd (config $conf, log $logfile)"
        setsid "$DOCKERD" --config-file "$conf" --pidfile "$(pidfile_path docker)" \
            </dev/null >>"$logfile" 2>&1 &
        pid=$!
    fi
    wait_for --log "$ABACO_LOGS/dockerd.log" "dockerd to answer" 60 docker_answers
    log "docker: running (ours, pid $(read_pidfile docker || echo "$pid"))"
}

stop_docker() {
    if owned_pid docker >/dev/null; then
        # dockerd stops its containers (and its containerd) on TERM; give it time.
        stop_pidfile docker 30 '^dockerd$'
    elif docker_answers; then
        log "docker: daemon running but not started by us: leaving it"
    else
        log "docker: not running"
    fi
}

status_docker() {
    local pid
    if pid="$(owned_pid docker)"; then
        docker_answers && echo "docker    running      ours (pid $pid)" ||
            echo "docker    NOT ANSWERING  ours (pid $pid)"
    elif docker_answers; then
        echo "docker    running      not ours"
    else
        echo "docker    not running"
    fi
}

# ============================================================================ docker2: a second daemon

docker2_answers() { "$DOCKER" -H "unix://$DOCKER2_SOCKET" info >/dev/null 2>&1; }

start_docker2() {
    local pid
    if docker2_answers; then
        log "$DOCKER2_NAME: already answering on $DOCKER2_SOCKET${pid:+ (ours, pid $pid)}"
        return 0
    fi
    docker_answers && [[ "$("$DOCKER" info -f '{{.Name}}' 2>/dev/null)" ]] || die "$DOCKER2_NAME: start the first daemon first"
    if ip link show docker0 >/dev/null 2>&1; then
        die "$DOCKER2_NAME: a docker0 bridge exists; a daemon with \"bridge\": \"none\" beside it would delete it"
    fi
    local conf="$ABACO_RUN/$DOCKER2_NAME/daemon.json" logfile="$ABACO_LOGS/$DOCKER2_NAME.log"
    write_daemon_json "$conf"
    ensure_run_dirs
    mkdir -p "$DOCKER2_ROOT/data" "$DOCKER2_ROOT/exec"
    log "$DOCKER2_NAME: starting a second dockerd on $DOCKER2_SOCKET (data $DOCKER2_ROOT, log $logfile)"
    setsid "$DOCKERD" --config-file "$conf" --pidfile "$(pidfile_path "$DOCKER2_NAME")" -H "unix://$DOCKER2_SOCKET" \
        --data-root "$DOCKER2_ROOT/data" --exec-root "$DOCKER2_ROOT/exec" \
        --containerd-namespace "abaco-$DOCKER2_NAME" --containerd-plugins-namespace "abaco-$DOCKER2_NAME-plugins" \
        </dev/null >>"$logfile" 2>&1 &
    wait_for --log "$logfile" "the second dockerd to answer" 60 docker2_answers
    log "$DOCKER2_NAME: running (ours, pid $(read_pidfile "$DOCKER2_NAME"))"
}

stop_docker2() {
    if owned_pid "$DOCKER2_NAME" >/dev/null; then
        stop_pidfile "$DOCKER2_NAME" 30 '^dockerd$'
    else
        log "$DOCKER2_NAME: not running (or not ours)"
    fi
}

status_docker2() {
    local pid
    if pid="$(owned_pid "$DOCKER2_NAME")"; then
        docker2_answers && echo "$DOCKER2_NAME   running      ours (pid $pid)  $DOCKER2_SOCKET" ||
            echo "docker2   NOT ANSWERING  ours (pid $pid)"
    else
        echo "$DOCKER2_NAME   not running"
    fi
}

# ================================================================================================ main

main() {
    local action="${1:-}" target="${2:-all}"
    [[ -n "$action" ]] || usage
    local services
    case "$target" in
        all) services=(redis rabbitmq docker) ;;
        redis | rabbitmq | docker | docker2) services=("$target") ;;
        *) usage ;;
    esac
    local s
    case "$action" in
        start)
            for s in "${services[@]}"; do "start_$s"; done
            ;;
        stop)
            # reverse order
            local i
            for ((i = ${#services[@]} - 1; i >= 0; i--)); do "stop_${services[i]}"; done
            ;;
        status)
            for s in "${services[@]}"; do "status_$s"; done
            ;;
        *) usage ;;
    esac
}

main "$@"
