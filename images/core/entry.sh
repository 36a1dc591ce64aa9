#!/bin/sh
# The core image's entry point: start one web app, chosen by the environment (as upstream's entry.sh):
#   api=reg|mes|admin|metrics   the app (`all`: every app on one port, no nginx needed)
#   server=gunicorn|dev         gunicorn (default) or Flask's development server
#   threads=N                   gunicorn worker processes (default 3), 8 threads each
#   bind=HOST:PORT              where to listen (default 0.0.0.0:5000, the container's own port; with
#                               host networking the compose file sets 127.0.0.1:<the app's port>)
# Agents do not come here: their compose `command:` runs `python3 -m actors.spawner|health|events`.
# The configuration is read from /etc/service.conf (or $ABACO_CONF).
set -eu
api="${api:-}"
server="${server:-gunicorn}"
threads="${threads:-3}"
bind="${bind:-0.0.0.0:5000}"
case "$api" in
    reg | mes | admin | metrics | all) ;;
    *)
        echo "abaco: set api=reg|mes|admin|metrics|all to start a web app (got '${api}'), or give a command, e.g. python3 -m actors.spawner" >&2
        exit 2
        ;;
esac
echo "abaco: starting the $api app ($server) on $bind; $(python3 -c 'from actors import stores; print(stores.describe_layout())')" >&2
if [ "$server" = dev ]; then
    exec python3 -m actors.web "$api" "$bind"
fi
# --timeout: a synchronous message waits up to [web] sync_timeout (300 s); large JWT headers
exec gunicorn --bind "$bind" --workers "$threads" --worker-class gthread --threads 8 \
    --timeout 330 --graceful-timeout 30 --limit-request-field_size 65536 \
    --access-logfile - --error-logfile - "actors.web:create('$api')"
