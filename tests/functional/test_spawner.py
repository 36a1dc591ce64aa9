"""The spawner's start of a worker, against a real Docker engine and RabbitMQ: a worker whose
container stops before reporting ready is noticed at once (not at the 60 s timeout), and is replaced
by a fresh one instead of putting the actor in ERROR."""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("ABACO_CONF", str(ROOT / "local-dev.conf"))

from actors import channels  # noqa: E402
from actors.lifecycle import WorkerStatus  # noqa: E402
from actors.models import Actor, Worker  # noqa: E402
from actors.spawner import Spawner, WorkerLostWhileStarting, WorkerStartCancelled, WorkerStartError  # noqa: E402
from tests.functional.conftest import TENANT, TEST_IMAGE, wait_for_actor_status  # noqa: E402


@pytest.fixture
def exited_container(docker_client):
    container = docker_client.containers.run(TEST_IMAGE, ["true"], detach=True, network_mode="none")
    container.wait(timeout=30)
    yield container.id
    container.remove(force=True)


def test_a_worker_container_that_stops_before_ready_is_noticed_within_seconds(api, make_actor, exited_container):
    actor = make_actor()
    dbid = f"{TENANT}_{actor['id']}"
    worker_id = Worker.request(dbid, TENANT)  # a worker meant to start, whose container died
    handshake = channels.SpawnerWorkerChannel(worker_id)
    started = time.monotonic()
    try:
        with pytest.raises(WorkerLostWhileStarting, match="stopped before the worker reported ready"):
            Spawner("default").wait_until_ready(handshake, exited_container, dbid, worker_id)
    finally:
        handshake.delete()
        Worker.delete(dbid, worker_id)
    assert time.monotonic() - started < 10  # the start timeout is 60 s


def test_a_worker_stopped_while_it_starts_is_not_lost(api, make_actor, exited_container):
    """Its container stopped because it was asked to stop (or its actor is being deleted): the start
    is cancelled, and no fresh worker takes its place."""
    actor = make_actor()
    dbid = f"{TENANT}_{actor['id']}"
    worker_id = Worker.request(dbid, TENANT)
    Worker.set_status(dbid, worker_id, WorkerStatus.SHUTDOWN_REQUESTED)
    handshake = channels.SpawnerWorkerChannel(worker_id)
    try:
        with pytest.raises(WorkerStartCancelled):
            Spawner("default").wait_until_ready(handshake, exited_container, dbid, worker_id)
    finally:
        handshake.delete()
        Worker.delete(dbid, worker_id)


def test_a_worker_that_reports_an_error_is_not_retried(exited_container):
    worker_id = f"err{uuid.uuid4().hex[:8]}"
    handshake = channels.SpawnerWorkerChannel(worker_id)
    handshake.put("error: no such module")
    try:
        with pytest.raises(WorkerStartError, match="no such module") as raised:
            Spawner("default").wait_until_ready(handshake, exited_container, f"{TENANT}_none", worker_id)
    finally:
        handshake.delete()
    assert not isinstance(raised.value, WorkerLostWhileStarting)


def test_a_worker_lost_while_starting_is_replaced_and_the_actor_stays_ready(api, make_actor, monkeypatch):
    actor = make_actor()
    wait_for_actor_status(api, actor["id"], "READY")
    dbid = f"{TENANT}_{actor['id']}"
    spawner = Spawner("default")
    real_start = spawner.start_worker
    tried: list[str] = []

    def start_worker_lost_once(actor_record, worker_id):
        tried.append(worker_id)
        if len(tried) == 1:
            Worker.set_status(dbid, worker_id, WorkerStatus.SPAWNER_SETUP)
            raise WorkerLostWhileStarting(f"The container of worker {worker_id} stopped before the worker reported ready")
        real_start(actor_record, worker_id)

    monkeypatch.setattr(spawner, "start_worker", start_worker_lost_once)
    first = Worker.request(dbid, TENANT)
    assert spawner.start_with_retries(Actor.get(dbid), first) == tried[1]
    workers = Worker.get_workers(dbid)
    assert first not in workers
    assert workers[tried[1]]["status"] == WorkerStatus.READY
    assert api.result("GET", f"/actors/{actor['id']}")["status"] == "READY"
