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

from actors.store import AbstractStore, MongoStore, RedisStore

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
