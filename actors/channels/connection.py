"""Connections to RabbitMQ and the publishing side of every channel.

* Publishing uses one ``BlockingConnection`` + channel per thread (``BlockingConnection`` is not
  thread-safe), in publisher-confirm mode with ``mandatory=True``: ``put()`` returns only once the
  broker has taken responsibility for the message. A cached connection that turns out to be dead
  (broker restart, missed heartbeats) is replaced and the operation retried once, so a message may
  in rare cases be published twice (at-least-once).
* Connecting gives up after ``[rabbit] connect_timeout`` seconds instead of looping for ever.
* Payloads are JSON (never pickle); a binary payload travels as the raw AMQP body
  (``application/octet-stream``) with its metadata in the AMQP headers.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any, Callable
from urllib.parse import quote, urlsplit, urlunsplit

import pika
import pika.exceptions as pex

from actors.config import conf

log = logging.getLogger(__name__)

DEFAULT_URI = "amqp://127.0.0.1:5672"
DEFAULT_CONNECT_TIMEOUT = 30.0
JSON_CONTENT_TYPE = "application/json"
BINARY_CONTENT_TYPE = "application/octet-stream"
PERSISTENT = 2


class _ExpectedCloseFilter(logging.Filter):
    """pika logs every broker channel close as a warning; 404/405 are the expected answers to our
    passive look-ups (``queue_message_count``) and surface as return values."""

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



# -- connections ------------------------------------------------------------------------------

def rabbit_uri() -> str:
    """The AMQP URI from ``[rabbit] uri``, with ``[rabbit] user`` / ``password`` (env ``rabbit_user``,
    ``rabbit_password``) put in when set: they replace any credentials the URI holds."""
    c = conf()
    uri = c.get("rabbit", "uri", DEFAULT_URI)
    user, password = c.get("rabbit", "user", ""), c.get("rabbit", "password", "")
    if not (user or password):
        return uri
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    credentials = f"{quote(user or parts.username or 'guest', safe='')}:{quote(password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}"))


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
        thread's main channel."""
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


def open_thread_connection() -> None:
    """Connect the calling thread's publisher now rather than at its first publish (a standby
    worker does it while it waits, so its first message costs no connection)."""
    _publisher().channel()


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
