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


def _build(backend: str, collection: str, redis_cls, mongo_cls, **options):
    """A store or index of ``backend``: on Redis in DB 15, on Mongo in ``collection``."""
    if backend == "redis":
        host = os.environ.get("ABACO_TEST_REDIS_HOST", "127.0.0.1")
        port = int(os.environ.get("ABACO_TEST_REDIS_PORT", "6379"))
        return redis_cls(host, port, REDIS_TEST_DB, **options)
    if backend == "mongomock":
        return mongo_cls(database=MONGO_TEST_DATABASE, collection=collection, client=mongomock.MongoClient(),
                         **options)
    url = os.environ.get("ABACO_TEST_MONGO_URL")
    if not url:
        pytest.skip("real MongoDB tests need ABACO_TEST_MONGO_URL (MongoDB is not installable here)")
    return mongo_cls(url, database=MONGO_TEST_DATABASE, collection=collection, **options)


def _redis_store(ex):
    return _build("redis", "", RedisStore, MongoStore, ex=ex)


def _flushed_factory(build):
    """A fixture body: ``make(...)`` returns a new empty ``build(n, ...)``; all are emptied and closed
    after the test."""
    made: list = []

    def make(*args, **kwargs):
        thing = build(len(made), *args, **kwargs)
        thing.flush()
        made.append(thing)
        return thing

    yield make
    for thing in made:
        thing.flush()
        thing.close()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def make_store(backend):
    """A factory of empty stores of the current backend: ``make_store(ex=-1)``.

    On Redis every store of one test shares DB 15: create them all before writing to any.
    """
    def build(n: int, ex: int | None = -1) -> AbstractStore:
        return _build(backend, f"store_test_{n}", RedisStore, MongoStore, ex=ex)

    yield from _flushed_factory(build)


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
    def build(n: int) -> AbstractIndex:
        return _build(backend, f"index_test_{n}", RedisIndex, MongoIndex)

    yield from _flushed_factory(build)


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
