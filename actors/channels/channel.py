"""A channel: one durable queue addressed by name, with everything one can do to it on the calling
thread: publish, take one message, request/reply, count, drain, delete."""
from __future__ import annotations

import logging
import time
from typing import Any

import pika
import pika.exceptions as pex

from actors.channels.connection import (
    BINARY_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    ChannelError,
    ChannelTimeoutError,
    ChannelUnroutableError,
    _json_body,
    _properties,
    _Publisher,
    _publisher,
    decode_body,
)

log = logging.getLogger(__name__)

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
    """A durable queue addressed by name through the default exchange.

    Publishing declares the queue first (``declares``); a channel whose queue belongs to its
    consumer sets ``declares = False``, so a message to a consumer that is gone does not make its
    queue again: the broker returns it (ChannelUnroutableError)."""

    declares = True

    def __init__(self, name: str, arguments: dict | None = None):
        if not name:
            raise ChannelError("a channel needs a queue name")
        self.name = name
        self.arguments = dict(arguments) if arguments else None
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def decode(self, properties: pika.BasicProperties, body: bytes) -> Any:
        """Turn a message into the value ``get`` and consumers return."""
        return decode_body(properties, body)

    def _pub(self) -> _Publisher:
        if self._closed:
            raise ChannelError(f"{self!r} is closed")
        return _publisher()

    # -- publishing
    def put(self, value: Any, headers: dict | None = None) -> None:
        """Publish ``value`` as JSON; returns once the broker confirmed it."""
        self._pub().publish(self.name, _json_body(value), _properties(JSON_CONTENT_TYPE, headers),
                            declare=self.declares, arguments=self.arguments)

    def put_bytes(self, body: bytes, headers: dict | None = None) -> None:
        """Publish a raw body with metadata in AMQP headers (str/int/bool/None/bytes/list/dict values)."""
        self._pub().publish(self.name, bytes(body), _properties(BINARY_CONTENT_TYPE, headers),
                            declare=self.declares, arguments=self.arguments)

    # -- consuming on the calling thread
    def get(self, timeout: float | None = None) -> Any:
        """Take one message (acked). Raises :class:`ChannelTimeoutError` after ``timeout`` seconds
        (``None``: wait forever). For short waits: heartbeats are not served while the thread is
        busy elsewhere (long-running consumers use :class:`~actors.channels.consumer.Consumer`)."""
        pub = self._pub()
        deadline = None if timeout is None else time.monotonic() + timeout

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
            ch.basic_ack(method.delivery_tag)
            return value

        return pub.run(op, f"get from {self.name}")

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
                if self.declares:
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
    def declare(self) -> None:
        """Create the queue (if it does not exist) without publishing to it."""
        pub = self._pub()
        pub.run(lambda ch: pub.declare(ch, self.name, self.arguments), f"declare {self.name}")

    def message_count(self) -> int:
        """Ready messages in the queue (0 if it does not exist; does not create it)."""
        return queue_message_count(self.name)

    def counts(self) -> tuple[int, int]:
        """``(ready messages, consumers)`` of the queue (``(0, 0)`` if it does not exist)."""
        return queue_counts(self.name)

    def drain(self) -> list[Any]:
        """Remove every ready message and return them decoded, oldest first (undecodable ones are
        dropped and logged). The caller learns what it removed. The messages
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
    return queue_counts(name)[0]


def queue_counts(name: str) -> tuple[int, int]:
    """``(ready messages, consumers)`` of queue ``name``; ``(0, 0)`` when it does not exist."""
    def fn(ch):
        try:
            method = ch.queue_declare(name, passive=True).method
            return method.message_count, method.consumer_count
        except pex.ChannelClosedByBroker as exc:
            if exc.reply_code in (404, 405):  # missing, or an exclusive queue of another connection
                return 0, 0
            raise
    return _publisher().admin(fn, f"count messages of {name}")


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
