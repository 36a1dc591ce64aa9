"""actors.channels against a real RabbitMQ (URI from ABACO_TEST_RABBIT_URI)."""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid

import pytest

from actors import channels
from actors.channels import (
    ActorMsgChannel,
    Channel,
    ChannelError,
    ChannelTimeoutError,
    CommandChannel,
    Consumer,
    EventsChannel,
    ExecutionResultsChannel,
    SpawnerWorkerChannel,
    WorkerChannel,
    connection,
)
from tests.rabbit import queue_exists

pytestmark = pytest.mark.unit

RABBIT_URI = os.environ.get("ABACO_TEST_RABBIT_URI", "amqp://127.0.0.1:5672")


@pytest.fixture(scope="module", autouse=True)
def broker():
    """Skip (or fail, when ABACO_TEST_RABBIT_URI was given explicitly) without a broker."""
    try:
        channels.connect(RABBIT_URI, timeout=3).close()
    except ChannelError as exc:
        if "ABACO_TEST_RABBIT_URI" in os.environ:
            pytest.fail(f"RabbitMQ at ABACO_TEST_RABBIT_URI is not reachable: {exc}")
        pytest.skip(f"no RabbitMQ at {RABBIT_URI}: {exc}")


@pytest.fixture(autouse=True)
def rabbit(monkeypatch):
    monkeypatch.setenv("rabbit_uri", RABBIT_URI)
    monkeypatch.setenv("rabbit_connect_timeout", "5")
    yield
    channels.close_thread_connection()


@pytest.fixture
def qname():
    """Factory of unique queue names; every queue is deleted after the test."""
    made: list[str] = []

    def make(name: str | None = None) -> str:
        name = name or f"test_{uuid.uuid4().hex}"
        made.append(name)
        return name

    yield make
    for name in made:
        channels.delete_queue(name)


def wait_for(condition, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition}")
        time.sleep(interval)


def raw_get(queue: str):
    """basic_get one message (auto-ack) on this thread's pika channel: (method, properties, body)."""
    return connection._publisher().channel().basic_get(queue, auto_ack=True)


def declare_error_code(queue: str, **kwargs) -> int | None:
    """Declare ``queue`` on a throw-away channel; the broker's error code, or None if accepted."""
    ch = connection._publisher().connection.channel()
    try:
        ch.queue_declare(queue, **kwargs)
        return None
    except Exception as exc:  # pika's ChannelClosedByBroker; the tests do not import pika
        return exc.reply_code
    finally:
        if ch.is_open:
            ch.close()


def shut_socket(connection) -> None:
    """Kill a pika connection's TCP stream underneath it (as a broker restart would)."""
    connection._impl._transport._sock.shutdown(socket.SHUT_RDWR)


# -- basic queue operations ---------------------------------------------------------------------

def test_put_get_json_round_trip(qname):
    ch = Channel(qname())
    values = [{"a": [1, "x", None], "b": {"c": True}}, "stop", 3, [1, 2], None]
    for value in values:
        ch.put(value)
    assert [ch.get(timeout=5) for _ in values] == values


def test_messages_persistent_on_durable_queue(qname):
    name = qname()
    ch = Channel(name)
    ch.put({"k": 1})
    ch.put_bytes(b"\x00raw", {"h": "v"})

    method, props, body = raw_get(name)
    assert props.delivery_mode == 2
    assert props.content_type == "application/json"
    assert json.loads(body) == {"k": 1}

    method, props, body = raw_get(name)
    assert props.delivery_mode == 2
    assert props.content_type == "application/octet-stream"
    assert body == b"\x00raw" and props.headers == {"h": "v"}

    # the queue is durable: re-declaring it as transient is refused as inequivalent
    assert declare_error_code(name, durable=False) == 406
    assert declare_error_code(name, durable=True) is None


def test_binary_put_msg_round_trip_with_headers(qname):
    dbid = f"T_{uuid.uuid4().hex}"
    qname(channels.actor_queue_name(dbid))
    inbox = ActorMsgChannel(dbid)
    assert inbox.name == f"actor_msg_{dbid}"
    payload = bytes(range(256)) * 300  # > 64 KiB, includes NUL and non-UTF-8 bytes
    meta = {"_abaco_execution_id": "e1", "_abaco_Content_Type": "application/octet-stream",
            "_abaco_username": "jane", "x": "1"}

    inbox.put_msg(payload, meta)
    inbox.put_msg({"hello": ["world"]}, {"_abaco_execution_id": "e2", "_abaco_Content_Type": "application/json"})
    inbox.put_msg("text", {"_abaco_execution_id": "e3", "_abaco_Content_Type": "str"})

    ct = ConsumerThread(inbox)
    try:
        received = ct.received[inbox.name]
        wait_for(lambda: len(received) == 1)
        value, delivery = received[0]
        assert value == {"message": payload, **meta}
        assert type(value["message"]) is bytes
        assert delivery.headers == meta
        assert delivery.content_type == "application/octet-stream"
        assert delivery.redelivered is False
        delivery.ack()
        wait_for(lambda: len(received) == 2)
        assert received[1][0] == {"message": {"hello": ["world"]}, "_abaco_execution_id": "e2",
                                  "_abaco_Content_Type": "application/json"}
        received[1][1].ack()
        wait_for(lambda: len(received) == 3)
        assert received[2][0] == {"message": "text", "_abaco_execution_id": "e3", "_abaco_Content_Type": "str"}
        received[2][1].ack()
    finally:
        ct.finish()

    # through a plain Channel the raw body comes back as bytes carrying the headers
    Channel(inbox.name).put_bytes(b"abc", {"k": "v"})
    raw = Channel(inbox.name).get(timeout=5)
    assert raw == b"abc" and isinstance(raw, bytes) and raw.headers == {"k": "v"}


def test_get_timeout_raises(qname):
    ch = Channel(qname())
    start = time.monotonic()
    with pytest.raises(ChannelTimeoutError) as info:
        ch.get(timeout=0.3)
    elapsed = time.monotonic() - start
    assert isinstance(info.value, TimeoutError)
    assert 0.25 <= elapsed < 5


def test_nack_requeue_redelivers(qname):
    ch = Channel(qname())
    ch.put("m")
    ct = ConsumerThread(ch)
    try:
        received = ct.received[ch.name]
        wait_for(lambda: len(received) == 1)
        value, delivery = received[0]
        assert value == "m" and delivery.redelivered is False
        delivery.nack(requeue=True)
        wait_for(lambda: len(received) == 2)
        value, delivery = received[1]
        assert value == "m" and delivery.redelivered is True
        delivery.ack()
        ct.sync()
    finally:
        ct.finish()
    assert ch.message_count() == 0


def test_ack_removes_and_unacked_returns_on_close(qname):
    ch = Channel(qname())
    ch.put("acked")
    ch.put("not acked")
    ct = ConsumerThread(ch)
    try:
        received = ct.received[ch.name]
        wait_for(lambda: len(received) == 1)
        received[0][1].ack()
        wait_for(lambda: len(received) == 2)
        assert ch.message_count() == 0  # in the consumer's hands, not ready
    finally:
        ct.finish()  # the broker takes the unacked message back
    wait_for(lambda: ch.message_count() == 1)
    received[1][1].ack()  # its connection is gone: a logged no-op
    assert ch.message_count() == 1
    assert ch.get(timeout=5) == "not acked"


def test_message_count(qname):
    ch = Channel(qname())
    for i in range(3):
        ch.put(i)
    assert ch.message_count() == 3
    assert channels.queue_message_count(ch.name) == 3
    assert len(ch.drain()) == 3
    assert ch.message_count() == 0

    missing = qname()
    assert channels.queue_message_count(missing) == 0
    assert Channel(missing).message_count() == 0
    assert not queue_exists(missing)  # counting does not create it


def test_drain_returns_what_it_removed(qname):
    dbid = f"test_{uuid.uuid4().hex}"
    qname(channels.actor_queue_name(dbid))
    ch = ActorMsgChannel(dbid)  # the inbox class decodes binary messages with their headers
    ch.put_msg({"k": 1}, {"_abaco_execution_id": "e1"})
    ch.put_msg(b"\x00\x01", {"_abaco_execution_id": "e2"})
    ch.put_msg("text", {"_abaco_execution_id": "e3"})
    drained = ch.drain()
    assert [m["_abaco_execution_id"] for m in drained] == ["e1", "e2", "e3"]
    assert drained[1]["message"] == b"\x00\x01"
    assert ch.message_count() == 0
    assert ch.drain() == []
    missing = qname()
    assert Channel(missing).drain() == []  # a missing queue is not an error ...
    assert not queue_exists(missing)  # ... and draining does not create it


def test_delete_removes_queue(qname):
    ch = Channel(qname())
    ch.put("x")
    assert queue_exists(ch.name)
    ch.delete()
    assert not queue_exists(ch.name)
    ch.delete()  # missing queue: no error
    channels.delete_queue(qname())
    # the same handle declares the queue again on next use
    ch.put("y")
    assert ch.get(timeout=5) == "y"


def delete_elsewhere(name: str) -> None:
    """Delete a queue from another thread (so this thread's declaration cache is stale)."""
    done = []
    t = threading.Thread(target=lambda: (channels.delete_queue(name), channels.close_thread_connection(),
                                         done.append(True)))
    t.start()
    t.join(10)
    assert done and not queue_exists(name)


def test_put_and_get_after_queue_deleted_elsewhere_redeclare(qname, caplog):
    ch = Channel(qname())
    ch.put(1)
    assert ch.get(timeout=5) == 1
    delete_elsewhere(ch.name)
    with caplog.at_level(logging.INFO, logger="actors.channels"):
        ch.put(2)  # this thread still thinks it is declared: unroutable, re-declared, re-published
    assert any("declaring it again" in r.getMessage() for r in caplog.records)
    assert ch.get(timeout=5) == 2

    delete_elsewhere(ch.name)
    with pytest.raises(ChannelTimeoutError):  # not a 404: the queue is declared again
        ch.get(timeout=0.2)
    assert queue_exists(ch.name)


def test_closed_channel_handle_refuses(qname):
    ch = Channel(qname())
    ch.close()
    with pytest.raises(ChannelError):
        ch.put(1)


# -- request/reply ------------------------------------------------------------------------------

def test_put_sync_reply_round_trip(qname):
    ch = Channel(qname())
    seen = []

    def responder():
        request = Channel(ch.name).get(timeout=10)
        seen.append(request)
        assert channels.reply(request["reply_to"], {"echo": request["value"]})
        channels.close_thread_connection()

    t = threading.Thread(target=responder)
    t.start()
    assert ch.put_sync({"x": 1}, timeout=10) == {"echo": {"x": 1}}
    t.join(10)
    assert seen and seen[0]["value"] == {"x": 1}
    reply_to = seen[0]["reply_to"]
    assert isinstance(reply_to, str) and reply_to.startswith("amq.gen-")
    assert not queue_exists(reply_to)  # nothing leaks


def test_put_sync_timeout_leaves_nothing(qname):
    ch = Channel(qname())
    start = time.monotonic()
    with pytest.raises(ChannelTimeoutError):
        ch.put_sync("status", timeout=0.3)
    assert time.monotonic() - start < 5
    request = ch.get(timeout=5)
    assert request["value"] == "status"
    assert not queue_exists(request["reply_to"])
    assert channels.reply(request["reply_to"], "ok") is False  # requester gone: dropped, no error


# -- consumers ----------------------------------------------------------------------------------

class ConsumerThread:
    """Runs a Consumer on its own thread; callbacks record (value, delivery) per queue."""

    def __init__(self, *queues):
        self.received = {q if isinstance(q, str) else q.name: [] for q in queues}
        self.queues = queues
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.errors: list[BaseException] = []
        self.consumer: Consumer | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)
        assert not self.errors, self.errors

    def _run(self):
        try:
            self.consumer = Consumer()
            for q in self.queues:
                name = q if isinstance(q, str) else q.name
                self.consumer.subscribe(q, lambda v, d, name=name: self.received[name].append((v, d)))
            self.ready.set()
            self.consumer.run(until=self.stop.is_set, poll=0.1)
            self.consumer.close()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.errors.append(exc)
            self.ready.set()

    def sync(self):
        """Wait until everything scheduled so far ran on the consumer thread."""
        marker = threading.Event()
        self.consumer.threadsafe(marker.set)
        assert marker.wait(10)

    def finish(self):
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        assert not self.errors, self.errors


def test_consumer_two_queues_ack_from_other_thread_and_cancel(qname):
    qa, qb = qname(), qname()
    Channel(qa).put("a1")
    Channel(qa).put("a2")
    Channel(qb).put("b1")
    ct = ConsumerThread(qa, qb)
    try:
        wait_for(lambda: len(ct.received[qa]) == 1 and len(ct.received[qb]) == 1)
        assert ct.received[qa][0][0] == "a1" and ct.received[qb][0][0] == "b1"
        assert sorted(ct.consumer.subscriptions) == sorted([qa, qb])
        # prefetch 1: a2 waits in the queue while a1 is unacked
        assert channels.queue_message_count(qa) == 1
        assert len(ct.received[qa]) == 1

        ct.received[qa][0][1].ack()  # from this (non-consumer) thread
        wait_for(lambda: len(ct.received[qa]) == 2)
        assert ct.received[qa][1][0] == "a2"
        assert ct.received[qa][0][1].settled
        ct.received[qa][1][1].ack()

        ct.consumer.cancel(qb)  # scheduled on the consumer thread
        ct.sync()
        assert ct.consumer.subscriptions == [qa]
        Channel(qb).put("b2")
        assert channels.queue_message_count(qb) == 1  # nobody consumes qb any more
        ct.received[qb][0][1].ack()  # still valid after cancel
        ct.sync()
        assert len(ct.received[qb]) == 1
    finally:
        ct.finish()
    # b1 was acked (not requeued when the connection closed), b2 still waits, qa is drained
    assert channels.queue_message_count(qb) == 1
    assert Channel(qb).get(timeout=5) == "b2"
    assert channels.queue_message_count(qa) == 0


def test_consumer_decodes_actor_inbox_via_channel(qname):
    dbid = f"T_{uuid.uuid4().hex}"
    qname(channels.actor_queue_name(dbid))
    inbox = ActorMsgChannel(dbid)
    inbox.put_msg(b"\x01\x02", {"_abaco_execution_id": "e1"})
    inbox.put_msg({"j": 1}, {"_abaco_execution_id": "e2"})
    ct = ConsumerThread(inbox)
    try:
        wait_for(lambda: len(ct.received[inbox.name]) == 1)
        value, delivery = ct.received[inbox.name][0]
        assert value == {"message": b"\x01\x02", "_abaco_execution_id": "e1"}
        delivery.ack()
        wait_for(lambda: len(ct.received[inbox.name]) == 2)
        value, delivery = ct.received[inbox.name][1]
        assert value == {"message": {"j": 1}, "_abaco_execution_id": "e2"}
        delivery.ack()
    finally:
        ct.finish()
    assert inbox.message_count() == 0


def test_consumer_close_from_other_thread(qname):
    ct = ConsumerThread(qname())
    ct.consumer.close()
    ct.thread.join(10)
    assert not ct.thread.is_alive() and not ct.errors
    assert ct.consumer.subscriptions == []


def test_consumer_drops_subscription_when_queue_deleted(qname):
    q, other = qname(), qname()
    ct = ConsumerThread(q, other)
    try:
        channels.delete_queue(q)
        wait_for(lambda: ct.consumer.subscriptions == [other])
        Channel(other).put("still consuming")
        wait_for(lambda: len(ct.received[other]) == 1)
        ct.received[other][0][1].ack()
        ct.sync()
        assert not queue_exists(q)  # not re-created by a re-subscribe
    finally:
        ct.finish()


def test_consumer_reconnects_and_resubscribes(qname, caplog):
    q = qname()
    ct = ConsumerThread(q)
    try:
        with caplog.at_level(logging.WARNING, logger="actors.channels"):
            Channel(q).put("m1")
            wait_for(lambda: len(ct.received[q]) == 1)
            old_value, old_delivery = ct.received[q][0]
            assert old_value == "m1" and not old_delivery.redelivered

            shut_socket(ct.consumer._connection)
            # the broker takes m1 back when the connection drops, and redelivers it after the re-subscribe
            wait_for(lambda: len(ct.received[q]) == 2)
            value, delivery = ct.received[q][1]
            assert value == "m1" and delivery.redelivered
            assert any("reconnect" in r.getMessage() for r in caplog.records)

            old_delivery.ack()  # belongs to the dead connection: a logged no-op
            wait_for(lambda: any("connection/channel is gone" in r.getMessage() for r in caplog.records))
            delivery.ack()
            Channel(q).put("m2")
            wait_for(lambda: len(ct.received[q]) == 3)
            assert ct.received[q][2][0] == "m2"
            ct.received[q][2][1].ack()
            ct.sync()
    finally:
        ct.finish()
    assert channels.queue_message_count(q) == 0


# -- Abaco's channels ---------------------------------------------------------------------------

def test_command_channel_validates_queue_name(monkeypatch):
    monkeypatch.setenv("spawner_host_queues", "default, gpu")
    assert CommandChannel().name == "command_channel_default"
    assert CommandChannel("gpu").name == "command_channel_gpu"
    with pytest.raises(ChannelError):
        CommandChannel("nope")
    monkeypatch.setenv("spawner_host_queues", "gpu")
    with pytest.raises(ChannelError):
        CommandChannel()


def test_channel_names_follow_upstream():
    assert WorkerChannel("w1").name == "worker_w1" == channels.worker_queue_name("w1")
    assert SpawnerWorkerChannel("w1").name == "spawner_worker_w1" == channels.spawner_worker_queue_name("w1")
    assert ActorMsgChannel("T_a").name == "actor_msg_T_a" == channels.actor_queue_name("T_a")
    assert EventsChannel().name == "events_channel_default" == channels.events_queue_name()
    assert ExecutionResultsChannel("T_a", "e1").name == "results_T_a_e1" == channels.results_queue_name("T_a", "e1")


def test_execution_results_channel(qname):
    dbid, eid = f"T_{uuid.uuid4().hex}", uuid.uuid4().hex
    name = qname(channels.results_queue_name(dbid, eid))
    results = ExecutionResultsChannel(dbid, eid)
    results.put_result(b"\x00first")
    results.put_result(b"second")
    # declared with x-expires 20 min: the same arguments are accepted, others refused
    assert declare_error_code(name, durable=True, arguments={"x-expires": 1_200_000}) is None
    assert declare_error_code(name, durable=True, arguments={"x-expires": 1_000}) == 406
    first = results.get_result(timeout=5)
    assert first == b"\x00first" and type(first) is bytes
    assert results.get_result(timeout=5) == b"second"
    assert results.get_result(timeout=0.1) is None


# -- publisher reconnects -----------------------------------------------------------------------

def test_publisher_reconnects_after_cached_connection_closed(qname):
    ch = Channel(qname())
    ch.put("before")
    pub = connection._publisher()
    old = pub.connection
    old.close()
    ch.put("after")
    assert pub.connection is not old and pub.connection.is_open
    assert [ch.get(timeout=5), ch.get(timeout=5)] == ["before", "after"]


def test_publisher_retries_once_when_connection_died_unnoticed(qname, caplog):
    ch = Channel(qname())
    ch.put(1)
    old = connection._publisher().connection
    shut_socket(old)
    assert old.is_open  # pika has not noticed yet
    with caplog.at_level(logging.WARNING, logger="actors.channels"):
        ch.put(2)
    assert any("reconnecting" in r.getMessage() for r in caplog.records)
    assert connection._publisher().connection is not old
    assert [ch.get(timeout=5), ch.get(timeout=5)] == [1, 2]


def test_connect_gives_up_after_timeout():
    start = time.monotonic()
    with pytest.raises(ChannelError):
        channels.connect("amqp://127.0.0.1:1", timeout=0.5)
    assert time.monotonic() - start < 5


def test_rabbit_credentials_go_into_the_uri(monkeypatch):
    """[rabbit] user / password (env rabbit_user, rabbit_password) replace the URI's credentials."""
    monkeypatch.setenv("rabbit_uri", "amqp://old:x@127.0.0.1:5672/%2F")
    monkeypatch.setenv("rabbit_user", "abaco")
    monkeypatch.setenv("rabbit_password", "p@ss word")
    assert channels.rabbit_uri() == "amqp://abaco:p%40ss%20word@127.0.0.1:5672/%2F"
    monkeypatch.delenv("rabbit_user")
    assert channels.rabbit_uri() == "amqp://old:p%40ss%20word@127.0.0.1:5672/%2F"


def test_a_message_to_a_worker_that_is_gone_does_not_make_its_queue_again(qname):
    worker_id = f"gone{uuid.uuid4().hex}"
    control = WorkerChannel(worker_id)
    qname(control.name)
    control.put("stop")  # dropped: nobody consumes it, and nothing is left behind
    assert not queue_exists(control.name)
    with pytest.raises(channels.ChannelUnroutableError):
        control.put_sync("status", timeout=1)
    assert not queue_exists(control.name)
    # a worker's own consumer makes the queue; then its messages arrive
    ct = ConsumerThread(control)
    try:
        control.put("stop")
        wait_for(lambda: len(ct.received[control.name]) == 1)
        assert ct.received[control.name][0][0] == "stop"
        ct.received[control.name][0][1].ack()
        ct.sync()
    finally:
        ct.finish()
