#!/usr/bin/env bash
# Stop exactly what scripts/up.sh started (by the PIDs it recorded), remove the worker and actor
# containers labelled with this stack's host id, then the services it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stop_pidfile prometheus 30 '^prometheus$'
stop_pidfile health 30
stop_pidfile events 30
stop_pidfile spawner 30
stop_pidfile web 30
stop_pidfile metrics 30
if docker_answers; then
    # only this stack's host id: another stack on this daemon (the compose stack) keeps its containers
    host_id="$(cd "$ABACO_ROOT" && ABACO_CONF="$(cat "$ABACO_RUN/conf" 2>/dev/null || echo local-dev.conf)" \
        python3 -c 'from actors.config import host_id; print(host_id())')"
    ids="$("$DOCKER" ps -aq --filter label=org.abaco.role --filter "label=org.abaco.host_id=$host_id")"
    if [[ -n "$ids" ]]; then
        log "removing $(wc -w <<<"$ids") Abaco container(s) of host id $host_id"
        "$DOCKER" rm -f $ids >/dev/null
    fi
fi
"$ABACO_ROOT/scripts/services.sh" stop all
rm -f "$ABACO_RUN/conf"
log "Abaco is down"
