"""Store fixtures: one contract suite, parametrized over the backends.

* ``redis``: a real server at ``ABACO_TEST_REDIS_HOST``/``ABACO_TEST_REDIS_PORT`` (default
  127.0.0.1:6379), logical DB 15, flushed before each test.
* ``mongomock``: an in-process fake (checks our driver calls, not the database; not thread-safe).
* ``mongo``: a real server at ``ABACO_TEST_MONGO_URL``; skipped when the variable is not set.
"""
from __future__ import annotations

import os

import mongomock
import pytest

from actors.store import AbstractIndex, AbstractStore, MongoIndex, MongoStore, RedisIndex, RedisStore

REDIS_TEST_DB = 15
MONGO_TEST_DATABASE = "abaco_test"
BACKENDS = ["redis", "mongomock", "mongo"]
THREAD_SAFE_BACKENDS = {"redis", "mongo"}


def _redis_store(ex):
    host = os.environ.get("ABACO_TEST_REDIS_HOST", "127.0.0.1")
    port = int(os.environ.get("ABACO_TEST_REDIS_PORT", "6379"))
    return RedisStore(host, port, REDIS_TEST_DB, ex=ex)


def _mongo_store(backend, ex, collection):
    if backend == "mongomock":
        return MongoStore(database=MONGO_TEST_DATABASE, collection=collection, ex=ex,
                          client=mongomock.MongoClient())
    url = os.environ.get("ABACO_TEST_MONGO_URL")
    if not url:
        pytest.skip("real MongoDB tests need ABACO_TEST_MONGO_URL (MongoDB is not installable here)")
    return MongoStore(url, database=MONGO_TEST_DATABASE, collection=collection, ex=ex)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def make_store(backend):
    """A factory of empty stores of the current backend: ``make_store(ex=-1)``.

    On Redis every store of one test shares DB 15: create them all before writing to any.
    """
    made: list[AbstractStore] = []

    def make(ex: int | None = -1) -> AbstractStore:
        if backend == "redis":
            store = _redis_store(ex)
        else:
            store = _mongo_store(backend, ex, f"store_test_{len(made)}")
        store.flush()
        made.append(store)
        return store

    yield make
    for store in made:
        store.flush()
        store.close()


@pytest.fixture
def store(make_store) -> AbstractStore:
    return make_store()


@pytest.fixture
def threaded_store(backend, store) -> AbstractStore:
    """The store, for tests that race threads against it (skipped where the backend isn't thread-safe)."""
    if backend not in THREAD_SAFE_BACKENDS:
        pytest.skip(f"{backend} is not thread-safe; concurrency is tested on real Redis/MongoDB")
    return store


@pytest.fixture
def make_index(backend):
    """A factory of empty index stores of the current backend (on Redis: DB 15 too)."""
    made: list[AbstractIndex] = []

    def make() -> AbstractIndex:
        if backend == "redis":
            host = os.environ.get("ABACO_TEST_REDIS_HOST", "127.0.0.1")
            port = int(os.environ.get("ABACO_TEST_REDIS_PORT", "6379"))
            index = RedisIndex(host, port, REDIS_TEST_DB)
        elif backend == "mongomock":
            index = MongoIndex(database=MONGO_TEST_DATABASE, collection=f"index_test_{len(made)}",
                               client=mongomock.MongoClient())
        else:
            url = os.environ.get("ABACO_TEST_MONGO_URL")
            if not url:
                pytest.skip("real MongoDB tests need ABACO_TEST_MONGO_URL (MongoDB is not installable here)")
            index = MongoIndex(url, database=MONGO_TEST_DATABASE, collection=f"index_test_{len(made)}")
        index.flush()
        made.append(index)
        return index

    yield make
    for index in made:
        index.flush()
        index.close()


@pytest.fixture
def index(make_index) -> AbstractIndex:
    return make_index()


@pytest.fixture
def model_stores(make_store, make_index):
    """Fresh stores of the current backend stand in for every named store and the index store, with
    the current layout marked done (as the migrations leave a new deployment)."""
    from actors import stores
    from actors.models import layout

    made = {name: make_store() for name in stores.STORES}
    made["index_store"] = make_index()
    stores._cache.update(made)
    layout.forget()
    layout.mark_done(layout.ACTOR_INDEX)
    layout.mark_done(layout.EXECUTION_INDEX)
    yield made
    for name in made:
        stores._cache.pop(name, None)
    layout.forget()
