"""The lifecycles of actors, workers and executions (actors/lifecycle.py), walked whole: every move
of each table is accepted by the model that writes it, every other move is refused and leaves the
record as it was; a stop request is never overwritten by a finishing execution; and
docs/architecture.md shows exactly these tables."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from actors import lifecycle, stores
from actors.errors import IllegalTransition
from actors.lifecycle import ACTOR, EXECUTION, WORKER, ActorStatus, ExecutionStatus, WorkerStatus
from actors.models import Actor, Execution, Worker

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DBID = "T-LIFE_NolBaJ5y6714M"


@pytest.fixture
def backend():
    return "redis"  # the walk is about the tables; one backend is enough (the store contract covers the rest)


@pytest.fixture
def use_stores(model_stores):
    return model_stores


def pairs(cycle: lifecycle.Lifecycle):
    return list(itertools.product(cycle.statuses, repeat=2))


def stored_worker_status(status: str) -> str:
    return lifecycle.worker_error_status(WorkerStatus.BUSY) if status == WorkerStatus.ERROR else status


# -- the tables themselves --------------------------------------------------------------------------
@pytest.mark.parametrize("cycle", lifecycle.LIFECYCLES, ids=lambda c: c.kind)
def test_every_table_is_closed_and_its_groups_name_its_statuses(cycle):
    for targets in cycle.transitions.values():
        assert targets <= set(cycle.statuses)
    for members in cycle.groups.values():
        assert members <= set(cycle.statuses)
    assert cycle.initial in cycle.statuses
    assert cycle.allows(None, cycle.initial)
    assert not any(cycle.allows(None, s) for s in cycle.statuses if s != cycle.initial)


def test_final_statuses_have_no_way_out():
    assert not ACTOR.transitions[ActorStatus.SHUTTING_DOWN]
    assert not WORKER.transitions[WorkerStatus.SHUTTING_DOWN]
    assert not EXECUTION.transitions[ExecutionStatus.COMPLETE]


@pytest.mark.parametrize("current, new", [
    (WorkerStatus.SHUTDOWN_REQUESTED, WorkerStatus.READY),  # allowed before: a stop request was undone
    (WorkerStatus.SHUTTING_DOWN, WorkerStatus.READY),
    (WorkerStatus.BUSY, WorkerStatus.REQUESTED),
    (WorkerStatus.REQUESTED, WorkerStatus.READY),  # the start-up chain is walked in order
])
def test_moves_the_old_worker_check_let_through_are_refused(current, new):
    assert not WORKER.allows(current, new)


def test_worker_errors_are_one_status_whatever_they_were_doing():
    assert WORKER.in_group("ERROR (PREVIOUS SPAWNER SETUP)", "failed")
    assert WORKER.allows("ERROR (PREVIOUS BUSY)", WorkerStatus.SHUTTING_DOWN)
    assert not WORKER.allows("ERROR (PREVIOUS BUSY)", WorkerStatus.READY)


# -- each table, walked through the model that writes it ---------------------------------------------
@pytest.mark.parametrize("current, new", pairs(WORKER))
def test_worker_moves(use_stores, current, new):
    stores.workers_store[DBID] = {"w": {"id": "w", "status": stored_worker_status(current)}}
    if WORKER.allows(current, new):
        written = Worker.set_status(DBID, "w", new)["status"]
        assert WORKER.normalize(written) == new
    else:
        with pytest.raises(IllegalTransition):
            Worker.set_status(DBID, "w", new)
        assert Worker.get(DBID, "w")["status"] == stored_worker_status(current)


@pytest.mark.parametrize("current, new", pairs(EXECUTION))
def test_execution_moves(use_stores, current, new):
    stores.executions_store[Execution.key(DBID, "e")] = {"id": "e", "actor_id": DBID, "status": current}
    if EXECUTION.allows(current, new):
        assert Execution.set_status(DBID, "e", new)["status"] == new
    else:
        with pytest.raises(IllegalTransition):
            Execution.set_status(DBID, "e", new)
        assert Execution.get(DBID, "e")["status"] == current


@pytest.mark.parametrize("current, new", pairs(ACTOR))
def test_actor_moves(use_stores, current, new):
    stores.actors_store[DBID] = {"db_id": DBID, "id": "NolBaJ5y6714M", "tenant": "T-LIFE", "status": current}
    if ACTOR.allows(current, new):
        assert Actor.set_status(DBID, new, "why")["status"] == new
        assert Actor.get(DBID)["status"] == new
    else:
        with pytest.raises(IllegalTransition):
            Actor.set_status(DBID, new, "why")
        assert Actor.get(DBID)["status"] == current


def test_an_actor_registered_with_a_status_is_still_submitted(use_stores):
    record = Actor.create("T-LIFE", "me", {"image": "abacosamples/test", "status": "READY"})
    assert record["status"] == ActorStatus.SUBMITTED


# -- a stop request is never overwritten --------------------------------------------------------------
def test_a_finishing_execution_does_not_overwrite_a_stop_request(use_stores):
    from actors.worker import WorkerProcess

    stores.workers_store[DBID] = {"w": {"id": "w", "status": WorkerStatus.BUSY}}
    process = WorkerProcess({"worker_id": "w", "actor_id": DBID})
    Worker.set_status(DBID, "w", WorkerStatus.SHUTDOWN_REQUESTED)  # a DELETE of the worker, mid-execution
    process.record_idle()  # the execution ends
    assert Worker.get(DBID, "w")["status"] == WorkerStatus.SHUTDOWN_REQUESTED

    Worker.set_status(DBID, "w", WorkerStatus.SHUTTING_DOWN)
    process.record_idle()
    assert Worker.get(DBID, "w")["status"] == WorkerStatus.SHUTTING_DOWN


def test_a_busy_worker_goes_back_to_ready(use_stores):
    from actors.worker import WorkerProcess

    stores.workers_store[DBID] = {"w": {"id": "w", "status": WorkerStatus.BUSY}}
    WorkerProcess({"worker_id": "w", "actor_id": DBID}).record_idle()
    worker = Worker.get(DBID, "w")
    assert worker["status"] == WorkerStatus.READY and worker["last_execution_time"]


# -- the document ------------------------------------------------------------------------------------
def test_the_architecture_document_shows_these_tables():
    text = (ROOT / "docs" / "architecture.md").read_text()
    begin, end = lifecycle.DOC_BEGIN, lifecycle.DOC_END
    assert begin in text and end in text, "docs/architecture.md lost its lifecycle markers"
    shown = text.split(begin, 1)[1].split(end, 1)[0].strip()
    assert shown == lifecycle.markdown().strip(), "docs/architecture.md is out of date: run python -m actors.lifecycle"
