# shellcheck shell=bash
# Shared helpers for the project's shell scripts. Source it; do not run it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
#
# What it gives:
#   ABACO_ROOT            the repository root (override with the env var of the same name)
#   ABACO_RUN             $ABACO_ROOT/.run: pids in .run/pids/<name>.pid, logs in .run/logs/
#   ABACO_BUILD           $ABACO_ROOT/.build: build outputs (wheelhouse, root filesystems, caches)
#   DOCKER                the Docker CLI; always Debian's /usr/bin/docker (BuildKit and the 20.10 engine
#                         work with it, the newer CLI earlier on PATH does not), override with ABACO_DOCKER
#   log/warn/die          messages on stderr, prefixed "==>", "WARNING:", "ERROR:"
#   ensure_packages       apt-get install what is missing (apt-get update at most once per run)
#   wait_for              poll a command until it succeeds or a deadline passes
#   pid_alive, pidfile_path, read_pidfile, stop_pidfile
#   timer_start/timer_elapsed  wall-clock timings for progress lines

if [[ -n "${_ABACO_LIB_SOURCED:-}" ]]; then
    return 0
fi
_ABACO_LIB_SOURCED=1

# --- locations --------------------------------------------------------------------------------------

_abaco_find_root() {
    local here
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    # scripts/lib.sh lives one level below the root.
    (cd "$here/.." && pwd)
}

ABACO_ROOT="${ABACO_ROOT:-$(_abaco_find_root)}"
ABACO_RUN="$ABACO_ROOT/.run"
ABACO_PIDS="$ABACO_RUN/pids"
ABACO_LOGS="$ABACO_RUN/logs"
ABACO_BUILD="$ABACO_ROOT/.build"
DOCKER="${ABACO_DOCKER:-/usr/bin/docker}"
export ABACO_ROOT ABACO_RUN ABACO_PIDS ABACO_LOGS ABACO_BUILD DOCKER

ensure_run_dirs() {
    mkdir -p "$ABACO_PIDS" "$ABACO_LOGS"
}

# --- messages ---------------------------------------------------------------------------------------

log()  { printf '==> %s\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Print the last lines of a log file (if it exists) to stderr, indented.
show_log_tail() {
    local file="$1" lines="${2:-20}"
    if [[ -n "$file" && -r "$file" ]]; then
        printf -- '---- last %s lines of %s ----\n' "$lines" "$file" >&2
        tail -n "$lines" "$file" | sed 's/^/    /' >&2
        printf -- '----\n' >&2
    fi
}

# --- timing -----------------------------------------------------------------------------------------

# timer_start VAR ; ... ; timer_elapsed VAR  -> prints seconds with one decimal, e.g. "12.3"
timer_start() { printf -v "$1" '%s' "$(date +%s.%N)"; }
timer_elapsed() {
    local start="${!1}" now
    now="$(date +%s.%N)"
    awk -v a="$start" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}

# --- packages ---------------------------------------------------------------------------------------

# Is this Debian package installed?
package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# ensure_packages pkg...: installs the missing ones with apt-get. `apt-get update` runs at most once per
# run: the marker ABACO_APT_UPDATED is exported so that scripts started from this one skip it too.
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    [[ $EUID -eq 0 ]] || die "packages missing (${missing[*]}) and not root: install them with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if [[ -z "${ABACO_APT_UPDATED:-}" ]]; then
        log "apt-get update (once per run)..."
        apt-get update
        export ABACO_APT_UPDATED=1
    fi
    log "installing ${missing[*]} with apt-get..."
    apt-get install -y --no-install-recommends "${missing[@]}"
}

# --- waiting ----------------------------------------------------------------------------------------

# wait_for [--log FILE] <description> <timeout-seconds> <command...>
# Runs the command (quietly) about once a second until it succeeds, printing a dot per try. On timeout it
# fails with a clear message and, if --log was given, the tail of that log.
wait_for() {
    local logfile=""
    if [[ "${1:-}" == "--log" ]]; then
        logfile="$2"
        shift 2
    fi
    local desc="$1" timeout="$2"
    shift 2
    local start now deadline
    start="$(date +%s)"
    deadline=$((start + timeout))
    printf '==> waiting for %s (up to %ss) ' "$desc" "$timeout" >&2
    while true; do
        if "$@" >/dev/null 2>&1; then
            now="$(date +%s)"
            printf ' ready after %ss\n' "$((now - start))" >&2
            return 0
        fi
        now="$(date +%s)"
        if ((now >= deadline)); then
            printf ' timed out\n' >&2
            show_log_tail "$logfile" 30
            printf 'ERROR: %s was not ready after %ss (check: %s)\n' "$desc" "$timeout" "$*" >&2
            return 1
        fi
        printf '.' >&2
        sleep 1
    done
}

# http_answers URL: true when an HTTP server answers at URL, whatever the status code.
http_answers() {
    local code
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1")" || true
    [[ "$code" =~ ^[1-5][0-9][0-9]$ ]]
}

# --- processes --------------------------------------------------------------------------------------

# pid_alive PID: true if the process exists and is not a zombie.
pid_alive() {
    local pid="${1:-}" state
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # /proc/PID/stat is "pid (comm) state ...": comm may hold spaces, so read the state after the last ')'.
    state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null || true)"
    [[ "$state" != "Z" && "$state" != "X" ]]
}

pidfile_path() { printf '%s/%s.pid' "$ABACO_PIDS" "$1"; }

# read_pidfile NAME: prints the PID recorded in .run/pids/NAME.pid (nothing if there is none).
read_pidfile() {
    local file
    file="$(pidfile_path "$1")"
    [[ -r "$file" ]] || return 1
    local pid
    pid="$(tr -dc '0-9' <"$file")"
    [[ -n "$pid" ]] || return 1
    printf '%s' "$pid"
}

# write_pidfile NAME PID
write_pidfile() {
    ensure_run_dirs
    printf '%s\n' "$2" >"$(pidfile_path "$1")"
}

# owned_pid NAME: prints the PID from our pidfile if that process is still alive; removes a stale pidfile.
owned_pid() {
    local name="$1" pid
    pid="$(read_pidfile "$name")" || return 1
    if pid_alive "$pid"; then
        printf '%s' "$pid"
        return 0
    fi
    rm -f "$(pidfile_path "$name")"
    return 1
}

# stop_pidfile NAME [TIMEOUT] [COMM-REGEX]
# Stops only the process whose PID is in .run/pids/NAME.pid: TERM, wait up to TIMEOUT seconds (20), then
# KILL. If COMM-REGEX is given and the process's name does not match it, the PID was reused by something
# else: it is left alone. The pidfile is removed in every case.
stop_pidfile() {
    local name="$1" timeout="${2:-20}" comm_re="${3:-}"
    local file pid comm i
    file="$(pidfile_path "$name")"
    if ! pid="$(read_pidfile "$name")"; then
        rm -f "$file"
        return 0
    fi
    if ! pid_alive "$pid"; then
        info "$name: pid $pid already gone"
        rm -f "$file"
        return 0
    fi
    if [[ -n "$comm_re" ]]; then
        comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
        if [[ ! "$comm" =~ $comm_re ]]; then
            warn "$name: pid $pid is now '$comm', not ours any more; leaving it alone"
            rm -f "$file"
            return 0
        fi
    fi
    printf '==> stopping %s (pid %s) ' "$name" "$pid" >&2
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 4; i++)); do
        pid_alive "$pid" || break
        ((i % 4 == 0)) && printf '.' >&2
        sleep 0.25
    done
    if pid_alive "$pid"; then
        printf ' still alive after %ss, sending KILL' "$timeout" >&2
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 20; i++)); do
            pid_alive "$pid" || break
            sleep 0.25
        done
    fi
    if pid_alive "$pid"; then
        printf ' FAILED\n' >&2
        rm -f "$file"
        die "$name (pid $pid) did not stop"
    fi
    printf ' stopped\n' >&2
    rm -f "$file"
}

# --- docker -----------------------------------------------------------------------------------------

docker_answers() { "$DOCKER" info >/dev/null 2>&1; }

image_exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# Make sure a Docker daemon answers, starting ours through services.sh if none does.
require_docker() {
    docker_answers && return 0
    log "no Docker daemon answers; starting one"
    "$ABACO_ROOT/scripts/services.sh" start docker
    docker_answers || die "Docker daemon still not answering"
}

# --- files ------------------------------------------------------------------------------------------

# safe_rmtree DIR: removes DIR, but refuses when something is mounted below it (a failed debootstrap can
# leave /proc or /sys mounted inside its target; rm -rf there would reach the host's files).
safe_rmtree() {
    local dir="$1"
    [[ -e "$dir" ]] || return 0
    dir="$(cd "$dir" && pwd -P)"
    [[ "$dir" != "/" && -n "$dir" ]] || die "refusing to remove '$dir'"
    local mounts
    mounts="$(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts)"
    if [[ -n "$mounts" ]]; then
        log "unmounting leftovers under $dir"
        # deepest first
        printf '%s\n' "$mounts" | sort -r | while read -r m; do umount -l "$m" || true; done
        mounts="$(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts)"
        [[ -z "$mounts" ]] || die "still mounted below $dir: $mounts"
    fi
    rm -rf --one-file-system "$dir"
}
