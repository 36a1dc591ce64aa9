#!/bin/sh
# Start the broker in the foreground as the rabbitmq user, with the official image's variables.
set -eu
: "${RABBITMQ_DEFAULT_USER:=guest}" "${RABBITMQ_DEFAULT_PASS:=guest}"
: "${RABBITMQ_NODENAME:=rabbit@localhost}" "${RABBITMQ_MANAGEMENT_PORT:=15672}"
export RABBITMQ_NODENAME
conf=/etc/rabbitmq/rabbitmq.conf
{
    echo "default_user = $RABBITMQ_DEFAULT_USER"
    echo "default_pass = $RABBITMQ_DEFAULT_PASS"
    # the default user may connect from other containers too (the broker's default: localhost only)
    echo "loopback_users = none"
    echo "management.tcp.port = $RABBITMQ_MANAGEMENT_PORT"
    [ -z "${RABBITMQ_NODE_IP_ADDRESS:-}" ] || echo "management.tcp.ip = $RABBITMQ_NODE_IP_ADDRESS"
} >"$conf"
chown rabbitmq:rabbitmq "$conf"
echo "[rabbitmq_management]." >/etc/rabbitmq/enabled_plugins
if [ -n "${RABBITMQ_NODE_IP_ADDRESS:-}" ]; then
    # keep the Erlang distribution port on the same address (it binds every interface otherwise)
    ip_tuple="{$(echo "$RABBITMQ_NODE_IP_ADDRESS" | tr . ,)}"
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="${RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS:-} -kernel inet_dist_use_interface $ip_tuple"
    export ERL_EPMD_ADDRESS="${ERL_EPMD_ADDRESS:-$RABBITMQ_NODE_IP_ADDRESS}"
fi
# as the rabbitmq user without Debian's `su` wrapper, so `docker stop` reaches the broker
export HOME=/var/lib/rabbitmq
# once it runs: actors' mailboxes keep their messages on disk, not in RAM (as scripts/services.sh does)
(
    as_rabbitmq="setpriv --reuid rabbitmq --regid rabbitmq --init-groups"
    $as_rabbitmq rabbitmqctl -q await_startup --timeout 300 >/dev/null 2>&1 &&
        $as_rabbitmq rabbitmqctl -q set_policy --apply-to queues abaco-mailboxes '^actor_msg_' '{"queue-mode":"lazy"}' >/dev/null 2>&1 ||
        echo "entry.sh: could not set the mailbox policy (lazy queues for actor_msg_*)" >&2
) &
exec setpriv --reuid rabbitmq --regid rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server
