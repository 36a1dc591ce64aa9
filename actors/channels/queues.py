"""Abaco's queues: their names (upstream's, so an operator's RabbitMQ dashboards read the same) and a
channel class for each conversation. Nothing outside this module spells a queue name out: callers
use the channel of the conversation (``ActorMsgChannel(dbid).message_count()``,
``WorkerChannel(worker_id).delete()``)."""
from __future__ import annotations

import logging
from typing import Any

import pika

from actors.channels.channel import Channel
from actors.channels.connection import (
    BinaryMessage,
    ChannelError,
    ChannelTimeoutError,
    ChannelUnroutableError,
    _json_body,
    decode_body,
)
from actors.config import conf

log = logging.getLogger(__name__)

RESULTS_EXPIRES_MS = 1_200_000  # result queues vanish 20 idle minutes after last use (as upstream)


def command_queue_name(name: str = "default") -> str:
    return f"command_channel_{name}"


def worker_queue_name(worker_id: str) -> str:
    return f"worker_{worker_id}"


def spawner_worker_queue_name(worker_id: str) -> str:
    return f"spawner_worker_{worker_id}"


def standby_queue_name(standby_id: str) -> str:
    return f"standby_{standby_id}"


def actor_queue_name(actor_dbid: str) -> str:
    return f"actor_msg_{actor_dbid}"


def events_queue_name(name: str = "default") -> str:
    return f"events_channel_{name}"


def results_queue_name(actor_dbid: str, execution_id: str) -> str:
    return f"results_{actor_dbid}_{execution_id}"


class CommandChannel(Channel):
    """Spawner commands; ``name`` must be one of ``[spawner] host_queues``."""

    def __init__(self, name: str = "default"):
        allowed = conf().get_list("spawner", "host_queues", ["default"])
        if name not in allowed:
            raise ChannelError(f"invalid command queue {name!r}; [spawner] host_queues allows {allowed}")
        super().__init__(command_queue_name(name))


class WorkerChannel(Channel):
    """Control messages for one worker. Its queue is the worker's: the worker declares it when it
    starts and it goes when the worker stops, so a message to a worker that is gone, or not started
    yet, is dropped (a worker not started yet reads its stop request from its record)."""

    declares = False

    def __init__(self, worker_id: str):
        super().__init__(worker_queue_name(worker_id))

    def put(self, value: Any, headers: dict | None = None) -> None:
        try:
            super().put(value, headers)
        except ChannelUnroutableError:
            log.info("%r dropped for %s: the worker is gone or not started yet", value, self.name)


class SpawnerWorkerChannel(Channel):
    """The spawner -> new worker ``READY`` handshake."""

    def __init__(self, worker_id: str):
        super().__init__(spawner_worker_queue_name(worker_id))


class StandbyChannel(Channel):
    """The spawner -> standby worker assignment: which worker of which actor it is to become. The
    spawner declares it before the standby's container starts, so an assignment sent while the
    standby is still starting waits for it."""

    def __init__(self, standby_id: str):
        super().__init__(standby_queue_name(standby_id))


class EventsChannel(Channel):
    """Actor/execution events for the events agent."""

    def __init__(self, name: str = "default"):
        super().__init__(events_queue_name(name))


class ActorMsgChannel(Channel):
    """An actor's inbox. Every message reads back as ``{"message": <str|obj|bytes>, **meta}``:
    JSON messages carry that dict as the body; bytes travel raw with ``meta`` in the headers."""

    def __init__(self, actor_dbid: str):
        super().__init__(actor_queue_name(actor_dbid))

    def put_msg(self, message: Any, meta: dict | None = None) -> None:
        meta = {k: v for k, v in (meta or {}).items() if k != "message"}
        if isinstance(message, (bytes, bytearray, memoryview)):
            self.put_bytes(bytes(message), meta)
        else:
            self.put({"message": message, **meta})

    def decode(self, properties: pika.BasicProperties, body: bytes) -> Any:
        value = decode_body(properties, body)
        if isinstance(value, BinaryMessage):
            return {"message": bytes(value), **{k: v for k, v in value.headers.items() if k != "message"}}
        return value


class ExecutionResultsChannel(Channel):
    """One execution's results: raw bytes, one datagram per message; the queue expires after
    20 idle minutes (``x-expires``)."""

    def __init__(self, actor_dbid: str, execution_id: str):
        super().__init__(results_queue_name(actor_dbid, execution_id), {"x-expires": RESULTS_EXPIRES_MS})

    def put_result(self, result: bytes) -> None:
        self.put_bytes(bytes(result))

    def get_result(self, timeout: float = 0.1) -> bytes | None:
        """The next result, or None when none arrives within ``timeout`` seconds."""
        try:
            value = self.get(timeout)
        except ChannelTimeoutError:
            return None
        return bytes(value) if isinstance(value, bytes) else _json_body(value)
