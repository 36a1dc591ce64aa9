"""Every rule of the autoscaling policy, on the pure function ``autoscaler.decide`` (no services)."""
from __future__ import annotations

import pytest

from actors.autoscaler import (
    ActorView,
    Limits,
    ScaleUp,
    Snapshot,
    StopWorker,
    WorkerView,
    actor_cap,
    decide,
)
from actors.lifecycle import ActorStatus, WorkerStatus

pytestmark = pytest.mark.unit

LIMITS = Limits(enabled=True, max_workers_per_actor=5, max_workers_per_host=20, max_cmd_length=10,
                sync_max_idle_time=600)


def workers(*statuses: str, idle: float = 30.0) -> tuple[WorkerView, ...]:
    return tuple(WorkerView(f"w{i}", status, idle) for i, status in enumerate(statuses))


def actor(dbid: str = "T_a", messages: int = 0, ws: tuple[WorkerView, ...] = (), **kw) -> ActorView:
    return ActorView(dbid=dbid, tenant=kw.pop("tenant", "T"), messages=messages, workers=ws, **kw)


def run(*actors: ActorView, limits: Limits = LIMITS, cmd: dict | None = None, host_workers: int | None = None):
    return decide(Snapshot(tuple(actors), cmd or {"default": 0}, host_workers, limits))


def ups(actions) -> list[str]:
    return [a.dbid for a in actions if isinstance(a, ScaleUp)]


def stops(actions) -> list[tuple[str, str]]:
    return [(a.dbid, a.worker_id) for a in actions if isinstance(a, StopWorker)]


# -- switched on and off -------------------------------------------------------------------------
def test_autoscaling_off_does_nothing():
    off = Limits(enabled=False)
    assert run(actor(messages=5, ws=workers(WorkerStatus.BUSY)), actor("T_b", ws=workers(WorkerStatus.READY)), limits=off) == []


def test_nothing_to_do_for_no_actors():
    assert run() == []


# -- scale up -----------------------------------------------------------------------------------
def test_queued_messages_add_one_worker_per_pass():
    actions = run(actor(messages=50, ws=workers(WorkerStatus.BUSY)))
    assert actions == [ScaleUp("T_a", actions[0].reason, limit=5)]


def test_an_actor_without_workers_and_with_messages_gets_one():
    assert ups(run(actor(messages=1))) == ["T_a"]


def test_an_actor_without_workers_and_without_messages_gets_none():
    # "0 workers -> 1" for an idle actor would flap against "empty queue -> one fewer"
    assert run(actor(messages=0)) == []


def test_never_above_the_actors_max_workers():
    assert run(actor(messages=9, ws=workers(WorkerStatus.BUSY, WorkerStatus.BUSY, WorkerStatus.BUSY), max_workers=3)) == []
    assert ups(run(actor(messages=9, ws=workers(WorkerStatus.BUSY, WorkerStatus.BUSY), max_workers=3))) == ["T_a"]


def test_cap_is_max_workers_per_actor_when_the_actor_sets_none():
    full = workers(*[WorkerStatus.BUSY] * 5)
    assert run(actor(messages=9, ws=full)) == []
    assert ups(run(actor(messages=9, ws=full[:4]))) == ["T_a"]


def test_cap_defaults():
    assert actor_cap(actor(max_workers=2), LIMITS) == 2
    assert actor_cap(actor(max_workers=None), LIMITS) == 5
    assert actor_cap(actor(max_workers=0), LIMITS) == 5  # upstream: a falsy max_workers is unset
    assert actor_cap(actor(), Limits(max_workers_per_actor=0)) == 1


def test_every_worker_record_counts_against_the_cap():
    # a stopping or starting worker still holds (or will hold) a container
    ws = workers(WorkerStatus.SHUTDOWN_REQUESTED, WorkerStatus.REQUESTED)
    assert run(actor(messages=4, ws=ws, max_workers=2)) == []


def test_never_above_max_workers_per_host():
    limits = Limits(max_workers_per_actor=5, max_workers_per_host=4)
    a = actor("T_a", messages=3, ws=workers(WorkerStatus.BUSY, WorkerStatus.BUSY))
    b = actor("T_b", messages=3, ws=workers(WorkerStatus.BUSY))
    assert ups(run(a, b, limits=limits)) == ["T_a"]  # 3 workers: room for one more only
    assert run(a, b, limits=limits, host_workers=4) == []  # other actors' workers count too


def test_actors_without_workers_are_served_first_when_room_is_scarce():
    limits = Limits(max_workers_per_actor=5, max_workers_per_host=3)
    busy = actor("T_a", messages=100, ws=workers(WorkerStatus.BUSY, WorkerStatus.BUSY))
    starving = actor("T_z", messages=1)
    assert ups(run(busy, starving, limits=limits)) == ["T_z"]


def test_command_queue_back_pressure():
    a = actor(messages=5, ws=workers(WorkerStatus.BUSY))
    assert run(a, cmd={"default": 11}) == []  # longer than max_cmd_length=10
    assert ups(run(a, cmd={"default": 10})) == ["T_a"]  # equal is still fine (upstream: <=)


def test_back_pressure_is_measured_per_command_queue():
    on_special = actor("T_s", messages=5, ws=workers(WorkerStatus.BUSY), command_queue="special")
    on_default = actor("T_d", messages=5, ws=workers(WorkerStatus.BUSY))
    assert ups(run(on_special, on_default, cmd={"default": 0, "special": 50})) == ["T_d"]


def test_scale_ups_of_one_pass_count_against_the_command_queue():
    many = [actor(f"T_{i}", messages=1, ws=workers(WorkerStatus.BUSY)) for i in range(5)]
    assert len(ups(run(*many, cmd={"default": 8}))) == 3  # 8 -> 9 -> 10 -> 11: the fourth waits


# -- scale down ---------------------------------------------------------------------------------
def test_empty_queue_stops_one_ready_worker_per_pass():
    ws = (WorkerView("a", WorkerStatus.READY, 10), WorkerView("b", WorkerStatus.READY, 99), WorkerView("c", WorkerStatus.READY, 50))
    assert stops(run(actor(ws=ws))) == [("T_a", "b")]  # upstream stopped all three; we stop the longest idle


def test_the_last_worker_goes_too():
    assert stops(run(actor(ws=workers(WorkerStatus.READY)))) == [("T_a", "w0")]


def test_busy_and_starting_workers_are_never_stopped():
    ws = workers(WorkerStatus.BUSY, WorkerStatus.REQUESTED, WorkerStatus.SPAWNER_SETUP, WorkerStatus.CREATING_CONTAINER, WorkerStatus.SHUTDOWN_REQUESTED)
    assert run(actor(ws=ws)) == []


def test_no_scale_down_while_messages_are_queued():
    assert run(actor(messages=1, ws=workers(WorkerStatus.READY, WorkerStatus.READY), max_workers=2)) == []


def test_sync_actor_keeps_its_last_worker_until_idle_long_enough():
    recent = (WorkerView("w", WorkerStatus.READY, 599),)
    old = (WorkerView("w", WorkerStatus.READY, 601),)
    assert run(actor(ws=recent, hints=("sync",))) == []
    assert stops(run(actor(ws=old, hints=("sync",)))) == [("T_a", "w")]
    # a different sync_max_idle_time
    assert stops(run(actor(ws=recent, hints=("sync",)), limits=Limits(sync_max_idle_time=100))) == [("T_a", "w")]


def test_sync_actor_above_one_live_worker_scales_down_normally():
    ws = (WorkerView("a", WorkerStatus.READY, 5), WorkerView("b", WorkerStatus.BUSY, 0))
    assert stops(run(actor(ws=ws, hints=("sync",)))) == [("T_a", "a")]
    # a worker already stopping is not live: the READY one is then the last
    ws = (WorkerView("a", WorkerStatus.READY, 5), WorkerView("b", WorkerStatus.SHUTDOWN_REQUESTED, 0))
    assert run(actor(ws=ws, hints=("sync",))) == []


def test_other_hints_do_not_block_scale_down():
    # upstream's hint check failed for any actor with hints, so those were never scaled down
    assert stops(run(actor(ws=workers(WorkerStatus.READY), hints=("batch", "other")))) == [("T_a", "w0")]


# -- actors left alone --------------------------------------------------------------------------
def test_stateful_actors_are_never_scaled():
    assert run(actor(messages=10, ws=workers(WorkerStatus.BUSY), stateless=False)) == []
    assert run(actor(messages=0, ws=workers(WorkerStatus.READY), stateless=False)) == []
    assert run(actor(messages=10, stateless=False)) == []


@pytest.mark.parametrize("status", [ActorStatus.ERROR, ActorStatus.SHUTTING_DOWN])
def test_actors_in_error_or_shutting_down_are_skipped(status):
    assert run(actor(messages=10, ws=workers(WorkerStatus.BUSY), status=status)) == []
    assert run(actor(messages=0, ws=workers(ActorStatus.READY), status=status)) == []


def test_autoscaling_tenants_limit_which_actors_are_managed():
    limits = Limits(max_workers_per_actor=5, tenants=("ONE",))
    mine = actor("ONE_a", messages=3, tenant="ONE")
    theirs = actor("TWO_b", messages=3, tenant="TWO")
    idle_theirs = actor("TWO_c", ws=workers(WorkerStatus.READY), tenant="TWO")
    actions = run(mine, theirs, idle_theirs, limits=limits)
    assert ups(actions) == ["ONE_a"] and stops(actions) == []


def test_tenants_with_underscores_scale_up():
    # upstream split the db id on "_" and gave up unless there were exactly two parts
    assert ups(run(actor("dev_staging_X", messages=1, tenant="dev_staging"))) == ["dev_staging_X"]


# -- both directions in one pass ----------------------------------------------------------------
def test_one_pass_over_several_actors():
    growing = actor("T_g", messages=7, ws=workers(WorkerStatus.BUSY, WorkerStatus.BUSY), max_workers=3)
    full = actor("T_f", messages=7, ws=workers(WorkerStatus.BUSY, WorkerStatus.BUSY, WorkerStatus.BUSY), max_workers=3)
    idle = actor("T_i", ws=workers(WorkerStatus.READY, WorkerStatus.BUSY))
    actions = run(growing, full, idle)
    assert ups(actions) == ["T_g"]
    assert stops(actions) == [("T_i", "w0")]


# -- the pass guard (real Redis, DB 15) ---------------------------------------------------------
@pytest.fixture
def lease_store(monkeypatch):
    from actors import autoscaler
    from tests.unit.conftest import _redis_store

    store = _redis_store(-1)
    store.flush()
    monkeypatch.setattr(autoscaler, "_lease_store", lambda: store)
    yield store
    store.flush()
    store.close()


def test_one_pass_at_a_time_in_a_process(lease_store):
    from actors.autoscaler import pass_guard

    with pass_guard() as first:
        with pass_guard() as second:
            assert (first, second) == (True, False)
    with pass_guard() as again:
        assert again


def test_one_pass_at_a_time_across_processes(lease_store):
    import time

    from actors.autoscaler import LEASE_KEY, pass_guard

    lease_store[LEASE_KEY] = ["another-process", time.time() + 30]
    with pass_guard() as mine:
        assert not mine
    assert lease_store[LEASE_KEY][0] == "another-process"  # not released by us
    lease_store[LEASE_KEY] = ["a-dead-process", time.time() - 1]  # expired: taken over
    with pass_guard() as mine:
        assert mine
    assert lease_store[LEASE_KEY][1] == 0  # released


# -- the exposition -----------------------------------------------------------------------------
def exposition(result) -> dict:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from actors.metrics_api import ScrapeCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScrapeCollector(result, {"COMPLETE": 4, "RUNNING": 5, "SUBMITTED": 6}, 2, 0.01))
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_follow_actors_appearing_and_vanishing():
    from actors.autoscaler import PassResult

    a = actor("DEV-X_a1", messages=3, ws=workers(WorkerStatus.BUSY, WorkerStatus.READY), tenant="DEV-X", max_workers=4)
    b = actor("DEV-X_b2", messages=0, tenant="DEV-X", status=ActorStatus.ERROR)
    first = exposition(PassResult(Snapshot((a,), {"default": 2}, None, LIMITS), True, [ScaleUp("DEV-X_a1")]))
    second = exposition(PassResult(Snapshot((b,), {"default": 0}, None, LIMITS)))

    ids = (("actor_id", "a1"), ("tenant", "DEV-X"))
    assert first[("abaco_actor_messages", ids)] == 3
    assert first[("abaco_actor_workers", ids[:1] + (("status", "BUSY"),) + ids[1:])] == 1
    assert first[("abaco_actor_max_workers", ids)] == 4
    assert first[("abaco_command_queue_messages", (("queue", "default"),))] == 2
    assert first[("abaco_autoscaler_actions", (("action", "scale_up"),))] == 1
    assert first[("abaco_executions_total", (("status", "COMPLETE"),))] == 4
    # upstream's names, '-' replaced by '_'
    assert first[("message_count_for_actor_DEV_X_a1", ())] == 3
    assert first[("worker_count_for_actor_DEV_X_a1", ())] == 2
    assert first[("message_count_for_command_channel", (("name", "default"),))] == 2

    assert ("abaco_actor_messages", ids) not in second
    assert second[("abaco_actor_status", (("actor_id", "b2"), ("status", "ERROR"), ("tenant", "DEV-X")))] == 1
    assert second[("abaco_actor_workers", (("actor_id", "b2"), ("status", "READY"), ("tenant", "DEV-X")))] == 0
    assert second[("abaco_autoscaler_pass", ())] == 0
