"""Every RabbitMQ conversation of Abaco (the only package that imports ``pika``).

Two halves, apart:

* the transport, which knows nothing of Abaco: ``connection`` (connections, the per-thread
  publisher, encoding), ``channel`` (a durable queue by name: publish, take one, request/reply, count,
  drain, delete) and ``consumer`` (long-running consumers and their deliveries);
* the catalogue, ``queues``: Abaco's queue names and a channel class for each conversation.

Queues are durable and declared lazily on first use; messages are persistent and JSON-encoded;
publishing waits for the broker's confirm; a message is acknowledged only once processed. Fixes of
upstream (docs/compatibility.md): ``delete()`` really deletes the queue, no same-named fanout
exchanges are created, messages are persistent, request/reply queues are exclusive server-named
queues that cannot leak, and connecting gives up after ``[rabbit] connect_timeout`` seconds.

Callers import the package: ``from actors import channels; channels.ActorMsgChannel(dbid).put_msg(...)``.
"""
from actors.channels.channel import Channel, delete_queue, queue_message_count, reply
from actors.channels.connection import (
    BinaryMessage,
    ChannelError,
    ChannelTimeoutError,
    ChannelUnroutableError,
    close_thread_connection,
    connect,
    decode_body,
    open_thread_connection,
    rabbit_uri,
)
from actors.channels.consumer import Consumer, Delivery
from actors.channels.queues import (
    ActorMsgChannel,
    CommandChannel,
    EventsChannel,
    ExecutionResultsChannel,
    SpawnerWorkerChannel,
    StandbyChannel,
    WorkerChannel,
    actor_queue_name,
    command_queue_name,
    events_queue_name,
    results_queue_name,
    spawner_worker_queue_name,
    standby_queue_name,
    worker_queue_name,
)

__all__ = [
    # transport
    "BinaryMessage", "Channel", "ChannelError", "ChannelTimeoutError", "ChannelUnroutableError", "Consumer",
    "Delivery", "close_thread_connection", "connect", "open_thread_connection", "decode_body", "delete_queue", "queue_message_count",
    "rabbit_uri", "reply",
    # catalogue
    "ActorMsgChannel", "CommandChannel", "EventsChannel", "ExecutionResultsChannel",
    "SpawnerWorkerChannel", "StandbyChannel", "WorkerChannel", "actor_queue_name", "command_queue_name",
    "events_queue_name", "results_queue_name", "spawner_worker_queue_name", "standby_queue_name",
    "worker_queue_name",
]
