"""The named stores of Abaco and which database holds each one.

Each store's backend is configuration: ``[store] <store name> = redis | mongo`` (for example
``actors_store = redis``). The defaults are upstream's layout: actors, workers,
nonces, aliases and pregen_clients in Redis; logs, permissions, executions and clients in Mongo.
Every store has both a Redis logical DB and a Mongo collection, so any store can move.

Connection options come from ``[store]``: ``redis_host``, ``redis_port`` (required when a store
uses Redis), ``redis_password``, ``mongo_host``, ``mongo_port`` (required when a store uses Mongo),
``mongo_user``, ``mongo_password``, ``mongo_database`` (default ``abaco``). Passwords are read
through the config only, which also takes them from the environment under upstream's names
``redis_password`` / ``mongo_password`` (or ``store_redis_password``); a Mongo password without a
``mongo_user`` logs in as ``admin``, the root user docker-compose-local-db.yml creates. ``[web] log_ex``
(default 43200) is the default expiry of ``logs_store``.

Stores are created on first use, so importing this module connects to nothing::

    from actors.stores import actors_store      # builds (once) and returns the store
    get_store("actors_store")                   # the same
    reset()                                     # forget cached stores (tests)
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NamedTuple

from actors.config import ConfigError, conf
from actors.store import AbstractIndex, AbstractStore, MongoIndex, MongoStore, RedisIndex, RedisStore


class _Spec(NamedTuple):
    backend: str  # the default backend
    redis_db: int
    collection: str


STORES: dict[str, _Spec] = {
    "actors_store": _Spec("redis", 1, "actors_store"),
    "workers_store": _Spec("redis", 2, "workers_store"),
    "nonce_store": _Spec("redis", 3, "nonce_store"),
    "alias_store": _Spec("redis", 4, "alias_store"),
    "pregen_clients": _Spec("redis", 5, "pregen_clients"),
    "logs_store": _Spec("mongo", 6, "1"),
    "permissions_store": _Spec("mongo", 7, "2"),
    "executions_store": _Spec("mongo", 8, "3"),
    "clients_store": _Spec("mongo", 9, "4"),
    "hosts_store": _Spec("redis", 10, "5"),  # ours: each compute host's heartbeat
}
# ours: ordered indexes of what the API lists (the executions of an actor, the actors of a tenant
# or a user), so a listing reads its own records only; by default beside the executions
INDEXES: dict[str, _Spec] = {
    "index_store": _Spec("executions_store", 11, "6"),
}
BACKENDS = ("redis", "mongo")
DEFAULT_LOG_EX = 43200
DEFAULT_MONGO_USER = "admin"

_cache: dict[str, AbstractStore | AbstractIndex] = {}
_lock = threading.Lock()


def backend_of(name: str) -> str:
    """``redis`` or ``mongo``: where the store (or index) ``name`` lives according to the configuration."""
    default = STORES[name].backend if name in STORES else backend_of(INDEXES[name].backend)
    backend = conf().get("store", name, default).strip().lower()
    if backend not in BACKENDS:
        raise ConfigError(f"[store] {name} must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return backend


def _expiry(name: str) -> int:
    return conf().get_int("web", "log_ex", DEFAULT_LOG_EX) if name == "logs_store" else -1


def _redis_options(spec: _Spec) -> tuple[tuple, dict]:
    """``(host, port, db)`` and the keyword options of a Redis store or index of ``spec``."""
    c = conf()
    return ((c.get("store", "redis_host"), c.get_int("store", "redis_port"), spec.redis_db),
            {"password": c.get("store", "redis_password", None) or None})


def _mongo_options(spec: _Spec) -> tuple[tuple, dict]:
    """``(host, port)`` and the keyword options of a Mongo store or index of ``spec``."""
    c = conf()
    password = c.get("store", "mongo_password", None) or None
    user = c.get("store", "mongo_user", None) or (DEFAULT_MONGO_USER if password else None)
    return ((c.get("store", "mongo_host"), c.get_int("store", "mongo_port")),
            {"database": c.get("store", "mongo_database", "abaco"), "collection": spec.collection,
             "user": user, "password": password})


def _build(name: str) -> AbstractStore:
    spec, ex = STORES[name], _expiry(name)
    cls, (args, options) = ((RedisStore, _redis_options(spec)) if backend_of(name) == "redis"
                            else (MongoStore, _mongo_options(spec)))
    return cls(*args, **options, ex=ex)


def _build_index(name: str) -> AbstractIndex:
    spec = INDEXES[name]
    cls, (args, options) = ((RedisIndex, _redis_options(spec)) if backend_of(name) == "redis"
                            else (MongoIndex, _mongo_options(spec)))
    return cls(*args, **options)


def describe_layout() -> str:
    """Where the stores live, in one line for start-up logs."""
    in_mongo = [name for name in STORES if backend_of(name) == "mongo"]
    if not in_mongo:
        return "every store is in Redis (none in MongoDB)"
    return f"in MongoDB: {', '.join(in_mongo)}; every other store in Redis"


def _cached(name: str, build: Callable[[str], AbstractStore | AbstractIndex]) -> AbstractStore | AbstractIndex:
    made = _cache.get(name)
    if made is None:
        with _lock:
            made = _cache.get(name)
            if made is None:
                made = _cache[name] = build(name)
    return made


def get_index(name: str) -> AbstractIndex:
    """The index store called ``name`` (one of :data:`INDEXES`), created on first use."""
    if name not in INDEXES:
        raise KeyError(f"no index store named {name!r}")
    return _cached(name, _build_index)


def get_store(name: str) -> AbstractStore:
    """The store called ``name`` (one of :data:`STORES`), created on first use."""
    if name not in STORES:
        raise KeyError(f"no store named {name!r}")
    return _cached(name, _build)


def reset() -> None:
    """Forget every cached store; the next access builds them again from the configuration."""
    with _lock:
        _cache.clear()


def __getattr__(name: str) -> AbstractStore | AbstractIndex:
    if name in STORES:
        return get_store(name)
    if name in INDEXES:
        return get_index(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(STORES) + list(INDEXES))
