"""The autoscaler's acting layer and the model steps it relies on, against each store backend:
capped worker requests, READY-only stops, and the execution status counters behind /metrics."""
from __future__ import annotations

import threading

import pytest

from actors import autoscaler, codes, commands, stores
from actors.errors import WorkerStatusConflict
from actors.lifecycle import ActorStatus, ExecutionStatus, WorkerStatus
from actors.models import Execution, Worker

pytestmark = pytest.mark.unit

DBID = "T-ONE_NolBaJ5y6714M"
ACTOR = {"db_id": DBID, "id": "NolBaJ5y6714M", "tenant": "T-ONE", "image": "abacosamples/test", "queue": "default",
         "api_server": "http://127.0.0.1:8000", "owner": "me", "stateless": True, "status": ActorStatus.READY}


@pytest.fixture
def use_stores(model_stores):
    return model_stores


@pytest.fixture
def sent(monkeypatch):
    """Commands that would go to RabbitMQ, recorded instead."""
    log: list[tuple] = []

    class FakeWorkerChannel:
        def __init__(self, worker_id):
            self.worker_id = worker_id

        def put(self, value):
            log.append(("worker", self.worker_id, value))

    monkeypatch.setattr(commands.channels, "WorkerChannel", FakeWorkerChannel)
    monkeypatch.setattr(autoscaler, "send_start_command", lambda actor, wid: log.append(("spawner", actor["db_id"], wid)))
    return log


def add_worker(worker_id: str, status: str) -> None:
    stores.workers_store.within_transaction(
        lambda ws: {**ws, worker_id: {"id": worker_id, "status": status, "tenant": "T-ONE"}}, DBID, default={})


def test_request_if_fewer_stops_at_the_limit(use_stores):
    assert Worker.request_if_fewer(DBID, "T-ONE", 2)
    assert Worker.request_if_fewer(DBID, "T-ONE", 2)
    assert Worker.request_if_fewer(DBID, "T-ONE", 2) is None
    assert [w["status"] for w in Worker.get_workers(DBID).values()] == [WorkerStatus.REQUESTED] * 2


def test_request_if_fewer_under_threads(backend, use_stores):
    if backend not in ("redis", "mongo"):
        pytest.skip(f"{backend} is not thread-safe")
    got = []
    threads = [threading.Thread(target=lambda: got.append(Worker.request_if_fewer(DBID, "T-ONE", 3)))
               for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([g for g in got if g]) == 3 and len(Worker.get_workers(DBID)) == 3


def test_set_status_only_from(use_stores):
    add_worker("w1", WorkerStatus.BUSY)
    with pytest.raises(WorkerStatusConflict):
        Worker.set_status(DBID, "w1", WorkerStatus.SHUTDOWN_REQUESTED, only_from=(WorkerStatus.READY,))
    assert Worker.get(DBID, "w1")["status"] == WorkerStatus.BUSY
    add_worker("w2", WorkerStatus.READY)
    assert Worker.set_status(DBID, "w2", WorkerStatus.SHUTDOWN_REQUESTED, only_from=(WorkerStatus.READY,))["status"] == \
        WorkerStatus.SHUTDOWN_REQUESTED


def test_apply_scales_up_within_the_cap(use_stores, sent, monkeypatch):
    # on Redis the test stores share one DB, so the actor record would collide with the workers'
    monkeypatch.setattr(autoscaler.Actor, "get", staticmethod(lambda dbid: ACTOR))
    add_worker("w1", WorkerStatus.BUSY)
    done = autoscaler.apply([autoscaler.ScaleUp(DBID, limit=2), autoscaler.ScaleUp(DBID, limit=2)])
    assert len(done) == 1  # the second would exceed the cap: the store says no
    assert len(Worker.get_workers(DBID)) == 2
    assert [entry[:2] for entry in sent] == [("spawner", DBID)]


def test_apply_ignores_a_deleted_actor(use_stores, sent):
    assert autoscaler.apply([autoscaler.ScaleUp(DBID, limit=2)]) == []
    assert sent == [] and Worker.get_workers(DBID) == {}


def test_apply_stops_only_a_worker_still_ready(use_stores, sent):
    add_worker("idle", WorkerStatus.READY)
    add_worker("took-a-message", WorkerStatus.BUSY)  # READY in the snapshot, BUSY by now
    done = autoscaler.apply([autoscaler.StopWorker(DBID, "idle"), autoscaler.StopWorker(DBID, "took-a-message"),
                             autoscaler.StopWorker(DBID, "gone")])
    assert [a.worker_id for a in done] == ["idle"]
    assert sent == [("worker", "idle", codes.STOP_NO_DELETE)]
    assert Worker.get(DBID, "idle")["status"] == WorkerStatus.SHUTDOWN_REQUESTED
    assert Worker.get(DBID, "took-a-message")["status"] == WorkerStatus.BUSY


def test_execution_status_counters(use_stores):
    before = Execution.status_counts()
    assert before == {ExecutionStatus.SUBMITTED: 0, ExecutionStatus.RUNNING: 0, ExecutionStatus.COMPLETE: 0}
    first = Execution.create(ACTOR, "me")
    Execution.create(ACTOR, "me")
    Execution.set_status(DBID, first["id"], ExecutionStatus.RUNNING)
    Execution.set_status(DBID, first["id"], ExecutionStatus.COMPLETE)
    assert Execution.status_counts() == {ExecutionStatus.SUBMITTED: 2, ExecutionStatus.RUNNING: 1, ExecutionStatus.COMPLETE: 1}
    # the counters never show up as executions
    assert len(Execution.list(DBID)) == 2 and Execution.totals_of([DBID])[0]["executions"] == 2
