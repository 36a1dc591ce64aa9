"""The store contract (actors/store.py), one suite for every backend, plus actors/stores.py wiring.

Backends and fixtures are in conftest.py. Concurrency tests race threads and must fail on a
non-atomic implementation; they run on the thread-safe backends (real Redis, real MongoDB).
"""
from __future__ import annotations

import threading
import time

import pytest

from actors import config, stores
from actors import store as store_module
from actors.config import Config, ConfigError

pytestmark = pytest.mark.unit

ODD_KEYS = ["jane.doe", "$where", "a.b.c", "ключ-🔑", "with space", "a*b?[c]\\d", "^(x)+$",
            "{\"json\": 1}"]
JSON_VALUES = [{"a": {"b": [1, 2.5, None, True]}}, [1, "two", {"3": 3}], "text", "ünïcødé ✓", 0, 42, -1.5,
               True, False, None, {}, []]
THREADS, OPS = 8, 50
DEADLINE = 10.0  # seconds allowed for a 1 s expiry to be observed


def wait_until(predicate, timeout=DEADLINE, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def gone(s, key):
    return lambda: key not in s


def race(n_threads, work):
    """Run ``work(i)`` in ``n_threads`` threads started together; return results, re-raise errors."""
    barrier = threading.Barrier(n_threads)
    results, errors = [None] * n_threads, []

    def run(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as e:  # noqa: BLE001 - reported to the test thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "threads did not finish"
    if errors:
        raise errors[0]
    return results


# -- plain mapping ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", JSON_VALUES, ids=repr)
def test_set_get_roundtrip(store, value):
    store["k"] = value
    assert store["k"] == value
    assert type(store["k"]) is type(value)


def test_missing_key_raises_keyerror(store):
    with pytest.raises(KeyError):
        store["nope"]
    assert store.get("nope", "dflt") == "dflt"
    assert "nope" not in store


def test_overwrite(store):
    store["k"] = {"a": 1}
    store["k"] = [2]
    assert store["k"] == [2]


def test_delete_and_delete_missing(store):
    store["k"] = 1
    del store["k"]
    assert "k" not in store
    del store["k"]  # no error
    del store["never"]


def test_iteration_len_views(store):
    data = {f"key{i}": {"n": i} for i in range(20)}
    for k, v in data.items():
        store[k] = v
    assert len(store) == 20
    assert sorted(store) == sorted(data)
    assert all(type(k) is str for k in store)
    assert sorted(store.keys()) == sorted(data)
    assert sorted(store.items()) == sorted(data.items(), key=lambda kv: kv[0])
    assert sorted(v["n"] for v in store.values()) == list(range(20))
    assert "key3" in store


def test_iteration_spans_scan_batches(store, monkeypatch):
    monkeypatch.setattr(store_module, "SCAN_BATCH", 10)
    n = 10 * 2 + 7
    for i in range(n):
        store[f"k{i}"] = i
    assert len(store) == n
    assert dict(store.items()) == {f"k{i}": i for i in range(n)}
    assert len(store.keys()) == n


def test_delete_during_iteration_is_tolerated(store):
    for i in range(50):
        store[f"k{i}"] = i
    seen = []
    for key in store:
        seen.append(key)
        for j in range(50):
            del store[f"k{j}"]
    assert seen and all(type(k) is str for k in seen)
    assert store.items() == [] and store.values() == [] and store.keys() == []


def test_items_skips_key_deleted_between_scan_and_read(backend, store, monkeypatch):
    if backend != "redis":
        pytest.skip("Mongo reads keys and values in one query; there is no gap to delete into")
    store["a"], store["b"] = 1, 2
    real_mget = store._redis.mget

    def mget_after_delete(keys):
        store._redis.delete("a")
        return real_mget(keys)

    monkeypatch.setattr(store._redis, "mget", mget_after_delete)
    assert store.items() == [("b", 2)]


def test_concurrent_delete_during_items(threaded_store):
    s = threaded_store
    for i in range(1000):
        s[f"k{i}"] = i
    stop = threading.Event()

    def deleter():
        for i in range(1000):
            del s[f"k{i}"]
        stop.set()

    t = threading.Thread(target=deleter)
    t.start()
    while not stop.is_set():
        for key, value in s.items():
            assert value == int(key[1:])
        s.values(), s.keys()
    t.join()
    assert s.items() == []


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_keys(store, key):
    store[key] = {"x": 1}
    assert store[key] == {"x": 1}
    assert key in list(store)
    store.update(key, "y", {})
    store.update_subfield(key, "y", "z", 3)
    assert store[key] == {"x": 1, "y": {"z": 3}}
    assert store.keys_with_prefix(key) == [key]
    assert store.pop_field(key, "x") == 1
    del store[key]
    assert key not in store


@pytest.mark.parametrize("field", ["jane.doe", "$set", "a.b", "ü.$", ""])
def test_odd_field_names(store, field):
    store["perm"] = {}
    store.update("perm", field, "READ")
    assert store["perm"] == {field: "READ"}
    store.update("perm", field + "2", {"inner.$": 1})
    store.update_subfield("perm", field + "2", "x.y", 2)
    assert store["perm"][field + "2"] == {"inner.$": 1, "x.y": 2}
    assert store.pop_field("perm", field) == "READ"


# -- keys_with_prefix -------------------------------------------------------------------------

@pytest.mark.parametrize("prefix,matching,other", [
    ("abc_", ["abc_1", "abc_"], ["ab", "xabc_1", "ABC_1"]),
    ("a*", ["a*", "a*x"], ["ab", "abx"]),
    ("a?", ["a?b"], ["ab", "aXb"]),
    ("a[b]", ["a[b]c"], ["abc", "a[b"]),
    ("a\\", ["a\\b"], ["ab"]),
    ("a.b", ["a.b1"], ["axb1"]),
    ("$x^(", ["$x^(y"], ["x^(y"]),
    ("ключ", ["ключ🔑"], ["клю"]),
])
def test_keys_with_prefix(store, prefix, matching, other):
    for key in matching + other:
        store[key] = 1
    assert sorted(store.keys_with_prefix(prefix)) == sorted(matching)


def test_keys_with_empty_prefix_is_all_keys(store):
    for key in ("a", "b.c", "$d"):
        store[key] = 1
    assert sorted(store.keys_with_prefix("")) == ["$d", "a", "b.c"]


# -- expiry -----------------------------------------------------------------------------------

def test_set_with_expiry_stores_json(store):
    store.set_with_expiry("log", '{"looks": "like json"}', ex=100)
    assert store["log"] == '{"looks": "like json"}'
    store.set_with_expiry("obj", {"a": [1]}, ex=100)
    assert store["obj"] == {"a": [1]}


def test_set_with_expiry_expires(store):
    store.set_with_expiry("k", "text", ex=1)
    store["forever"] = 1
    assert store["k"] == "text"
    assert wait_until(gone(store, "k"))
    with pytest.raises(KeyError):
        store["k"]
    assert list(store) == ["forever"]
    assert len(store) == 1
    assert store.items() == [("forever", 1)]
    assert store.keys_with_prefix("k") == []


def test_set_with_expiry_uses_store_default(make_store):
    s = make_store(ex=1)
    s.set_with_expiry("k", 1)
    assert wait_until(gone(s, "k"))


def test_set_with_expiry_without_ttl(make_store):
    forever, default_ttl = make_store(ex=-1), make_store(ex=1)
    forever.set_with_expiry("store_ex_-1", "v")
    forever.set_with_expiry("explicit_none", "v", ex=None)
    default_ttl.set_with_expiry("ex_0", "v", ex=0)
    default_ttl.set_with_expiry("ex_-1", "v", ex=-1)
    default_ttl.set_with_expiry("probe", "v", ex=1)
    assert wait_until(gone(default_ttl, "probe"))
    assert [forever[k] for k in ("store_ex_-1", "explicit_none")] == ["v", "v"]
    assert [default_ttl[k] for k in ("ex_0", "ex_-1")] == ["v", "v"]


def test_plain_set_clears_expiry(store):
    store.set_with_expiry("k", 1, ex=1)
    store["k"] = 2
    store.set_with_expiry("probe", 1, ex=1)
    assert wait_until(gone(store, "probe"))
    assert store["k"] == 2


def test_field_update_keeps_expiry(store):
    store.set_with_expiry("k", {"a": 1}, ex=1)
    store.update("k", "b", 2)
    assert store["k"] == {"a": 1, "b": 2}
    assert wait_until(gone(store, "k"))


def test_expired_key_is_missing_for_every_operation(store):
    for key, value in (("d", {"a": 1}), ("l", [1]), ("v", 1), ("e", {})):
        store.set_with_expiry(key, value, ex=1)
    assert wait_until(lambda: not any(k in store for k in "dlve"))
    with pytest.raises(KeyError):
        store.update("d", "b", 2)
    with pytest.raises(KeyError):
        store.pop_fromlist("l")
    assert store.getset("v", 2) is None
    assert store.add_if_empty("e", "f", 1) is True
    assert store.add_key_val_if_empty("d", "new") is True
    store.append_tolist("l", 5)
    assert (store["e"], store["d"], store["l"], store["v"]) == ({"f": 1}, "new", [5], 2)


# -- field operations -------------------------------------------------------------------------

def test_update(store):
    store["k"] = {"a": 1}
    store.update("k", "b", {"c": 2})
    store.update("k", "a", None)
    assert store["k"] == {"a": None, "b": {"c": 2}}
    with pytest.raises(KeyError):
        store.update("missing", "a", 1)
    assert "missing" not in store


def test_update_fields(store):
    store["k"] = {"a": 1, "b": 2}
    store.update_fields("k", {"b": 3, "c": 4})
    assert store["k"] == {"a": 1, "b": 3, "c": 4}
    with pytest.raises(KeyError):
        store.update_fields("missing", {"a": 1})
    assert "missing" not in store


def test_update_subfield(store):
    store["k"] = {"e1": {"status": "SUBMITTED"}}
    store.update_subfield("k", "e1", "status", "RUNNING")
    store.update_subfield("k", "e1", "runtime", 3)
    assert store["k"] == {"e1": {"status": "RUNNING", "runtime": 3}}
    with pytest.raises(KeyError):
        store.update_subfield("missing", "e1", "status", "x")
    with pytest.raises(KeyError):
        store.update_subfield("k", "e2", "status", "x")
    assert store["k"] == {"e1": {"status": "RUNNING", "runtime": 3}}
    assert "missing" not in store


def test_pop_field(store):
    store["k"] = {"w1": {"status": "READY"}, "w2": 2}
    assert store.pop_field("k", "w1") == {"status": "READY"}
    assert store["k"] == {"w2": 2}
    with pytest.raises(KeyError):
        store.pop_field("k", "w1")
    with pytest.raises(KeyError):
        store.pop_field("missing", "w1")
    assert store.pop_field("k", "w2") == 2
    assert store["k"] == {}


def test_getset(store):
    assert store.getset("k", {"a": 1}) is None
    assert store["k"] == {"a": 1}
    assert store.getset("k", [2]) == {"a": 1}
    assert store["k"] == [2]
    store["n"] = None
    assert store.getset("n", 1) is None


def test_mutex(store):
    assert store.mutex_acquire("lock") is True
    assert store.mutex_acquire("lock") is False
    store.mutex_release("lock")
    assert store["lock"] is False
    assert store.mutex_acquire("lock") is True
    store["lock2"] = False
    assert store.mutex_acquire("lock2") is True


def test_add_if_empty(store):
    assert store.add_if_empty("absent", "w1", {"s": 1}) is True
    assert store["absent"] == {"w1": {"s": 1}}
    store["empty"] = {}
    assert store.add_if_empty("empty", "w1", 1) is True
    assert store["empty"] == {"w1": 1}
    assert store.add_if_empty("empty", "w2", 2) is False
    assert store["empty"] == {"w1": 1}


def test_add_key_val_if_empty(store):
    assert store.add_key_val_if_empty("alias", {"db_id": "A"}) is True
    assert store["alias"] == {"db_id": "A"}
    assert store.add_key_val_if_empty("alias", {"db_id": "B"}) is False
    assert store["alias"] == {"db_id": "A"}
    for falsy in (None, {}, 0, ""):
        store["f"] = falsy
        assert store.add_key_val_if_empty("f", "x") is False
        assert store["f"] == falsy


def test_list_operations(store):
    store.append_tolist("l", "a")
    assert store["l"] == ["a"]
    store.append_tolist("l", {"b": 1})
    store.append_tolist("l", "c")
    assert store.pop_fromlist("l") == "c"
    assert store.pop_fromlist("l", 0) == "a"
    assert store["l"] == [{"b": 1}]
    assert store.pop_fromlist("l") == {"b": 1}
    assert store["l"] == []
    with pytest.raises(IndexError):
        store.pop_fromlist("l")
    with pytest.raises(KeyError):
        store.pop_fromlist("missing")
    store["l"] = [1, 2]
    with pytest.raises(IndexError):
        store.pop_fromlist("l", 5)
    assert store["l"] == [1, 2]


def test_within_transaction(store):
    store["n"] = {"uses": 0}

    def incr(cur):
        cur["uses"] += 1
        return cur

    assert store.within_transaction(incr, "n") == {"uses": 1}
    assert store["n"] == {"uses": 1}
    with pytest.raises(KeyError):
        store.within_transaction(incr, "missing")
    assert "missing" not in store
    assert store.within_transaction(incr, "missing", default={"uses": 10}) == {"uses": 11}
    assert store["missing"] == {"uses": 11}
    assert store.within_transaction(lambda cur: "replaced", "n") == "replaced"


def test_within_transaction_error_writes_nothing(store):
    store["n"] = {"uses": 1}

    def fail(cur):
        cur["uses"] = 99
        raise ValueError("no more uses")

    with pytest.raises(ValueError, match="no more uses"):
        store.within_transaction(fail, "n")
    assert store["n"] == {"uses": 1}


def test_flush(store):
    for i in range(5):
        store[f"k{i}"] = i
    store.set_with_expiry("e", 1, ex=100)
    store.flush()
    assert len(store) == 0 and list(store) == []


# -- conflicts, deterministically: a write sneaks in between read and write -------------------

def interfering(store, interference, change):
    """A transaction function that runs ``interference()`` on its first call only."""
    calls = []

    def f(current):
        calls.append(current)
        if len(calls) == 1:
            interference()
        return change(current)

    return f, calls


def test_conflicting_update_forces_retry(store):
    store["k"] = {"n": 0}
    f, calls = interfering(store, lambda: store.update("k", "other", 1), lambda c: {**c, "n": c["n"] + 1})
    assert store.within_transaction(f, "k") == {"n": 1, "other": 1}
    assert store["k"] == {"n": 1, "other": 1}
    assert calls == [{"n": 0}, {"n": 0, "other": 1}]


def test_conflicting_create_forces_retry(store):
    f, calls = interfering(store, lambda: store.__setitem__("k", [1]), lambda c: c + [2])
    assert store.within_transaction(f, "k", default=[]) == [1, 2]
    assert store["k"] == [1, 2] and len(calls) == 2


def test_conflicting_delete_and_recreate_forces_retry(store):
    store["k"] = {"n": 0}

    def recreate():
        del store["k"]
        store["k"] = {"n": 5}

    f, calls = interfering(store, recreate, lambda c: {"n": c["n"] + 1})
    assert store.within_transaction(f, "k") == {"n": 6}
    assert store["k"] == {"n": 6} and len(calls) == 2


def test_conflicting_write_over_expired_value_forces_retry(store):
    store.set_with_expiry("k", ["old"], ex=1)
    assert wait_until(gone(store, "k"))
    f, calls = interfering(store, lambda: store.__setitem__("k", [1]), lambda c: c + [2])
    assert store.within_transaction(f, "k", default=[]) == [1, 2]
    assert store["k"] == [1, 2] and len(calls) == 2


def test_skipped_write_does_not_need_retry(store):
    store["k"] = {"a": 1}
    assert store.add_if_empty("k", "b", 2) is False
    assert store.add_key_val_if_empty("k", 3) is False
    assert store["k"] == {"a": 1}


# -- concurrency (fails on a non-atomic implementation) ---------------------------------------

def test_concurrent_updates_of_different_fields(threaded_store):
    s = threaded_store
    s["k"] = {}
    race(THREADS, lambda t: [s.update("k", f"t{t}-{i}", i) for i in range(OPS)])
    assert s["k"] == {f"t{t}-{i}": i for t in range(THREADS) for i in range(OPS)}


def test_concurrent_update_vs_pop_field(threaded_store):
    s = threaded_store
    half = THREADS // 2
    s["k"] = {f"old{t}-{i}": [t, i] for t in range(half) for i in range(OPS)}

    def work(t):
        if t < half:
            return [s.pop_field("k", f"old{t}-{i}") for i in range(OPS)]
        for i in range(OPS):
            s.update("k", f"new{t}-{i}", i)

    results = race(THREADS, work)
    assert s["k"] == {f"new{t}-{i}": i for t in range(half, THREADS) for i in range(OPS)}
    assert results[:half] == [[[t, i] for i in range(OPS)] for t in range(half)]


def test_concurrent_within_transaction_counter(threaded_store):
    s = threaded_store
    s["nonce"] = {"current_uses": 0}

    def incr(cur):
        return {**cur, "current_uses": cur["current_uses"] + 1}

    race(THREADS, lambda t: [s.within_transaction(incr, "nonce") for _ in range(OPS)])
    assert s["nonce"]["current_uses"] == THREADS * OPS


def test_concurrent_within_transaction_never_overspends(threaded_store):
    s = threaded_store
    s["nonce"] = {"remaining_uses": 25}

    def redeem(cur):
        if cur["remaining_uses"] <= 0:
            raise PermissionError("no uses left")
        return {"remaining_uses": cur["remaining_uses"] - 1}

    def work(t):
        ok = 0
        for _ in range(OPS):
            try:
                s.within_transaction(redeem, "nonce")
                ok += 1
            except PermissionError:
                pass
        return ok

    assert sum(race(THREADS, work)) == 25
    assert s["nonce"] == {"remaining_uses": 0}


def test_concurrent_add_if_empty_has_one_winner(threaded_store):
    s = threaded_store
    for round_ in range(OPS):
        key = f"actor{round_}"
        won = race(THREADS, lambda t: s.add_if_empty(key, f"w{t}", t))
        assert sum(won) == 1
        winner = won.index(True)
        assert s[key] == {f"w{winner}": winner}


def test_concurrent_add_key_val_if_empty_has_one_winner(threaded_store):
    s = threaded_store
    for round_ in range(OPS):
        key = f"alias{round_}"
        won = race(THREADS, lambda t: s.add_key_val_if_empty(key, {"owner": t}))
        assert sum(won) == 1
        assert s[key] == {"owner": won.index(True)}


def test_concurrent_mutex_has_one_winner(threaded_store):
    s = threaded_store
    for round_ in range(OPS):
        assert sum(race(THREADS, lambda t: s.mutex_acquire(f"lock{round_}"))) == 1


def test_concurrent_append_and_pop_list(threaded_store):
    s = threaded_store
    race(THREADS, lambda t: [s.append_tolist("l", [t, i]) for i in range(OPS)])
    expected = sorted([t, i] for t in range(THREADS) for i in range(OPS))
    assert sorted(s["l"]) == expected
    popped = race(THREADS, lambda t: [s.pop_fromlist("l") for _ in range(OPS)])
    assert sorted(item for items in popped for item in items) == expected
    assert s["l"] == []


# -- actors/stores.py: which database holds which store --------------------------------------

class _Recorder:
    """Stands in for RedisStore/MongoStore: records the constructor arguments."""

    def __init__(self, kind, calls):
        self.kind, self.calls = kind, calls

    def __call__(self, *args, **kwargs):
        self.calls.append((self.kind, args, kwargs))
        return (self.kind, args, kwargs)


@pytest.fixture
def configured(tmp_path, monkeypatch):
    """Install a config (INI text, env dict) and record store construction instead of connecting."""
    calls = []
    monkeypatch.setattr(stores, "RedisStore", _Recorder("redis", calls))
    monkeypatch.setattr(stores, "MongoStore", _Recorder("mongo", calls))

    def install(text="", environ=None):
        path = tmp_path / "abaco.conf"
        path.write_text(text)
        monkeypatch.setattr(config, "_config", Config(str(path), environ=environ or {}))
        stores.reset()
        return calls

    yield install
    stores.reset()


BASE_CONF = """
[store]
redis_host = 127.0.0.1
redis_port = 6390
mongo_host = mongo.local
mongo_port = 27017
"""


def test_stores_are_lazy_and_cached(configured):
    calls = configured(BASE_CONF)
    assert calls == []
    first = stores.actors_store
    from actors.stores import actors_store
    assert actors_store is first and stores.get_store("actors_store") is first
    assert calls == [("redis", ("127.0.0.1", 6390, 1), {"password": None, "ex": -1})]
    stores.reset()
    stores.actors_store
    assert len(calls) == 2


def test_stores_default_layout(configured):
    calls = configured(BASE_CONF)
    layout = {name: stores.get_store(name) for name in stores.STORES}
    redis_dbs = {name: v[1][2] for name, v in layout.items() if v[0] == "redis"}
    mongo_colls = {name: v[2]["collection"] for name, v in layout.items() if v[0] == "mongo"}
    assert redis_dbs == {"actors_store": 1, "workers_store": 2, "nonce_store": 3, "alias_store": 4,
                         "pregen_clients": 5, "hosts_store": 10}
    assert mongo_colls == {"logs_store": "1", "permissions_store": "2", "executions_store": "3",
                           "clients_store": "4"}
    assert layout["logs_store"][2]["ex"] == 43200
    assert layout["permissions_store"][2] == {"database": "abaco", "collection": "2", "user": None,
                                              "password": None, "ex": -1}
    assert len(calls) == len(stores.STORES)


def test_stores_backend_and_options_from_config(configured):
    calls = configured(BASE_CONF + "actors_store = mongo\nlogs_store = Redis\nmongo_user = jane.doe\n"
                       "mongo_password = p@ss\nmongo_database = other\n[web]\nlog_ex = 60\n",
                       environ={"store_redis_password": "secret"})
    kind, args, kwargs = stores.actors_store
    assert (kind, args, kwargs["collection"], kwargs["database"]) == (
        "mongo", ("mongo.local", 27017), "actors_store", "other")
    assert (kwargs["user"], kwargs["password"]) == ("jane.doe", "p@ss")
    assert stores.logs_store == ("redis", ("127.0.0.1", 6390, 6), {"password": "secret", "ex": 60})
    assert len(calls) == 2


def test_stores_bad_config(configured):
    configured(BASE_CONF + "actors_store = postgres\n")
    with pytest.raises(ConfigError, match="actors_store"):
        stores.actors_store
    with pytest.raises(AttributeError):
        stores.no_such_store
    with pytest.raises(KeyError):
        stores.get_store("no_such_store")
    configured("[store]\nredis_host = 127.0.0.1\n")
    with pytest.raises(ConfigError, match="redis_port"):
        stores.workers_store


# -- a new record with its counters (Execution.store_new) -----------------------------------------
def test_add_new_counting_writes_a_new_key_and_adds_its_counts(store):
    store["c1"] = 5
    assert store.add_new_counting("k", {"a": 1}, {"c1": 2, "c2": 3}) == ({"a": 1}, True)
    assert store["k"] == {"a": 1}
    assert (store["c1"], store["c2"]) == (7, 3)


def test_add_new_counting_leaves_an_existing_key_and_adds_nothing(store):
    store["k"] = {"mine": True}
    assert store.add_new_counting("k", {"a": 1}, {"c1": 2}) == ({"mine": True}, False)
    assert store["k"] == {"mine": True}
    assert "c1" not in store


def test_add_new_counting_keeps_no_expiry_of_its_own(store):
    assert store.add_new_counting("k", [1], {})[1] is True
    assert store.get("k") == [1]


def test_conflicting_counted_write_counts_once(store):
    store["k"] = {"n": 0}

    def change(current):
        return {**current, "n": current["n"] + 1}, {"total": 1}
    f, calls = interfering(store, lambda: store.update("k", "other", 1), change)
    assert store.within_transaction_counting(f, "k") == {"n": 1, "other": 1}
    assert len(calls) == 2 and store["total"] == 1


def test_a_large_value_is_modified_like_a_small_one(store):
    big = "x" * 2_000_000
    store["k"] = {"log": big}
    f, calls = interfering(store, lambda: store.update("k", "other", 1), lambda c: {**c, "n": 1})
    assert store.within_transaction(f, "k") == {"log": big, "other": 1, "n": 1}
    assert len(calls) == 2
