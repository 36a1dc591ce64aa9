#!/bin/sh
# Fill the ABACO_* settings into the server blocks, make a self-signed certificate when HTTPS is on
# and none is mounted, and run nginx in the foreground.
set -eu
export ABACO_LISTEN="${ABACO_LISTEN:-80}" ABACO_TLS_LISTEN="${ABACO_TLS_LISTEN:-443}"
export ABACO_REG="${ABACO_REG:-reg:5000}" ABACO_MES="${ABACO_MES:-mes:5000}" ABACO_ADMIN="${ABACO_ADMIN:-admin:5000}"
vars='${ABACO_LISTEN} ${ABACO_TLS_LISTEN} ${ABACO_REG} ${ABACO_MES} ${ABACO_ADMIN}'
out=/run/abaco-nginx
mkdir -p "$out"
rm -f "$out"/*.conf
envsubst "$vars" </etc/nginx/abaco/servers.conf.template >"$out/servers.conf"
echo "abaco-nginx: HTTP on $ABACO_LISTEN -> reg $ABACO_REG, mes $ABACO_MES, admin $ABACO_ADMIN"
if [ "$ABACO_TLS_LISTEN" != off ]; then
    tls=/etc/nginx/tls
    if [ ! -s "$tls/abaco.crt" ] || [ ! -s "$tls/abaco.key" ]; then
        echo "abaco-nginx: no certificate in $tls: making a self-signed one for localhost (local use only)"
        mkdir -p "$tls"
        openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=localhost" \
            -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -keyout "$tls/abaco.key" -out "$tls/abaco.crt" 2>/dev/null
    fi
    envsubst "$vars" </etc/nginx/abaco/tls.conf.template >"$out/tls.conf"
    echo "abaco-nginx: HTTPS on $ABACO_TLS_LISTEN"
fi
nginx -t -q
exec nginx -g 'daemon off;'
