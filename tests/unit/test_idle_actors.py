"""What keeps a scrape and a health pass cheap with thousands of idle actors: the mailbox index
(actors that may have messages), the actors' status index, and the snapshot that reads only the
actors the autoscaler can act on. Against real Redis and RabbitMQ."""
from __future__ import annotations

import os
import uuid

import pytest

from actors import autoscaler, channels, commands, stores
from actors.channels import ChannelError
from actors.lifecycle import ActorStatus, WorkerStatus
from actors.metrics_api import actor_counts
from actors.models import Actor, mailbox
from actors.models import actor as actor_model
from actors.store import RedisStore

pytestmark = pytest.mark.unit

RABBIT_URI = os.environ.get("ABACO_TEST_RABBIT_URI", "amqp://127.0.0.1:5672")


@pytest.fixture
def backend():
    return "redis"  # the index contract covers the other backends (test_index_store.py)


@pytest.fixture
def rabbit(monkeypatch):
    monkeypatch.setenv("rabbit_uri", RABBIT_URI)
    try:
        channels.connect(RABBIT_URI, timeout=3).close()
    except ChannelError as exc:
        pytest.skip(f"no RabbitMQ at {RABBIT_URI}: {exc}")
    yield
    channels.close_thread_connection()


@pytest.fixture
def tenant() -> str:
    return f"T-IDLE{uuid.uuid4().hex[:6].upper()}"


@pytest.fixture
def own_dbs(model_stores):
    """Actors and workers each in a Redis DB of their own, as deployed (in the fixture's shared DB 15
    a scan of the workers store would read the actor records too)."""
    host = os.environ.get("ABACO_TEST_REDIS_HOST", "127.0.0.1")
    port = int(os.environ.get("ABACO_TEST_REDIS_PORT", "6379"))
    own = {"actors_store": RedisStore(host, port, 13), "workers_store": RedisStore(host, port, 14)}
    for store in own.values():
        store.flush()
    stores._cache.update(own)
    yield
    for name, store in own.items():
        store.flush()
        store.close()
        stores._cache[name] = model_stores[name]


@pytest.fixture
def actors(own_dbs, rabbit, tenant):
    """Registered actors of a fresh tenant; their queues are deleted afterwards."""
    made: list[dict] = []

    def make(**fields) -> dict:
        actor = Actor.create(tenant, "me", {"image": "abacosamples/test", **fields})
        made.append(actor)
        return actor

    yield make
    for actor in made:
        channels.ActorMsgChannel(actor["db_id"]).delete()


def queue_message(actor: dict, text: str = "hello") -> None:
    """What POST /messages does, without a worker request."""
    channels.ActorMsgChannel(actor["db_id"]).put_msg(text, {"_abaco_execution_id": uuid.uuid4().hex})
    mailbox.note(actor["db_id"])


def add_worker(dbid: str, status: str = WorkerStatus.READY) -> None:
    stores.workers_store.within_transaction(
        lambda ws: {**ws, "w1": {"id": "w1", "status": status, "create_time": 0}}, dbid, default={})


# -- the mailbox index ----------------------------------------------------------------------------
def test_settling_removes_a_note_only_if_no_message_was_noted_since(model_stores):
    mailbox.note("T_a")
    first = mailbox.noted()["T_a"]
    mailbox.note("T_a")  # a message arrives after the note was read
    assert mailbox.settle("T_a", first) is False
    assert "T_a" in mailbox.noted()
    assert mailbox.settle("T_a", mailbox.noted()["T_a"]) is True
    assert mailbox.noted() == {}


def test_queued_messages_asks_only_noted_actors_and_those_with_workers(actors):
    idle, mailed, working = actors(), actors(), actors()
    queue_message(mailed)
    queue_message(mailed)
    add_worker(working["db_id"])
    channels.ActorMsgChannel(idle["db_id"]).put_msg("never noted", {})  # not through send_message

    counts = commands.queued_messages({working["db_id"]})
    assert counts == {mailed["db_id"]: 2, working["db_id"]: 0}
    assert mailed["db_id"] in mailbox.noted()  # it still has mail


def test_an_emptied_mailbox_without_workers_is_settled(actors):
    actor = actors()
    queue_message(actor)
    assert commands.queued_messages(set()) == {actor["db_id"]: 1}
    channels.ActorMsgChannel(actor["db_id"]).drain()
    assert commands.queued_messages(set()) == {actor["db_id"]: 0}
    assert actor["db_id"] not in mailbox.noted()
    assert commands.queued_messages(set()) == {}


def test_an_empty_mailbox_of_an_actor_with_workers_stays_counted(actors):
    actor = actors()
    queue_message(actor)
    channels.ActorMsgChannel(actor["db_id"]).drain()
    add_worker(actor["db_id"])
    assert commands.queued_messages({actor["db_id"]}) == {actor["db_id"]: 0}
    assert actor["db_id"] in mailbox.noted()  # kept until its workers are gone too


def test_send_message_notes_the_actor(actors, monkeypatch):
    actor = actors()
    monkeypatch.setattr(commands, "ensure_one_worker", lambda a: None)  # no spawner here
    commands.send_message(actor, "me", "hi", {})
    assert actor["db_id"] in mailbox.noted()
    assert commands.queued_messages(set())[actor["db_id"]] == 1


def test_deleting_an_actor_forgets_its_mail_and_status(actors):
    actor = actors()
    queue_message(actor)
    Actor.delete(actor["db_id"])
    assert actor["db_id"] not in mailbox.noted()
    assert actor["db_id"] not in Actor.statuses()


# -- the status index -----------------------------------------------------------------------------
def test_the_status_index_follows_every_status_write(actors):
    actor = actors()
    dbid = actor["db_id"]
    assert Actor.statuses()[dbid] == ActorStatus.SUBMITTED
    Actor.set_status(dbid, ActorStatus.READY)
    assert Actor.statuses()[dbid] == ActorStatus.READY
    Actor.set_status(dbid, ActorStatus.ERROR, "broken")
    assert Actor.statuses()[dbid] == ActorStatus.ERROR
    Actor.replace(dbid, {"image": "abacosamples/test"}, restart=True)
    assert Actor.statuses()[dbid] == ActorStatus.SUBMITTED


def test_reconciling_fixes_stale_and_missing_entries_and_drops_a_deleted_actors(actors, tenant):
    kept, deleted, unlisted = actors(), actors(), actors()
    Actor.set_status(kept["db_id"], ActorStatus.READY)
    stores.index_store.add(actor_model.BY_STATUS, kept["db_id"], 0.0)  # as a lost race would leave it
    del stores.actors_store[deleted["db_id"]]  # its record gone, its entries left behind
    for name in (actor_model.ALL_ACTORS, actor_model.ACTORS_OF_TENANT.format(tenant), actor_model.BY_STATUS):
        stores.index_store.remove(name, unlisted["db_id"])  # as a process that died after the record would
    newcomer = actors()  # registered after the pass read its records

    fixes = Actor.reconcile_indexes([Actor.get(kept["db_id"]), Actor.get(unlisted["db_id"])])
    statuses = Actor.statuses()
    assert fixes == 3
    assert statuses[kept["db_id"]] == ActorStatus.READY
    assert deleted["db_id"] not in statuses
    assert statuses[newcomer["db_id"]] == ActorStatus.SUBMITTED
    assert [a["db_id"] for a in Actor.list_for_tenant(tenant)] == [kept["db_id"], unlisted["db_id"], newcomer["db_id"]]
    assert Actor.reconcile_indexes([Actor.get(a["db_id"]) for a in (kept, unlisted, newcomer)]) == 0


def test_a_delete_that_stopped_half_way_is_cleaned_by_the_next_reconcile(actors, tenant):
    actor = actors()
    del stores.actors_store[actor["db_id"]]  # the record went, the rest of the delete did not happen
    Actor.reconcile_indexes([])
    assert Actor.page_all(0, 10) == [] and Actor.list_for_tenant(tenant) == []


def test_abaco_actors_counts_per_tenant_and_status():
    family = actor_counts({"A_x1": "READY", "A_x2": "READY", "A_B_x3": "ERROR", "A_x4": "ERROR"})
    samples = {tuple(s.labels[k] for k in ("tenant", "status")): s.value for s in family.samples}
    assert samples == {("A", "READY"): 2, ("A", "ERROR"): 1, ("A_B", "ERROR"): 1}


# -- the snapshot ---------------------------------------------------------------------------------
def test_the_snapshot_holds_only_actors_with_workers_or_mail(actors):
    idle = [actors() for _ in range(5)]
    mailed, working = actors(), actors()
    queue_message(mailed)
    add_worker(working["db_id"])
    snapshot = autoscaler.take_snapshot(autoscaler.Limits(enabled=True))
    assert {a.dbid: a.messages for a in snapshot.actors} == {mailed["db_id"]: 1, working["db_id"]: 0}
    assert not {a["db_id"] for a in idle} & {a.dbid for a in snapshot.actors}
    actions = autoscaler.decide(snapshot)
    assert [a.dbid for a in actions if isinstance(a, autoscaler.ScaleUp)] == [mailed["db_id"]]
    assert [a.dbid for a in actions if isinstance(a, autoscaler.StopWorker)] == [working["db_id"]]


# -- the health agent's sweep ----------------------------------------------------------------------
def test_the_health_agent_sweeps_every_queue_on_its_first_pass_and_every_tenth(actors):
    from actors.health import FULL_SWEEP_EVERY, HealthAgent

    first, later = actors(), actors()
    channels.ActorMsgChannel(first["db_id"]).put_msg("queued by a process that died before noting it", {})
    agent = HealthAgent()
    everyone = {a["db_id"]: a for a in (first, later)}
    assert agent.queued_messages(everyone) == {first["db_id"]: 1}
    channels.ActorMsgChannel(later["db_id"]).put_msg("not noted either", {})
    for _ in range(FULL_SWEEP_EVERY - 1):
        assert later["db_id"] not in agent.queued_messages(everyone)
    assert agent.queued_messages(everyone) == {first["db_id"]: 1, later["db_id"]: 1}
