"""Compute hosts: heartbeats, the takeover of a lost host (once, by one host) and a spawner's
per-host capacity, against real Redis and RabbitMQ (the replacement commands are read back from a
command queue of this test's own)."""
from __future__ import annotations

import os
import time

import pytest

from actors import channels, stores
from actors.agent import Requeue
from actors.health import HealthAgent, Report
from actors.lifecycle import WorkerStatus
from actors.models import Host, Worker
from actors.store import RedisStore

pytestmark = pytest.mark.unit

DBID = "T-HOSTS_NolBaJ5y6714M"
QUEUE = "unit-hosts"


@pytest.fixture
def use_stores(monkeypatch):
    """Each named store in a Redis database of its own, as in a deployment."""
    host = os.environ.get("ABACO_TEST_REDIS_HOST", "127.0.0.1")
    port = int(os.environ.get("ABACO_TEST_REDIS_PORT", "6379"))
    made = {name: RedisStore(host, port, db) for name, db in
            (("actors_store", 12), ("workers_store", 13), ("hosts_store", 14))}
    for store in made.values():
        store.flush()
    stores._cache.update(made)
    monkeypatch.setenv("spawner_host_queues", f"default,{QUEUE}")
    monkeypatch.setenv("health_host_timeout", "10")
    yield
    for name, store in made.items():
        store.flush()
        store.close()
        stores._cache.pop(name, None)


@pytest.fixture
def commands_sent():
    queue = channels.CommandChannel(QUEUE)
    queue.drain()
    yield queue
    queue.delete()


def silent_since(host_id: str, seconds: float) -> None:
    Host.heartbeat(host_id)
    stores.hosts_store.update_fields(host_id, {"last_seen": time.time() - seconds})


def test_a_host_is_lost_after_its_timeout_and_claimed_once(use_stores):
    Host.heartbeat("alive")
    silent_since("gone", 60)
    assert [h["host_id"] for h in Host.alive(10)] == ["alive"]
    assert [h["host_id"] for h in Host.lost(10)] == ["gone"]
    assert Host.claim("gone", "alive", 10) is True
    assert Host.claim("gone", "someone-else", 10) is False  # one host takes it over
    assert Host.lost(10) == []
    Host.heartbeat("gone")  # it came back: the claim is cleared, it is alive again
    assert not stores.hosts_store["gone"]["lost_by"] and Host.count_alive(10) == 2
    assert Host.claim("gone", "alive", 10) is False


def test_the_workers_of_a_lost_host_are_replaced_on_the_others(use_stores, commands_sent, monkeypatch):
    stores.actors_store[DBID] = {"db_id": DBID, "id": "NolBaJ5y6714M", "tenant": "T-HOSTS", "image": "abacosamples/test",
                                 "queue": QUEUE, "status": "READY", "stateless": True}
    stores.workers_store[DBID] = {
        "lost-ready": {"id": "lost-ready", "status": WorkerStatus.READY, "host_id": "gone"},
        "lost-stopping": {"id": "lost-stopping", "status": WorkerStatus.SHUTDOWN_REQUESTED, "host_id": "gone"},
        "mine": {"id": "mine", "status": WorkerStatus.BUSY, "host_id": "here"},
    }
    silent_since("gone", 60)
    monkeypatch.setenv("SPAWNER_HOST_ID", "here")
    report = Report()
    HealthAgent().take_over_lost_hosts(report)

    assert report.hosts_taken_over == ["gone"]
    assert sorted(report.removed) == ["lost-ready", "lost-stopping"]
    workers = Worker.get_workers(DBID)
    new = [wid for wid, w in workers.items() if w["status"] == WorkerStatus.REQUESTED]
    assert "mine" in workers and len(new) == 1 and report.replaced == new  # the stopping one is not replaced
    command = commands_sent.get(timeout=5)
    assert command["worker_id"] == new[0] and command["actor_id"] == DBID

    monkeypatch.setenv("SPAWNER_HOST_ID", "other")
    again = Report()
    HealthAgent().take_over_lost_hosts(again)  # another host sees nothing left to take over
    assert again.hosts_taken_over == [] and commands_sent.message_count() == 0


def test_a_full_host_puts_the_command_back(use_stores, monkeypatch):
    from actors.spawner import Spawner

    monkeypatch.setenv("SPAWNER_HOST_ID", "small")
    monkeypatch.setenv("spawner_max_workers_per_host", "2")
    spawner = Spawner("default")
    stores.workers_store[DBID] = {
        "a": {"id": "a", "status": WorkerStatus.BUSY, "host_id": "small"},
        "elsewhere": {"id": "elsewhere", "status": WorkerStatus.BUSY, "host_id": "big"},
        "b": {"id": "b", "status": WorkerStatus.REQUESTED, "tenant": "T-HOSTS"},
    }
    assert spawner.accepting()
    spawner.claim_place(DBID, "b")  # the second place: stamped with the host at its first step
    worker = Worker.get(DBID, "b")
    assert worker["host_id"] == "small" and worker["status"] == WorkerStatus.SPAWNER_SETUP
    assert not spawner.accepting()
    stores.workers_store.update_fields(DBID, {"c": {"id": "c", "status": WorkerStatus.REQUESTED}})
    with pytest.raises(Requeue, match="max_workers_per_host"):
        spawner.claim_place(DBID, "c")
    assert Worker.get(DBID, "c")["status"] == WorkerStatus.REQUESTED and "host_id" not in Worker.get(DBID, "c")
