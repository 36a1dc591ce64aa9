"""The scalable store layout, through the models: executions listed from their actor's index and
totalled by counters kept with the records, actors listed per tenant and per reader, the fallbacks
that scan while the layout is not done, and the migration (actors/migrations.py) from the old layout
(records only) to the new one. Every backend of conftest.py (``model_stores``)."""
from __future__ import annotations

import os

import pytest
import redis

from actors import codes, migrations, stores
from actors.errors import IllegalTransition
from actors.lifecycle import ExecutionStatus
from actors.models import Actor, Execution, is_hashid, layout, mailbox
from actors.models import actor as actor_model
from actors.models import execution as execution_model
from actors.models.execution import EVERY_ACTOR, TOTAL_NAMES
from actors.store import RedisStore

pytestmark = pytest.mark.unit

# "DEV_STAGING" starts with "DEV_": its db ids share the prefix of DEV's
TENANTS = ("DEV", "DEV_STAGING")
USERS = ("alice", "bob", "carol")
IMAGE = {"image": "abacosamples/test", "description": "layout test"}


# -- building a world through the models ----------------------------------------------------------
def new_actor(tenant: str, owner: str, name: str) -> dict:
    return Actor.create(tenant, owner, {**IMAGE, "name": name})


def run(actor: dict, runtime: int, cpu: int, io: int) -> dict:
    """An execution taken through the real status path: SUBMITTED, RUNNING, COMPLETE with usage."""
    record = Execution.create(actor, "alice")
    dbid = actor["db_id"]
    Execution.set_status(dbid, record["id"], ExecutionStatus.RUNNING, start_time="1700000000.0", worker_id="w1")
    return Execution.finalize(dbid, record["id"], runtime=runtime, cpu=cpu, io=io, exit_code=0,
                              finish_time="1700000100.0", final_state={"ExitCode": 0})


def summed(records: list[dict]) -> dict[str, int]:
    """Totals computed from records, the way the old layout counted them."""
    return {"executions": len(records), **{n: sum(int(r.get(n) or 0) for r in records) for n in ("cpu", "io", "runtime")}}


def ids(records: list[dict]) -> list[str]:
    return [r["id"] for r in records]


REDIS_DBS = {"actors_store": 12, "permissions_store": 13, "executions_store": 14}


def redis_host() -> tuple[str, int]:
    return os.environ.get("ABACO_TEST_REDIS_HOST", "127.0.0.1"), int(os.environ.get("ABACO_TEST_REDIS_PORT", "6379"))


@pytest.fixture
def layout_stores(backend, model_stores):
    """``model_stores``; on Redis the actors, permissions and executions each in a logical database of
    their own, as in a deployment (in the fixture's shared DB 15 a scan of one store would read the
    records of all of them; the index and the other stores stay in DB 15)."""
    own = {}
    if backend == "redis":
        host, port = redis_host()
        own = {name: RedisStore(host, port, db) for name, db in REDIS_DBS.items()}
        for store in own.values():
            store.flush()
        stores._cache.update(own)
    yield model_stores
    for name, store in own.items():
        store.flush()
        store.close()
        stores._cache[name] = model_stores[name]


@pytest.fixture
def world(layout_stores):
    """Two tenants, five actors with interleaved executions: some COMPLETE with usage, one RUNNING,
    one SUBMITTED; permissions shared with a user and with ABACO_WORLD."""
    a1 = new_actor("DEV", "alice", "a1")
    a2 = new_actor("DEV", "bob", "a2")
    a3 = new_actor("DEV", "alice", "a3")
    s1 = new_actor("DEV_STAGING", "alice", "s1")
    s2 = new_actor("DEV_STAGING", "carol", "s2")
    Actor.grant(a2["db_id"], "alice", codes.READ)  # bob shares a2 with alice
    Actor.grant(a3["db_id"], codes.ABACO_WORLD, codes.READ)  # alice shares a3 with everyone
    Actor.grant(s2["db_id"], "bob", codes.EXECUTE)

    executions: dict[str, list[dict]] = {a["db_id"]: [] for a in (a1, a2, a3, s1, s2)}
    usage = 1
    for _round in range(3):
        for actor in (a1, a2, s1, a1, s2):  # interleaved: a1 twice per round, a3 never
            executions[actor["db_id"]].append(run(actor, runtime=10 * usage, cpu=100 + usage, io=usage))
            usage += 1
    running = Execution.create(a1, "alice")
    running = Execution.set_status(a1["db_id"], running["id"], ExecutionStatus.RUNNING, start_time="1700000000.0")
    submitted = Execution.create(s1, "alice")
    executions[a1["db_id"]].append(running)
    executions[s1["db_id"]].append(submitted)
    return {"actors": {"a1": a1, "a2": a2, "a3": a3, "s1": s1, "s2": s2}, "executions": executions}


def all_dbids(world) -> list[str]:
    return [a["db_id"] for a in world["actors"].values()]


# -- executions -----------------------------------------------------------------------------------
def test_listing_gives_the_actors_executions_in_creation_order_and_only_its_own(world):
    for dbid, made in world["executions"].items():
        listed = Execution.list(dbid)
        assert ids(listed) == ids(made)
        assert all(r["actor_id"] == dbid for r in listed)
    assert Execution.list(world["actors"]["a3"]["db_id"]) == []
    assert Execution.list("DEV_nosuchactor") == []


def test_listing_pages_in_creation_order(world):
    dbid = world["actors"]["a1"]["db_id"]
    made = ids(world["executions"][dbid])
    assert len(made) == 7
    assert ids(Execution.list(dbid, 0, 3)) == made[0:3]
    assert ids(Execution.list(dbid, 3, 3)) == made[3:6]
    assert ids(Execution.list(dbid, 6, 3)) == made[6:]
    assert ids(Execution.list(dbid, 2)) == made[2:]
    assert ids(Execution.list(dbid, 0, None)) == made
    assert Execution.list(dbid, 7, 3) == [] and Execution.list(dbid, 70) == []
    assert Execution.list(dbid, 0, 0) == []
    pages = [Execution.list(dbid, offset, 2) for offset in range(0, 8, 2)]
    assert [i for p in pages for i in ids(p)] == made


def test_a_listed_record_is_the_stored_record(world):
    dbid = world["actors"]["s1"]["db_id"]
    listed = Execution.list(dbid)
    assert listed == [Execution.get(dbid, i) for i in ids(world["executions"][dbid])]
    assert [r["status"] for r in listed] == [ExecutionStatus.COMPLETE] * 3 + [ExecutionStatus.SUBMITTED]


def test_totals_equal_the_sums_of_the_records(world):
    dbids = all_dbids(world)
    totals = Execution.totals_of(dbids)
    for dbid, total in zip(dbids, totals):
        expected = summed(Execution.list(dbid))
        assert total == expected
        assert total == execution_model.scanned_totals(dbid)  # what the old layout's scan says
    a1 = world["actors"]["a1"]["db_id"]
    assert Execution.totals_of([a1])[0]["executions"] == 7
    assert Execution.totals_of([world["actors"]["a3"]["db_id"]]) == [dict.fromkeys(TOTAL_NAMES, 0)]
    [every] = Execution.totals_of([EVERY_ACTOR])
    assert every == summed([r for dbid in dbids for r in Execution.list(dbid)])
    assert every["executions"] == 17
    assert every == execution_model.scanned_totals(EVERY_ACTOR)
    # order and repeats of the asked ids are kept
    assert Execution.totals_of([a1, EVERY_ACTOR, a1]) == [totals[0], every, totals[0]]
    assert Execution.totals_of([]) == []


def test_usage_is_counted_when_the_execution_completes_and_only_once(world):
    actor = world["actors"]["a3"]
    dbid = actor["db_id"]
    record = Execution.create(actor, "alice")
    assert Execution.totals_of([dbid]) == [{"executions": 1, "cpu": 0, "io": 0, "runtime": 0}]
    Execution.set_status(dbid, record["id"], ExecutionStatus.RUNNING, start_time="1700000000.0")
    Execution.set_status(dbid, record["id"], ExecutionStatus.RUNNING, worker_id="w2")  # redelivered
    assert Execution.totals_of([dbid]) == [{"executions": 1, "cpu": 0, "io": 0, "runtime": 0}]
    counts_before = Execution.status_counts()
    [every_before] = Execution.totals_of([EVERY_ACTOR])

    Execution.finalize(dbid, record["id"], runtime=7, cpu=70, io=700)
    expected = {"executions": 1, "cpu": 70, "io": 700, "runtime": 7}
    assert Execution.totals_of([dbid]) == [expected]

    # COMPLETE accounted again: refused by the lifecycle, or swallowed as a purge of a final execution
    with pytest.raises(IllegalTransition):
        Execution.finalize(dbid, record["id"], runtime=7, cpu=70, io=700)
    Execution.mark_purged(dbid, record["id"])
    # and the migration's counting of an existing record finds it counted
    assert Execution.count_existing(Execution.key(dbid, record["id"])) is False
    assert Execution.totals_of([dbid]) == [expected]
    [every] = Execution.totals_of([EVERY_ACTOR])
    assert every == {"executions": every_before["executions"], "cpu": every_before["cpu"] + 70,
                     "io": every_before["io"] + 700, "runtime": every_before["runtime"] + 7}
    counts = Execution.status_counts()
    assert counts[ExecutionStatus.COMPLETE] == counts_before[ExecutionStatus.COMPLETE] + 1
    assert counts[ExecutionStatus.RUNNING] == counts_before[ExecutionStatus.RUNNING]
    assert Execution.get(dbid, record["id"])["cpu"] == 70


def test_an_execution_completed_at_once_counts_its_usage(world):
    # SUBMITTED -> COMPLETE: failed before its container ran
    actor = world["actors"]["a3"]
    record = Execution.create(actor, "alice")
    Execution.finalize(actor["db_id"], record["id"], runtime=3, cpu=4, io=5)
    assert Execution.totals_of([actor["db_id"]]) == [{"executions": 1, "cpu": 4, "io": 5, "runtime": 3}]


def test_status_counters_count_each_entry(world):
    counts = Execution.status_counts()
    assert counts[ExecutionStatus.SUBMITTED] == 17
    assert counts[ExecutionStatus.RUNNING] == 16  # 15 completed runs and one still running
    assert counts[ExecutionStatus.COMPLETE] == 15


def test_totals_stay_after_the_actor_is_deleted(world):
    dbids = all_dbids(world)
    [every_before] = Execution.totals_of([EVERY_ACTOR])
    gone = world["actors"]["a1"]["db_id"]
    [gone_totals] = Execution.totals_of([gone])
    assert gone_totals["executions"] == 7

    Actor.delete(gone)

    assert Actor.find(gone) is None
    [every] = Execution.totals_of([EVERY_ACTOR])
    assert every == every_before  # every execution ever recorded, deleted actors included
    assert Execution.totals_of([gone]) == [gone_totals]
    remaining = [d for d in dbids if d != gone]
    existing = Execution.totals_of([a["db_id"] for a in Actor.page_all()])
    assert {n: sum(t[n] for t in existing) for n in TOTAL_NAMES} == {
        n: every[n] - gone_totals[n] for n in TOTAL_NAMES}
    assert [a["db_id"] for a in Actor.page_all()] == remaining
    # the deleted actor left the indexes too: pages are full, not short of it
    assert [a["db_id"] for a in Actor.page_all(0, 2)] == remaining[:2]
    assert gone in Execution.actors_with_executions()
    assert set(Execution.actors_with_executions()) == {d for d in dbids if world["executions"][d]}
    assert every == execution_model.scanned_totals(EVERY_ACTOR)


# -- actors ---------------------------------------------------------------------------------------
def test_a_tenants_listing_holds_its_actors_only_oldest_first(world):
    actors = world["actors"]
    assert [a["db_id"] for a in Actor.list_for_tenant("DEV")] == [actors[n]["db_id"] for n in ("a1", "a2", "a3")]
    assert [a["db_id"] for a in Actor.list_for_tenant("DEV_STAGING")] == [actors[n]["db_id"] for n in ("s1", "s2")]
    assert Actor.list_for_tenant("STAGING") == [] and Actor.list_for_tenant("DE") == []
    assert Actor.list_for_tenant("DEV")[0] == Actor.get(actors["a1"]["db_id"])


def test_readable_by_lists_the_actors_the_user_may_read(world):
    actors = world["actors"]

    def readable(tenant, user):
        return [a["name"] for a in Actor.readable_by(tenant, user)]

    assert readable("DEV", "alice") == ["a1", "a2", "a3"]  # own, shared with her, shared with all
    assert readable("DEV", "bob") == ["a2", "a3"]
    assert readable("DEV", "carol") == ["a3"]  # through ABACO_WORLD only
    assert readable("DEV_STAGING", "alice") == ["s1"]
    assert readable("DEV_STAGING", "bob") == ["s2"]
    assert readable("DEV_STAGING", "carol") == ["s2"]
    assert readable("OTHER", "alice") == []

    Actor.grant(actors["a2"]["db_id"], "alice", codes.NONE)  # bob takes it back
    assert readable("DEV", "alice") == ["a1", "a3"]
    Actor.grant(actors["a3"]["db_id"], codes.ABACO_WORLD, codes.NONE)
    assert readable("DEV", "carol") == [] and readable("DEV", "bob") == ["a2"]
    Actor.grant(actors["a1"]["db_id"], "carol", codes.UPDATE)
    assert readable("DEV", "carol") == ["a1"]

    Actor.delete(actors["a1"]["db_id"])
    assert readable("DEV", "alice") == ["a3"] and readable("DEV", "carol") == []
    assert [a["name"] for a in Actor.list_for_tenant("DEV")] == ["a2", "a3"]


def test_page_all_lists_every_tenants_actors_oldest_first(world):
    names = ["a1", "a2", "a3", "s1", "s2"]
    assert [a["name"] for a in Actor.page_all()] == names
    assert [a["name"] for a in Actor.page_all(1, 2)] == names[1:3]
    assert [a["name"] for a in Actor.page_all(4, 10)] == names[4:]
    assert Actor.page_all(5) == [] and Actor.page_all(0, 0) == []


# -- the old layout and its migration -------------------------------------------------------------
def index_names(world) -> list[str]:
    names = [actor_model.ALL_ACTORS, actor_model.BY_STATUS, mailbox.WITH_MAIL, execution_model.ACTORS_WITH_EXECUTIONS, layout.LAYOUTS]
    names += [actor_model.ACTORS_OF_TENANT.format(t) for t in TENANTS]
    names += [actor_model.READABLE_BY.format(t, u) for t in TENANTS for u in (*USERS, codes.ABACO_WORLD)]
    names += [execution_model.EXECUTIONS_OF.format(d) for d in all_dbids(world)]
    return names


def to_old_layout(backend, world) -> None:
    """What a deployment from before the layout holds: the records, without index entries, totals
    counters or ``counted`` marks (the status counters existed already)."""
    index = stores.index_store
    for name in index_names(world):
        index.drop(name)
    if backend == "redis":  # the index shares DB 15 with other stores: flush() would empty them too
        left = []
        for db in (15, *REDIS_DBS.values()):
            raw = redis.Redis(*redis_host(), db=db, decode_responses=True)
            left += [k for k in raw.scan_iter() if raw.type(k) == "zset"]
            raw.close()
        assert not left, f"index entries this test does not know of: {left}"
    else:
        index.flush()
    store = stores.executions_store
    for key in store.keys():
        if key.startswith("_totals:"):
            del store[key]
            continue
        record = store.get(key)
        if isinstance(record, dict) and "counted" in record:
            store[key] = {k: v for k, v in record.items() if k != "counted"}
    layout.forget()
    assert not layout.is_done(layout.ACTOR_INDEX) and not layout.is_done(layout.EXECUTION_INDEX)


def answers(world) -> dict:
    """Everything the listings and totals say."""
    dbids = all_dbids(world)
    return {
        "lists": {d: ids(Execution.list(d)) for d in dbids},
        "pages": {d: [ids(Execution.list(d, o, 2)) for o in (0, 2, 4, 6)] for d in dbids},
        "totals": Execution.totals_of([*dbids, EVERY_ACTOR]),
        "with_executions": sorted(Execution.actors_with_executions()),
        "tenants": {t: [a["db_id"] for a in Actor.list_for_tenant(t)] for t in TENANTS},
        "readable": {(t, u): [a["db_id"] for a in Actor.readable_by(t, u)] for t in TENANTS for u in USERS},
        "all": [a["db_id"] for a in Actor.page_all()],
        "page": [a["db_id"] for a in Actor.page_all(1, 3)],
    }


def test_the_old_layout_is_answered_by_scanning_then_migrated(backend, world):
    expected = answers(world)
    to_old_layout(backend, world)
    assert Execution.totals_of([EVERY_ACTOR])[0]["executions"] == 17

    assert answers(world) == expected  # the fallbacks, before the migration

    assert migrations.index_actors() == 5
    assert layout.is_done(layout.ACTOR_INDEX) and not layout.is_done(layout.EXECUTION_INDEX)
    assert answers(world) == expected  # actors from the index, executions still scanned
    progress: list[tuple[int, int]] = []
    assert migrations.index_executions(lambda seen, total: progress.append((seen, total))) == 17
    assert progress and progress[-1][0] >= 17
    assert [seen for seen, _ in progress] == sorted(seen for seen, _ in progress)

    assert layout.is_done(layout.EXECUTION_INDEX)
    layout.forget()  # another process: the markers are in the index store
    assert layout.is_done(layout.ACTOR_INDEX) and layout.is_done(layout.EXECUTION_INDEX)
    assert answers(world) == expected  # from the indexes and counters
    for name in TOTAL_NAMES:  # the counters exist now: the totals are not scanned
        key = execution_model.TOTALS_OF.format(EVERY_ACTOR, name)
        assert stores.executions_store.get(key) == expected["totals"][-1][name]

    # done: a second run does nothing; run again after the markers were lost, it counts nothing twice
    assert migrations.index_actors() == 0 and migrations.index_executions() == 0
    stores.index_store.remove(layout.LAYOUTS, layout.EXECUTION_INDEX)
    layout.forget()
    assert not layout.is_done(layout.EXECUTION_INDEX)
    assert migrations.index_executions() == 0
    assert layout.is_done(layout.EXECUTION_INDEX)
    assert answers(world) == expected


def test_what_happens_during_the_migration_is_counted_once(backend, world):
    a1, s2 = world["actors"]["a1"], world["actors"]["s2"]
    running = world["executions"][a1["db_id"]][-1]
    assert running["status"] == ExecutionStatus.RUNNING
    to_old_layout(backend, world)

    # before the migration: an old execution ends (its usage is counted with it), a new one comes
    Execution.finalize(a1["db_id"], running["id"], runtime=5, cpu=6, io=7)
    fresh = Execution.create(s2, "bob")
    expected_a1 = summed([Execution.get(a1["db_id"], i) for i in ids(world["executions"][a1["db_id"]])])
    assert expected_a1["cpu"] >= 6
    assert Execution.totals_of([a1["db_id"]]) == [expected_a1]  # scanned
    assert ids(Execution.list(s2["db_id"]))[-1] == fresh["id"]

    migrations.index_actors()
    assert migrations.index_executions() == 17  # the old records; the new one was counted when made

    assert Execution.totals_of([a1["db_id"]]) == [expected_a1]  # counted
    [every] = Execution.totals_of([EVERY_ACTOR])
    assert every == execution_model.scanned_totals(EVERY_ACTOR)
    assert every["executions"] == 18
    assert ids(Execution.list(s2["db_id"])) == [*ids(world["executions"][s2["db_id"]]), fresh["id"]]


def test_an_actor_created_in_the_old_layout_is_listed_after_the_migration(backend, world):
    to_old_layout(backend, world)
    # written the old way: a record and a permission map, nothing else
    dbid = "DEV_oldRecord12345"
    stores.actors_store[dbid] = {**world["actors"]["a1"], "id": "oldRecord12345", "db_id": dbid,
                                 "name": "old", "owner": "carol", "create_time": "1.0"}
    stores.permissions_store[dbid] = {"carol": codes.UPDATE, "bob": codes.READ}
    assert [a["name"] for a in Actor.list_for_tenant("DEV")] == ["old", "a1", "a2", "a3"]  # scanned
    assert [a["name"] for a in Actor.readable_by("DEV", "bob")] == ["old", "a2", "a3"]

    assert migrations.index_actors() == 6

    assert [a["name"] for a in Actor.list_for_tenant("DEV")] == ["old", "a1", "a2", "a3"]
    assert [a["name"] for a in Actor.readable_by("DEV", "bob")] == ["old", "a2", "a3"]
    assert [a["name"] for a in Actor.readable_by("DEV", "carol")] == ["old", "a3"]
    assert Actor.page_all(0, 1)[0]["name"] == "old"


# -- what a listing reads -------------------------------------------------------------------------
SCANS = ("keys", "items", "values", "keys_with_prefix", "__iter__", "__len__")


class CountingStore:
    """Stands in for a store (as the fixtures install stores) and notes every key read and every
    scan; everything else goes to the real store."""

    def __init__(self, inner):
        self._inner = inner
        self.read: list[str] = []
        self.scans: list[str] = []

    def get(self, key, default=None):
        self.read.append(key)
        return self._inner.get(key, default)

    def __getitem__(self, key):
        self.read.append(key)
        return self._inner[key]

    def __contains__(self, key):
        self.read.append(key)
        return key in self._inner

    def get_many(self, keys):
        self.read.extend(keys)
        return self._inner.get_many(keys)

    def keys(self):
        self.scans.append("keys")
        return self._inner.keys()

    def items(self):
        self.scans.append("items")
        return self._inner.items()

    def values(self):
        self.scans.append("values")
        return self._inner.values()

    def keys_with_prefix(self, prefix):
        self.scans.append(f"keys_with_prefix:{prefix}")
        return self._inner.keys_with_prefix(prefix)

    def __iter__(self):
        self.scans.append("__iter__")
        return iter(self._inner)

    def __len__(self):
        self.scans.append("__len__")
        return len(self._inner)

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def reset(self):
        self.read.clear()
        self.scans.clear()


@pytest.fixture
def counted(layout_stores):
    """``counted(name)``: swap the named store for a CountingStore around it (undone after)."""
    swapped: dict[str, object] = {}

    def swap(name: str) -> CountingStore:
        swapped[name] = stores._cache[name]
        proxy = stores._cache[name] = CountingStore(swapped[name])
        return proxy

    yield swap
    for name, inner in swapped.items():
        stores._cache[name] = inner


def test_listing_an_actors_executions_reads_its_records_only(world, counted):
    a1 = world["actors"]["a1"]["db_id"]
    mine = {Execution.key(a1, i) for i in ids(world["executions"][a1])}
    spy = counted("executions_store")

    listed = Execution.list(a1)
    assert ids(listed) == ids(world["executions"][a1])
    assert spy.scans == []
    assert set(spy.read) == mine and len(spy.read) == len(mine)

    spy.reset()
    page = Execution.list(a1, 2, 3)
    assert ids(page) == ids(world["executions"][a1])[2:5]
    assert spy.scans == [] and set(spy.read) == {Execution.key(a1, i) for i in ids(page)}

    spy.reset()
    [totals] = Execution.totals_of([a1])
    assert totals["executions"] == 7
    assert spy.scans == []
    assert set(spy.read) == {execution_model.TOTALS_OF.format(a1, n) for n in TOTAL_NAMES}


def test_the_old_layout_scans_where_the_new_one_does_not(backend, world, counted):
    # the instrument itself: before the migration the same listing has to scan the store
    a1 = world["actors"]["a1"]["db_id"]
    to_old_layout(backend, world)
    spy = counted("executions_store")
    assert ids(Execution.list(a1)) == ids(world["executions"][a1])
    assert spy.scans == [f"keys_with_prefix:{a1}_"]
    spy.reset()
    Execution.totals_of([EVERY_ACTOR])
    assert "items" in spy.scans


def test_listing_a_tenants_actors_reads_that_tenants_actors_only(world, counted):
    actors = world["actors"]
    spy = counted("actors_store")
    perms = counted("permissions_store")

    assert [a["name"] for a in Actor.list_for_tenant("DEV_STAGING")] == ["s1", "s2"]
    assert spy.scans == [] and set(spy.read) == {actors["s1"]["db_id"], actors["s2"]["db_id"]}

    spy.reset()
    assert [a["name"] for a in Actor.readable_by("DEV", "carol")] == ["a3"]
    assert spy.scans == [] and perms.scans == []
    assert set(spy.read) == {actors["a3"]["db_id"]}
    assert set(perms.read) == {actors["a3"]["db_id"]}

    spy.reset()
    assert [a["name"] for a in Actor.page_all(3, 1)] == ["s1"]
    assert spy.scans == [] and spy.read == [actors["s1"]["db_id"]]


@pytest.fixture
def migratable(layout_stores, monkeypatch):
    """``layout_stores`` where the whole migration can run: on Redis the alias store shares DB 15
    with the index's sorted sets, which the alias migration would read as aliases; it gets an
    in-process store of its own."""
    import mongomock

    from actors.store import MongoStore

    monkeypatch.setitem(stores._cache, "alias_store",
                        MongoStore(database="abaco_test", collection="aliases", client=mongomock.MongoClient()))
    return layout_stores


def test_again_counts_the_usage_of_an_execution_finalized_by_an_earlier_version(migratable):
    actor = new_actor("DEV", "alice", "old-worker")
    record = Execution.create(actor, "alice")
    key = Execution.key(actor["db_id"], record["id"])
    # a worker of the earlier version finalizes with a plain write: no usage counted
    stores.executions_store[key] = {**stores.executions_store[key], "status": ExecutionStatus.COMPLETE,
                                    "runtime": 7, "cpu": 3, "io": 50}
    assert Execution.totals_of([actor["db_id"]]) == [{"executions": 1, "cpu": 0, "io": 0, "runtime": 0}]

    assert migrations.main(["--again"]) == 0
    assert Execution.totals_of([actor["db_id"]]) == [{"executions": 1, "cpu": 3, "io": 50, "runtime": 7}]
    assert migrations.main(["--again"]) == 0  # nothing counted twice
    assert Execution.totals_of([actor["db_id"]]) == [{"executions": 1, "cpu": 3, "io": 50, "runtime": 7}]
    assert layout.is_done(layout.EXECUTION_INDEX) and layout.is_done(layout.ACTOR_INDEX)


def test_a_lost_index_store_sends_processes_back_to_scanning(migratable, monkeypatch):
    actor = new_actor("DEV", "alice", "lost-index")
    made = [run(actor, runtime=1, cpu=2, io=3) for _ in range(2)]
    assert layout.is_done(layout.EXECUTION_INDEX)
    for name in (layout.LAYOUTS, execution_model.EXECUTIONS_OF.format(actor["db_id"])):
        stores.index_store.drop(name)  # the index store emptied under a running process
    monkeypatch.setattr(layout, "RECHECK_SECONDS", 0.0)
    assert ids(Execution.list(actor["db_id"])) == ids(made)  # read by scanning meanwhile
    migrations.resume_if_needed()
    if migrations._index_thread is not None:
        migrations._index_thread.join(timeout=30)
    assert layout.is_done(layout.EXECUTION_INDEX)
    assert ids(Execution.list(actor["db_id"])) == ids(made)


def test_an_execution_id_taken_by_another_execution_is_not_shared(layout_stores, monkeypatch):
    actor = new_actor("DEV", "alice", "collide")
    first = Execution.create(actor, "alice")
    assert Execution.store_new(first) == first  # the same record again: a retried write, no new count
    clash = {**first, "message_received_time": str(float(first["message_received_time"]) + 1), "executor": "bob"}
    assert Execution.store_new(clash) is None  # another execution with the same (time-based) id
    ids_made = iter([first["id"], first["id"], "NolBaJ5y6714M"])
    monkeypatch.setattr(execution_model, "new_id", lambda: next(ids_made))
    second = Execution.create(actor, "bob")
    assert second["id"] == "NolBaJ5y6714M" and second["executor"] == "bob"
    assert Execution.get(actor["db_id"], first["id"])["executor"] == "alice"
    assert Execution.totals_of([actor["db_id"]])[0]["executions"] == 2


def test_ids_made_by_processes_at_the_same_moment_differ():
    """Upstream's ids were the timestamp of a UUID1 alone: two processes in one 100 ns tick shared one."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(2) as pool:
        made = pool.map(_many_ids, [20_000, 20_000])
    everyone = made[0] + made[1]
    assert len(set(everyone)) == len(everyone)
    assert all(len(i) == 13 and is_hashid(i) for i in everyone[:1000])


def _many_ids(n: int) -> list[str]:
    return [execution_model.new_id() for _ in range(n)]


# -- round trips of the per-execution writes (Redis) ----------------------------------------------
@pytest.fixture
def round_trips(backend, layout_stores, monkeypatch):
    """``round_trips()``: the requests sent to Redis so far (a pipeline is one); Redis only."""
    if backend != "redis":
        pytest.skip("round trips are counted on the Redis backend")
    sent = []
    real = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(command)
        return real(self, command, check_health)
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return lambda: len(sent)


def test_a_new_execution_is_two_round_trips(round_trips):
    actor = new_actor("DEV", "alice", "rt")
    Execution.create(actor, "alice")  # the first use of the script loads it
    before = round_trips()
    record = Execution.create(actor, "alice")
    assert round_trips() - before == 2  # the indexes (one pipeline), then the record with its counters
    assert Execution.get(actor["db_id"], record["id"])["status"] == ExecutionStatus.SUBMITTED
    assert Execution.totals_of([actor["db_id"]])[0]["executions"] == 2


def test_a_status_move_is_two_round_trips(round_trips):
    actor = new_actor("DEV", "alice", "rt2")
    record = Execution.create(actor, "alice")
    before = round_trips()
    Execution.set_status(actor["db_id"], record["id"], ExecutionStatus.RUNNING, start_time="1700000000.0")
    assert round_trips() - before == 2  # read, then compare-and-set with the status counters
