#!/usr/bin/env bash
# Stop exactly what scripts/up.sh started (by the PIDs it recorded), remove the worker and actor
# containers this stack labelled as its own, then the services it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stop_pidfile prometheus 30 '^prometheus$'
stop_pidfile health 30
stop_pidfile events 30
stop_pidfile spawner 30
stop_pidfile web 30
stop_pidfile metrics 30
if docker_answers; then
    ids="$("$DOCKER" ps -aq --filter label=org.abaco.role)"
    if [[ -n "$ids" ]]; then
        log "removing $(wc -w <<<"$ids") Abaco container(s)"
        "$DOCKER" rm -f $ids >/dev/null
    fi
fi
"$ABACO_ROOT/scripts/services.sh" stop all
rm -f "$ABACO_RUN/conf"
log "Abaco is down"
