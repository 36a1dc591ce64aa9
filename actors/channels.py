"""Every RabbitMQ conversation of Abaco (the only module that imports ``pika``).

Shape (see DESIGN.md §4 and internals §2):

* Queues are durable and declared lazily on first use; messages are persistent (``delivery_mode=2``)
  and JSON-encoded (never pickle). A binary payload travels as the raw AMQP body
  (``application/octet-stream``) with its metadata in the AMQP headers.
* Publishing uses one ``BlockingConnection`` + channel per thread (``BlockingConnection`` is not
  thread-safe), in publisher-confirm mode with ``mandatory=True``: ``put()`` returns only once the
  broker has taken responsibility for the message. A cached connection that turns out to be dead
  (broker restart, missed heartbeats) is replaced and the operation retried once, so a message may
  in rare cases be published twice (at-least-once).
* ``Channel.get``/``get_one``/``put_sync`` are for short waits on the calling thread. Long-running
  consumers (spawner, worker, clientg, events) use :class:`Consumer`, which keeps heartbeats flowing
  while the work happens elsewhere and reconnects by itself.

Fixes against upstream (internals §8 items 10-12): ``delete()`` really deletes the queue, no
same-named fanout exchanges are created, messages are persistent, request/reply queues are
exclusive server-named queues that cannot leak, and connecting gives up after
``[rabbit] connect_timeout`` seconds instead of looping forever.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

import pika
import pika.exceptions as pex

from actors.config import conf

log = logging.getLogger(__name__)

DEFAULT_URI = "amqp://127.0.0.1:5672"
DEFAULT_CONNECT_TIMEOUT = 30.0
JSON_CONTENT_TYPE = "application/json"
BINARY_CONTENT_TYPE = "application/octet-stream"
PERSISTENT = 2
RESULTS_EXPIRES_MS = 1_200_000  # result queues vanish 20 idle minutes after last use (as upstream)


class _ExpectedCloseFilter(logging.Filter):
    """pika logs every broker channel close as a warning; 404/405 are the expected answers to our
    passive look-ups (``queue_exists``, ``queue_message_count``) and surface as return values."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("Received remote Channel.Close") and ("(404)" in msg or "(405)" in msg))


logging.getLogger("pika.channel").addFilter(_ExpectedCloseFilter())

# Errors after which the connection itself is unusable.
_CONNECTION_ERRORS = (pex.AMQPConnectionError, pex.ChannelWrongStateError, pex.ConnectionWrongStateError)


class ChannelError(Exception):
    """A channel operation failed (unreachable broker, refused or unroutable message, ...)."""


class ChannelTimeoutError(ChannelError, TimeoutError):
    """Nothing arrived within the timeout."""


class ChannelUnroutableError(ChannelError):
    """The broker returned the message: no queue of that name exists."""


# -- names ------------------------------------------------------------------------------------
# Upstream's queue names (internals §2.3); nothing outside this module should spell them out.

def command_queue_name(name: str = "default") -> str:
    return f"command_channel_{name}"


def worker_queue_name(worker_id: str) -> str:
    return f"worker_{worker_id}"


def spawner_worker_queue_name(worker_id: str) -> str:
    return f"spawner_worker_{worker_id}"


def actor_queue_name(actor_dbid: str) -> str:
    return f"actor_msg_{actor_dbid}"


def clients_queue_name() -> str:
    return "clients"


def events_queue_name(name: str = "default") -> str:
    return f"events_channel_{name}"


def results_queue_name(actor_dbid: str, execution_id: str) -> str:
    return f"results_{actor_dbid}_{execution_id}"


# -- connections ------------------------------------------------------------------------------

def rabbit_uri() -> str:
    """The AMQP URI from ``[rabbit] uri``."""
    return conf().get("rabbit", "uri", DEFAULT_URI)


def _redact(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def connect(uri: str | None = None, timeout: float | None = None) -> pika.BlockingConnection:
    """Open a connection, retrying with exponential backoff for up to ``timeout`` seconds
    (default ``[rabbit] connect_timeout``, 30 s). Raises :class:`ChannelError` when giving up."""
    uri = uri or rabbit_uri()
    if timeout is None:
        timeout = conf().get_float("rabbit", "connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    try:
        params = pika.URLParameters(uri)
    except ValueError as exc:
        raise ChannelError(f"invalid [rabbit] uri {_redact(uri)}: {exc}") from exc
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        try:
            return pika.BlockingConnection(params)
        except (pex.AuthenticationError, pex.ProbableAuthenticationError, pex.ProbableAccessDeniedError) as exc:
            raise ChannelError(f"RabbitMQ at {_redact(uri)} refused the credentials: {exc!r}") from exc
        except (pex.AMQPConnectionError, OSError) as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelError(f"cannot connect to RabbitMQ at {_redact(uri)} "
                                   f"within {timeout:g}s: {exc!r}") from exc
            log.warning("RabbitMQ at %s not reachable (%r); retrying in %.1fs", _redact(uri), exc, delay)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)


def _close_quietly(thing: Any) -> None:
    try:
        if thing is not None and thing.is_open:
            thing.close()
    except Exception:  # noqa: BLE001 - best effort on a connection that may already be dead
        pass


class _Publisher:
    """One thread's connection + confirm-mode channel, reconnecting once when found dead."""

    def __init__(self, uri: str):
        self.uri = uri
        self.pid = os.getpid()
        self.connection: pika.BlockingConnection | None = None
        self._channel = None
        self.declared: set[str] = set()  # queues declared on this connection

    def channel(self):
        if self.connection is None or not self.connection.is_open:
            self.reset()
            self.connection = connect(self.uri)
        if self._channel is None or not self._channel.is_open:
            ch = self.connection.channel()
            ch.confirm_delivery()
            ch.basic_qos(prefetch_count=1)
            self._channel = ch
        return self._channel

    def reset(self) -> None:
        _close_quietly(self.connection)
        self.connection = self._channel = None
        self.declared.clear()

    def run(self, op: Callable[[Any], Any], what: str, retry: bool = True) -> Any:
        """Run ``op(channel)``; translate pika errors; on a dead connection reconnect and retry once."""
        for attempt in (1, 2):
            ch = self.channel()
            try:
                return op(ch)
            except pex.UnroutableError as exc:
                raise ChannelUnroutableError(f"{what}: returned by the broker (no such queue)") from exc
            except pex.NackError as exc:
                raise ChannelError(f"{what}: the broker refused the message (nack)") from exc
            except pex.ChannelClosedByBroker as exc:
                if exc.reply_code == 404 and retry and attempt == 1 and self.declared:
                    # a queue this thread declared was deleted elsewhere: forget, declare again
                    log.info("%s: %s; declaring again", what, exc.reply_text)
                    self.declared.clear()
                    continue
                raise ChannelError(f"{what}: {exc.reply_code} {exc.reply_text}") from exc
            except pex.AMQPError as exc:
                connection_lost = isinstance(exc, _CONNECTION_ERRORS) or not (
                    self.connection is not None and self.connection.is_open)
                if not connection_lost:
                    raise ChannelError(f"{what}: {exc!r}") from exc
                self.reset()
                if not retry or attempt == 2:
                    raise ChannelError(f"{what}: connection to RabbitMQ lost: {exc!r}") from exc
                log.warning("%s: connection to RabbitMQ lost (%r); reconnecting", what, exc)

    def declare(self, ch, queue: str, arguments: dict | None) -> None:
        if queue not in self.declared:
            ch.queue_declare(queue, durable=True, arguments=arguments)
            self.declared.add(queue)

    def publish(self, queue: str, body: bytes, properties: pika.BasicProperties,
                declare: bool = True, arguments: dict | None = None) -> None:
        def op(ch):
            if declare:
                self.declare(ch, queue, arguments)
            try:
                ch.basic_publish("", queue, body, properties, mandatory=True)
            except pex.UnroutableError:
                if not declare:
                    raise
                log.info("queue %s vanished since this thread declared it; declaring it again", queue)
                self.declared.discard(queue)
                self.declare(ch, queue, arguments)
                ch.basic_publish("", queue, body, properties, mandatory=True)
        self.run(op, f"publish to {queue}")

    def admin(self, fn: Callable[[Any], Any], what: str) -> Any:
        """Run ``fn`` on a short-lived channel, so a broker error (404, 405) cannot close the
        thread's main channel and with it any unacked ``get_one`` deliveries."""
        def op(_ch):
            tmp = self.connection.channel()
            try:
                return fn(tmp)
            finally:
                _close_quietly(tmp)
        return self.run(op, what)


_local = threading.local()


def _publisher() -> _Publisher:
    """This thread's publisher (a new one after fork or when ``[rabbit] uri`` changed)."""
    uri = rabbit_uri()
    pub = getattr(_local, "publisher", None)
    if pub is None or pub.pid != os.getpid() or pub.uri != uri:
        if pub is not None and pub.pid == os.getpid():
            pub.reset()
        pub = _local.publisher = _Publisher(uri)  # after fork: never touch the parent's socket
    return pub


def close_thread_connection() -> None:
    """Close the calling thread's publisher connection (call when a thread ends)."""
    pub = getattr(_local, "publisher", None)
    if pub is not None and pub.pid == os.getpid():
        pub.reset()
    _local.publisher = None


# -- encoding ---------------------------------------------------------------------------------

class BinaryMessage(bytes):
    """A raw (``application/octet-stream``) body; ``.headers`` holds the AMQP headers."""

    headers: dict

    def __new__(cls, body: bytes, headers: dict | None = None):
        obj = super().__new__(cls, body)
        obj.headers = dict(headers or {})
        return obj


def _properties(content_type: str, headers: dict | None) -> pika.BasicProperties:
    return pika.BasicProperties(content_type=content_type, delivery_mode=PERSISTENT,
                                headers=dict(headers) if headers else None)


def _json_body(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


def decode_body(properties: pika.BasicProperties, body: bytes) -> Any:
    """JSON body -> value; octet-stream body -> :class:`BinaryMessage`. Raises ``ValueError``."""
    if properties.content_type == BINARY_CONTENT_TYPE:
        return BinaryMessage(body, properties.headers)
    return json.loads(body)


# -- deliveries -------------------------------------------------------------------------------

class Delivery:
    """An unacknowledged message: settle it exactly once with :meth:`ack` or :meth:`nack`.

    Deliveries from a :class:`Consumer` may be settled from any thread (the call is scheduled on
    the consumer thread). Deliveries from :meth:`Channel.get_one` must be settled on the thread
    that received them. If the connection that carried the message is gone, settling is a no-op
    (logged): the broker has already put the message back for redelivery.
    """

    def __init__(self, channel, delivery_tag: int, properties: pika.BasicProperties, redelivered: bool,
                 *, is_owner: Callable[[], bool], schedule: Callable[[Callable[[], None]], None] | None = None,
                 on_settled: Callable[[int], None] | None = None, queue: str = ""):
        self.queue = queue
        self.delivery_tag = delivery_tag
        self.headers: dict = dict(properties.headers or {})
        self.redelivered = bool(redelivered)
        self.content_type: str | None = properties.content_type
        self._channel = channel
        self._is_owner = is_owner
        self._schedule = schedule
        self._on_settled = on_settled
        self.settled = False

    def ack(self) -> None:
        """Acknowledge: the broker forgets the message."""
        self._settle(True, False)

    def nack(self, requeue: bool = True) -> None:
        """Reject: back to the queue (marked redelivered) or, with ``requeue=False``, dropped."""
        self._settle(False, requeue)

    def _settle(self, ack: bool, requeue: bool) -> None:
        if not self._is_owner():
            if self._schedule is None:
                raise ChannelError("a get_one() delivery must be settled on the thread that received it")
            self._schedule(lambda: self._settle(ack, requeue))
            return
        if self.settled:
            log.debug("delivery %s of %s settled twice; ignored", self.delivery_tag, self.queue)
            return
        self.settled = True
        try:
            if not self._channel.is_open:
                log.warning("cannot %s message %s of %s: its connection/channel is gone; "
                            "the broker redelivers it", "ack" if ack else "nack", self.delivery_tag, self.queue)
            elif ack:
                self._channel.basic_ack(self.delivery_tag)
            else:
                self._channel.basic_nack(self.delivery_tag, requeue=requeue)
        except pex.AMQPError as exc:
            log.warning("%s of message %s of %s failed (%r); the broker redelivers it",
                        "ack" if ack else "nack", self.delivery_tag, self.queue, exc)
        finally:
            if self._on_settled is not None:
                self._on_settled(self.delivery_tag)


def _consume_one(ch, queue: str, timeout: float | None):
    """Wait up to ``timeout`` seconds (None: forever) for one message of ``queue`` on ``ch``;
    returns ``(method, properties, body)`` unacked."""
    gen = ch.consume(queue, inactivity_timeout=None if timeout is None else max(timeout, 0.0))
    try:
        item = next(gen, None)
    finally:
        if ch.is_open:
            ch.cancel()  # rejects nothing: with prefetch 1 the one message is in our hands
    if item is None:
        raise ChannelError(f"consuming {queue}: the broker cancelled the consumer (queue deleted?)")
    if item[0] is None:
        raise ChannelTimeoutError(f"no message on {queue} within {timeout:.3g}s")
    return item


# -- channels ---------------------------------------------------------------------------------

class Channel:
    """A durable queue addressed by name through the default exchange."""

    def __init__(self, name: str, arguments: dict | None = None):
        if not name:
            raise ChannelError("a channel needs a queue name")
        self.name = name
        self.arguments = dict(arguments) if arguments else None
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def decode(self, properties: pika.BasicProperties, body: bytes) -> Any:
        """Turn a message into the value ``get``/``get_one``/consumers return."""
        return decode_body(properties, body)

    def _pub(self) -> _Publisher:
        if self._closed:
            raise ChannelError(f"{self!r} is closed")
        return _publisher()

    # -- publishing
    def put(self, value: Any, headers: dict | None = None) -> None:
        """Publish ``value`` as JSON; returns once the broker confirmed it."""
        self._pub().publish(self.name, _json_body(value), _properties(JSON_CONTENT_TYPE, headers),
                            arguments=self.arguments)

    def put_bytes(self, body: bytes, headers: dict | None = None) -> None:
        """Publish a raw body with metadata in AMQP headers (str/int/bool/None/bytes/list/dict values)."""
        self._pub().publish(self.name, bytes(body), _properties(BINARY_CONTENT_TYPE, headers),
                            arguments=self.arguments)

    # -- consuming on the calling thread
    def _receive(self, timeout: float | None, ack: bool):
        pub = self._pub()
        deadline = None if timeout is None else time.monotonic() + timeout
        tid = threading.get_ident()

        def op(ch):
            pub.declare(ch, self.name, self.arguments)
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            method, properties, body = _consume_one(ch, self.name, remaining)
            try:
                value = self.decode(properties, body)
            except ValueError as exc:
                ch.basic_reject(method.delivery_tag, requeue=False)
                log.error("dropped an undecodable message from %s: %r", self.name, exc)
                raise ChannelError(f"undecodable message on {self.name} (dropped): {exc}") from exc
            if ack:
                ch.basic_ack(method.delivery_tag)
                return value
            return value, Delivery(ch, method.delivery_tag, properties, method.redelivered,
                                   is_owner=lambda: threading.get_ident() == tid, queue=self.name)

        return pub.run(op, f"get from {self.name}")

    def get(self, timeout: float | None = None) -> Any:
        """Take one message (acked). Raises :class:`ChannelTimeoutError` after ``timeout`` seconds
        (``None``: wait forever)."""
        return self._receive(timeout, ack=True)

    def get_one(self, timeout: float | None = None) -> tuple[Any, Delivery]:
        """Take one message without acking it: returns ``(value, delivery)``. For short waits
        only: heartbeats are not served while the thread is busy elsewhere (use :class:`Consumer`)."""
        return self._receive(timeout, ack=False)

    def put_sync(self, value: Any, timeout: float) -> Any:
        """Request/reply: publish ``{"value": value, "reply_to": <queue>}`` and wait up to
        ``timeout`` seconds for one reply. The reply queue is exclusive, auto-delete and
        server-named on this thread's connection, so it cannot outlive the call."""
        pub = self._pub()
        deadline = time.monotonic() + timeout
        # the declare finds out (and repairs, once) a dead cached connection ...
        reply_queue = pub.run(lambda ch: ch.queue_declare("", exclusive=True, auto_delete=True).method.queue,
                              f"declare reply queue for {self.name}")

        def op(ch):
            try:
                pub.declare(ch, self.name, self.arguments)
                ch.basic_publish("", self.name, _json_body({"value": value, "reply_to": reply_queue}),
                                 _properties(JSON_CONTENT_TYPE, None), mandatory=True)
                method, properties, body = _consume_one(ch, reply_queue, max(deadline - time.monotonic(), 0.0))
                ch.basic_ack(method.delivery_tag)
                try:
                    return decode_body(properties, body)
                except ValueError as exc:
                    raise ChannelError(f"undecodable reply on {reply_queue}: {exc}") from exc
            finally:
                try:
                    if ch.is_open:
                        ch.queue_delete(reply_queue)  # belt and braces: auto-delete already removed it
                except pex.AMQPError:
                    pass  # exclusive: it goes with the connection anyway

        # ... but a request is never published twice: it may have side effects
        return pub.run(op, f"put_sync to {self.name}", retry=False)

    # -- administration
    def message_count(self) -> int:
        """Ready messages in the queue (0 if it does not exist; does not create it)."""
        return queue_message_count(self.name)

    def purge(self) -> int:
        """Drop all ready messages; returns how many."""
        def fn(ch):
            try:
                return ch.queue_purge(self.name).method.message_count
            except pex.ChannelClosedByBroker as exc:
                if exc.reply_code == 404:
                    return 0
                raise
        return self._pub().admin(fn, f"purge {self.name}")

    def drain(self) -> list[Any]:
        """Remove every ready message and return them decoded, oldest first (undecodable ones are
        dropped and logged). Unlike :meth:`purge` the caller learns what it removed. The messages
        are acknowledged together at the end, so if the connection breaks midway they all stay."""
        def fn(ch):
            taken, last_tag = [], None
            while True:
                try:
                    method, properties, body = ch.basic_get(self.name, auto_ack=False)
                except pex.ChannelClosedByBroker as exc:
                    if exc.reply_code == 404:
                        return taken
                    raise
                if method is None:
                    break
                last_tag = method.delivery_tag
                try:
                    taken.append(self.decode(properties, body))
                except ValueError as exc:
                    log.error("dropped an undecodable message from %s: %r", self.name, exc)
            if last_tag is not None:
                ch.basic_ack(last_tag, multiple=True)
            return taken
        return self._pub().admin(fn, f"drain {self.name}")

    def delete(self) -> None:
        """Delete the queue and whatever it holds (upstream only closed the connection)."""
        delete_queue(self.name)

    def close(self) -> None:
        """Release this handle. Connections are per thread and shared; see :func:`close_thread_connection`."""
        self._closed = True


def queue_message_count(name: str) -> int:
    """Ready messages in queue ``name``; 0 when it does not exist."""
    def fn(ch):
        try:
            return ch.queue_declare(name, passive=True).method.message_count
        except pex.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return 0
            if exc.reply_code == 405:  # exclusive queue of another connection
                return 0
            raise
    return _publisher().admin(fn, f"count messages of {name}")


def queue_exists(name: str) -> bool:
    """Whether queue ``name`` exists (an exclusive queue of another connection counts)."""
    def fn(ch):
        try:
            ch.queue_declare(name, passive=True)
            return True
        except pex.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return False
            if exc.reply_code == 405:
                return True
            raise
    return _publisher().admin(fn, f"look up {name}")


def delete_queue(name: str) -> None:
    """Delete queue ``name`` with its messages; a missing queue is not an error."""
    def fn(ch):
        try:
            ch.queue_delete(name)
        except pex.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
    pub = _publisher()
    pub.admin(fn, f"delete {name}")
    pub.declared.discard(name)


def reply(reply_to: str, value: Any) -> bool:
    """Answer a ``put_sync`` request. Returns False (logged) when the requester is gone."""
    try:
        _publisher().publish(reply_to, _json_body(value), _properties(JSON_CONTENT_TYPE, None), declare=False)
    except ChannelUnroutableError:
        log.info("reply to %s dropped: the requester stopped waiting", reply_to)
        return False
    return True


# -- Abaco's channels -------------------------------------------------------------------------

class CommandChannel(Channel):
    """Spawner commands; ``name`` must be one of ``[spawner] host_queues``."""

    def __init__(self, name: str = "default"):
        allowed = conf().get_list("spawner", "host_queues", ["default"])
        if name not in allowed:
            raise ChannelError(f"invalid command queue {name!r}; [spawner] host_queues allows {allowed}")
        super().__init__(command_queue_name(name))


class WorkerChannel(Channel):
    """Control messages for one worker."""

    def __init__(self, worker_id: str):
        super().__init__(worker_queue_name(worker_id))


class SpawnerWorkerChannel(Channel):
    """The spawner -> new worker ``READY`` handshake."""

    def __init__(self, worker_id: str):
        super().__init__(spawner_worker_queue_name(worker_id))


class ClientsChannel(Channel):
    """Requests to clientg (``put_sync`` envelopes)."""

    def __init__(self):
        super().__init__(clients_queue_name())


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


# -- long-running consumers -------------------------------------------------------------------

class _Subscription:
    def __init__(self, queue: str, callback: Callable[[Any, Delivery], None], prefetch: int,
                 arguments: dict | None, decode: Callable[[pika.BasicProperties, bytes], Any]):
        self.queue, self.callback, self.prefetch = queue, callback, prefetch
        self.arguments, self.decode = arguments, decode
        self.channel = None
        self.tag: str | None = None
        self.unacked: set[int] = set()


class Consumer:
    """Consume several queues on one connection, owned by one thread.

    The owner is the thread that created the consumer until :meth:`run` is called, then the thread
    running it. Callbacks run on the owner thread and should hand long work to other threads;
    :meth:`run` keeps serving I/O (heartbeats) meanwhile. ``subscribe``/``cancel``/``close`` and
    ``Delivery.ack``/``nack`` called from other threads are scheduled on the owner thread and take
    effect during ``run()``. An exception raised by a callback propagates out of ``run()``.

    If the connection is lost during ``run()``, it reconnects with backoff and re-subscribes;
    deliveries of the old connection become invalid (settling them is a logged no-op) and the broker
    redelivers them.
    """

    def __init__(self, uri: str | None = None):
        self._uri = uri
        self._connection: pika.BlockingConnection | None = None
        self._subs: dict[str, _Subscription] = {}
        self._retired: list[_Subscription] = []  # cancelled, channel kept open for unacked deliveries
        self._pending: deque[Callable[[], None]] = deque()
        self._lock = threading.Lock()
        self._owner = threading.get_ident()
        self._stop = False
        self._lost = False  # reconnecting after a loss (for the log)

    @property
    def subscriptions(self) -> list[str]:
        """Queues currently consumed (a queue deleted under us drops out)."""
        return list(self._subs)

    def _on_owner(self) -> bool:
        return threading.get_ident() == self._owner

    # -- scheduling
    def threadsafe(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the consumer thread (at once if called there)."""
        if self._on_owner():
            fn()
            return
        with self._lock:
            self._pending.append(fn)
            connection = self._connection
        if connection is not None:
            try:
                connection.add_callback_threadsafe(self._drain)
            except pex.AMQPError:
                pass  # run() drains after reconnecting

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    return
                fn = self._pending.popleft()
            try:
                fn()
            except _CONNECTION_ERRORS:
                raise
            except Exception:  # noqa: BLE001 - one bad callback must not stop the consumer
                log.exception("scheduled consumer call %r failed", fn)

    # -- subscriptions
    def subscribe(self, queue: str | Channel, callback: Callable[[Any, Delivery], None],
                  prefetch: int = 1, arguments: dict | None = None) -> None:
        """Consume ``queue`` (a name, or a :class:`Channel` whose arguments and decoding are used);
        ``callback(value, delivery)`` runs on the consumer thread for each message."""
        if not self._on_owner():
            self.threadsafe(lambda: self.subscribe(queue, callback, prefetch, arguments))
            return
        if isinstance(queue, Channel):
            name, decode, arguments = queue.name, queue.decode, arguments or queue.arguments
        else:
            name, decode = queue, decode_body
        if name in self._subs:
            self.cancel(name)
        sub = _Subscription(name, callback, prefetch, arguments, decode)
        self._subs[name] = sub
        self._ensure_connected()

    def cancel(self, queue_name: str) -> None:
        """Stop consuming ``queue_name``; its unacked deliveries stay valid until settled."""
        if not self._on_owner():
            self.threadsafe(lambda: self.cancel(queue_name))
            return
        sub = self._subs.pop(queue_name, None)
        if sub is None:
            return
        if sub.channel is not None and sub.channel.is_open:
            try:
                sub.channel.basic_cancel(sub.tag)
            except pex.AMQPError as exc:
                log.warning("cancelling consumer of %s failed: %r", queue_name, exc)
        self._retired.append(sub)
        self._reap()

    def _start(self, sub: _Subscription) -> None:
        ch = self._connection.channel()
        try:
            ch.queue_declare(sub.queue, durable=True, arguments=sub.arguments)
            ch.basic_qos(prefetch_count=sub.prefetch)
            ch.add_on_cancel_callback(lambda _frame: self._on_broker_cancel(sub))
            sub.channel, sub.unacked = ch, set()
            sub.tag = ch.basic_consume(sub.queue, lambda c, m, p, b: self._deliver(sub, c, m, p, b))
        except pex.ChannelClosedByBroker as exc:
            self._subs.pop(sub.queue, None)
            raise ChannelError(f"cannot consume {sub.queue}: {exc.reply_code} {exc.reply_text}") from exc

    def _deliver(self, sub: _Subscription, ch, method, properties, body) -> None:
        sub.unacked.add(method.delivery_tag)
        delivery = Delivery(ch, method.delivery_tag, properties, method.redelivered,
                            is_owner=self._on_owner, schedule=self.threadsafe,
                            on_settled=lambda tag: self._settled(sub, tag), queue=sub.queue)
        try:
            value = sub.decode(properties, body)
        except ValueError as exc:
            log.error("dropped an undecodable message from %s: %r", sub.queue, exc)
            delivery.nack(requeue=False)
            return
        sub.callback(value, delivery)

    def _settled(self, sub: _Subscription, tag: int) -> None:
        sub.unacked.discard(tag)
        if sub in self._retired:
            self._reap()

    def _on_broker_cancel(self, sub: _Subscription) -> None:
        log.warning("the broker cancelled the consumer of %s (queue deleted?); not re-subscribing", sub.queue)
        if self._subs.get(sub.queue) is sub:
            del self._subs[sub.queue]
            self._retired.append(sub)

    def _reap(self) -> None:
        for sub in list(self._retired):
            if not sub.unacked or sub.channel is None or not sub.channel.is_open:
                self._retired.remove(sub)
                _close_quietly(sub.channel)

    # -- the loop
    def _ensure_connected(self) -> None:
        if self._connection is None or not self._connection.is_open:
            self._forget_connection()
            self._connection = connect(self._uri)
            if self._lost:
                self._lost = False
                log.warning("consumer reconnected to RabbitMQ; re-subscribing to %s", ", ".join(self._subs) or "nothing")
        for sub in list(self._subs.values()):
            if sub.channel is None or not sub.channel.is_open:
                if sub.channel is not None:
                    log.warning("channel consuming %s was closed; re-subscribing", sub.queue)
                self._start(sub)
        self._reap()

    def _forget_connection(self) -> None:
        _close_quietly(self._connection)
        self._connection = None
        for sub in self._subs.values():
            sub.channel, sub.tag, sub.unacked = None, None, set()
        self._retired.clear()

    def run(self, until: Callable[[], bool] = lambda: False, poll: float = 0.5) -> None:
        """Serve I/O (deliveries, heartbeats, scheduled calls) until ``until()`` is true or
        :meth:`close` is called; the calling thread becomes the owner."""
        self._owner = threading.get_ident()
        outage = 0
        while not self._stop and not until():
            try:
                self._ensure_connected()
                outage = 0
                self._drain()
                self._connection.process_data_events(time_limit=poll)
                self._drain()
            except _CONNECTION_ERRORS as exc:
                if self._stop:
                    break
                log.warning("consumer lost its connection to RabbitMQ (%r); reconnecting", exc)
                self._lost = True
                self._forget_connection()
            except ChannelError as exc:
                # connect() gave up after its timeout: a long broker outage must not end an agent;
                # keep trying, and keep checking until() so a stop request is still honoured
                outage += 1
                log.error("RabbitMQ still unreachable (%s); retrying (outage round %d)", exc, outage)
                self._lost = True
                time.sleep(min(5.0, poll * outage))
        if self._stop:
            self._close_now()

    def close(self) -> None:
        """Stop consuming and close the connection (unacked messages go back to their queues)."""
        if not self._on_owner():
            self._stop = True  # run() closes once the current I/O round returns ...
            self.threadsafe(lambda: None)  # ... which this wake-up makes immediate
            return
        self._close_now()

    def _close_now(self) -> None:
        self._stop = True
        for sub in self._subs.values():
            try:
                if sub.channel is not None and sub.channel.is_open:
                    sub.channel.basic_cancel(sub.tag)
            except pex.AMQPError:
                pass
        self._subs.clear()
        self._forget_connection()
        with self._lock:
            self._pending.clear()
