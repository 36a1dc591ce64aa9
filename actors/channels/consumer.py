"""Long-running consumers: several queues consumed on one connection owned by one thread, which
keeps heartbeats flowing while the work happens on other threads, and reconnects by itself."""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable

import pika
import pika.exceptions as pex

from actors.channels.channel import Channel
from actors.channels.connection import _CONNECTION_ERRORS, ChannelError, _close_quietly, connect, decode_body

log = logging.getLogger(__name__)

class Delivery:
    """An unacknowledged message: settle it exactly once with :meth:`ack` or :meth:`nack`.

    It may be settled from any thread: the call is scheduled on the consumer's thread. If the
    connection that carried the message is gone, settling is a no-op (logged): the broker has
    already put the message back for redelivery.
    """

    def __init__(self, channel, delivery_tag: int, properties: pika.BasicProperties, redelivered: bool,
                 *, is_owner: Callable[[], bool], schedule: Callable[[Callable[[], None]], None],
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
