"""Persistent dict-like stores: one small interface, a Redis and a Mongo backend.

This is the only module that imports ``redis`` or ``pymongo``. Every store maps ``str`` keys to
JSON-serialisable values. Each backend implements a handful of primitives (read, write, delete,
scan, and ``_modify``: an optimistic read-modify-write that retries on conflict); every compound
operation (``update``, ``pop_field``, ``within_transaction``, …) is written once, in
:class:`AbstractStore`, on top of ``_modify`` and is therefore atomic on both backends.

Fixes of upstream (docs/compatibility.md): ``pop_field`` and ``within_transaction`` are
really atomic; the ``*_if_empty`` methods return a bool; Mongo ``update_subfield`` raises
``KeyError``; Mongo never uses user keys as field names; keys are always ``str`` and iteration
skips keys that disappear meanwhile; ``set_with_expiry`` stores JSON like every other write.
"""
from __future__ import annotations

import abc
import copy
import datetime
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

JSON = Any  # dict, list, str, int, float, bool or None
_MISSING: Any = object()  # "no default given"
_ABSENT: Any = object()  # the current value handed to a modifier when the key does not exist
_SKIP: Any = object()  # a modifier's way of saying "write nothing"

SCAN_BATCH = 500

# RedisStore's compare-and-set. KEYS[1] the key, KEYS[2..] counters; ARGV[1] "0" when the key was
# read as absent, else "1" with ARGV[2] the SHA-1 of the text read (a value may be large: its digest
# travels, not the value); ARGV[3] the new text; ARGV[4..] the amounts.
_CAS_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
    if current then return 0 end
elseif not current or redis.sha1hex(current) ~= ARGV[2] then
    return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
for i = 2, #KEYS do
    redis.call('INCRBY', KEYS[i], ARGV[i + 2])
end
return 1
"""


def _encode(value: JSON) -> str:
    return json.dumps(value)


def _pymongo():
    """pymongo, imported on first use: a process whose stores are all in Redis (a worker, in most
    deployments) starts about 70 ms sooner without it."""
    import pymongo

    return pymongo


def _decode(raw: str) -> JSON:
    try:
        return json.loads(raw)
    except ValueError:
        # values written raw by upstream's set_with_expiry read back as the plain string
        return raw


def _ttl(ex: int | None) -> int | None:
    """A TTL in seconds, or None for "never expires" (``ex`` None or <= 0)."""
    return ex if ex is not None and ex > 0 else None


class AbstractStore(MutableMapping):
    """A persistent dict of JSON values; every method is atomic."""

    def __init__(self, ex: int | None = -1):
        self.ex = ex

    # -- backend primitives -----------------------------------------------------------------
    @abc.abstractmethod
    def __getitem__(self, key: str) -> JSON: ...

    @abc.abstractmethod
    def __setitem__(self, key: str, value: JSON) -> None: ...

    @abc.abstractmethod
    def __delitem__(self, key: str) -> None:
        """Remove ``key``; no error if it is missing."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[str]: ...

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def items(self) -> list[tuple[str, JSON]]:
        """A snapshot of the (key, value) pairs; keys deleted meanwhile are skipped."""

    @abc.abstractmethod
    def keys_with_prefix(self, prefix: str) -> list[str]: ...

    @abc.abstractmethod
    def set_with_expiry(self, key: str, value: JSON, ex: int | None = None) -> None:
        """Store ``value`` for ``ex`` seconds (default: the store's ``ex``; None/<=0: forever)."""

    @abc.abstractmethod
    def getset(self, key: str, value: JSON) -> JSON:
        """Set ``key`` and return its previous value (None if absent)."""

    @abc.abstractmethod
    def flush(self) -> None:
        """Remove every key of this store."""

    @abc.abstractmethod
    def _modify(self, key: str, fn: Callable[[JSON], tuple[JSON, Any]], default: JSON = _MISSING) -> Any:
        """Atomically replace the value at ``key`` by ``fn(current)[0]``; return ``fn(current)[1]``.

        ``current`` is a private copy; when the key is missing it is a copy of ``default`` (KeyError
        if no default). ``fn`` may run several times (retry on conflict); if it returns ``_SKIP`` as
        the new value nothing is written; if it raises, nothing is written. A write keeps the key's
        expiry.
        """

    def get_many(self, keys: list[str]) -> list[JSON]:
        """The values of ``keys`` in order, None for a missing one (one round trip where the
        backend allows it)."""
        return [self.get(key) for key in keys]

    def incr(self, key: str, amount: int = 1) -> int:
        """Atomically add ``amount`` to the integer at ``key`` (a missing key counts 0); returns it."""
        def fn(current):
            value = (current if isinstance(current, int) else 0) + amount
            return value, value
        return self._modify(key, fn, default=0)

    # -- mapping views that tolerate concurrent deletes -------------------------------------
    def keys(self) -> list[str]:  # type: ignore[override]
        return list(self)

    def values(self) -> list[JSON]:  # type: ignore[override]
        return [value for _, value in self.items()]

    # -- compound operations, written once on top of _modify -------------------------------
    def update(self, key: str, field: str, value: JSON) -> None:  # type: ignore[override]
        """Atomic ``s[key][field] = value``; KeyError if ``key`` is missing."""
        self.update_fields(key, {field: value})

    def update_fields(self, key: str, mapping: dict) -> None:
        """Atomically set several fields of the dict at ``key``; KeyError if ``key`` is missing."""
        def fn(current):
            current.update(mapping)
            return current, None
        self._modify(key, fn)

    def update_subfield(self, key: str, field1: str, field2: str, value: JSON) -> None:
        """Atomic ``s[key][field1][field2] = value``; KeyError if ``key`` or ``field1`` is missing."""
        def fn(current):
            current[field1][field2] = value
            return current, None
        self._modify(key, fn)

    def pop_field(self, key: str, field: str) -> JSON:
        """Atomically remove ``field`` from the dict at ``key`` and return its value."""
        def fn(current):
            value = current.pop(field)
            return current, value
        return self._modify(key, fn)

    def append_tolist(self, key: str, obj: JSON) -> None:
        """Atomically append to the list at ``key`` (a missing key becomes ``[obj]``)."""
        def fn(current):
            current.append(obj)
            return current, None
        self._modify(key, fn, default=[])

    def pop_fromlist(self, key: str, idx: int = -1) -> JSON:
        """Atomically pop item ``idx`` of the list at ``key``; KeyError/IndexError like a list."""
        def fn(current):
            value = current.pop(idx)
            return current, value
        return self._modify(key, fn)

    def add_if_empty(self, key: str, field: str, value: JSON) -> bool:
        """Set ``s[key][field] = value`` only if ``key`` is missing or holds ``{}``."""
        def fn(current):
            if current != {}:
                return _SKIP, False
            return {field: value}, True
        return self._modify(key, fn, default={})

    def add_key_val_if_empty(self, key: str, value: JSON) -> bool:
        """Set ``s[key] = value`` only if ``key`` is missing."""
        def fn(current):
            if current is not _ABSENT:
                return _SKIP, False
            return value, True
        return self._modify(key, fn, default=_ABSENT)

    def within_transaction_counting(self, f: Callable[[JSON], tuple[JSON, dict[str, int]]], key: str,
                                    default: JSON = _MISSING) -> JSON:
        """Like :meth:`within_transaction`, with counters: ``f(current)`` returns ``(new, counts)``,
        ``counts`` mapping counter keys of this store to amounts added along with the write. In
        Redis the write and the additions are one transaction, so a retried one never counts twice;
        elsewhere the additions follow the write (a crash in between loses them)."""
        added: dict[str, int] = {}

        def fn(current):
            new, counts = f(current)
            added.clear()
            added.update(counts)
            return new, new
        new = self._modify(key, fn, default=default)
        for counter, amount in added.items():
            self.incr(counter, amount)
        return new

    def add_new_counting(self, key: str, value: JSON, counts: dict[str, int]) -> tuple[JSON, bool]:
        """Store ``value`` at ``key`` unless the key exists, adding ``counts`` (counter keys of this
        store to amounts) only when it was written; the additions are atomic with the write where
        :meth:`within_transaction_counting`'s are. Returns ``(what key holds, whether this call
        wrote it)``."""
        def fn(current):
            if current is not _ABSENT:
                return _SKIP, (current, False)
            return value, (value, True)
        stored, written = self._modify(key, fn, default=_ABSENT)
        if written:
            for counter, amount in counts.items():
                self.incr(counter, amount)
        return stored, written

    def within_transaction(self, f: Callable[[JSON], JSON], key: str, default: JSON = _MISSING) -> JSON:
        """Atomically replace ``s[key]`` by ``f(s[key])`` and return the new value.

        ``f`` may be called several times and must be pure; if it raises nothing is written. A
        missing key passes ``default`` to ``f`` (KeyError if no default is given).
        """
        def fn(current):
            new = f(current)
            return new, new
        return self._modify(key, fn, default=default)

    def mutex_acquire(self, key: str) -> bool:
        """Take the lock at ``key`` (held while the value is ``True``); True if acquired."""
        def fn(current):
            if current is True:
                return _SKIP, False
            return True, True
        return self._modify(key, fn, default=False)

    def mutex_release(self, key: str) -> None:
        self[key] = False

    def close(self) -> None:
        """Release connections (the store reconnects if used again)."""


def _fresh(default: JSON) -> JSON:
    return default if default is _ABSENT else copy.deepcopy(default)


class RedisStore(AbstractStore):
    """JSON strings in one Redis logical database; a read-modify-write is a GET then a compare-and-set
    script (``_CAS_SCRIPT``), again on a conflict."""

    def __init__(self, host: str, port: int, db: int = 0, password: str | None = None,
                 ex: int | None = -1, **redis_options: Any):
        super().__init__(ex)
        redis_options.setdefault("socket_timeout", 30)
        redis_options.setdefault("socket_connect_timeout", 10)
        redis_options.setdefault("health_check_interval", 30)
        # ride out a Redis restart: every write we issue sets a computed value, so a command retried
        # after a dropped connection writes the same thing again
        redis_options.setdefault("retry", Retry(ExponentialBackoff(cap=2.0, base=0.05), 12, supported_errors=(
            redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)))
        redis_options.setdefault("retry_on_error", [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError])
        self._pool = redis.ConnectionPool(host=host, port=int(port), db=int(db), password=password or None,
                                          decode_responses=True, **redis_options)
        self._redis = redis.Redis(connection_pool=self._pool)
        self._cas = self._redis.register_script(_CAS_SCRIPT)  # no round trip until first used

    def __getitem__(self, key: str) -> JSON:
        raw = self._redis.get(key)
        if raw is None:
            raise KeyError(key)
        return _decode(raw)

    def __setitem__(self, key: str, value: JSON) -> None:
        self._redis.set(key, _encode(value))

    def __delitem__(self, key: str) -> None:
        self._redis.delete(key)

    def __contains__(self, key: object) -> bool:
        return bool(self._redis.exists(key))

    def incr(self, key: str, amount: int = 1) -> int:
        # an integer's JSON text is the integer string INCRBY works on
        return int(self._redis.incrby(key, amount))

    def within_transaction_counting(self, f, key, default=_MISSING):
        def fn(current):
            new, counts = f(current)
            return new, (new, counts)
        new, _ = self._modify(key, fn, default, counts_of=lambda result: result[1])
        return new

    def get_many(self, keys: list[str]) -> list[JSON]:
        values: list[JSON] = []
        for start in range(0, len(keys), SCAN_BATCH):
            batch = self._redis.mget(keys[start:start + SCAN_BATCH])
            values.extend(None if raw is None else _decode(raw) for raw in batch)
        return values

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()  # SCAN may return a key twice while the keyspace is rehashed
        for keys in self._batches():
            for key in keys:
                if key not in seen:
                    seen.add(key)
                    yield key

    def __len__(self) -> int:
        return self._redis.dbsize()

    def _batches(self, match: str | None = None) -> Iterator[list[str]]:
        cursor = None
        while cursor != 0:
            cursor, keys = self._redis.scan(cursor or 0, match=match, count=SCAN_BATCH)
            if keys:
                yield keys

    def items(self) -> list[tuple[str, JSON]]:  # type: ignore[override]
        pairs: dict[str, JSON] = {}
        for keys in self._batches():
            pairs.update((k, _decode(raw)) for k, raw in zip(keys, self._redis.mget(keys)) if raw is not None)
        return list(pairs.items())

    def keys_with_prefix(self, prefix: str) -> list[str]:
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
        return list(dict.fromkeys(k for keys in self._batches(match=pattern) for k in keys))

    def set_with_expiry(self, key: str, value: JSON, ex: int | None = None) -> None:
        self._redis.set(key, _encode(value), ex=_ttl(self.ex if ex is None else ex))

    def getset(self, key: str, value: JSON) -> JSON:
        raw = self._redis.getset(key, _encode(value))
        return None if raw is None else _decode(raw)

    def flush(self) -> None:
        self._redis.flushdb()

    def _modify(self, key, fn, default=_MISSING, counts_of: Callable[[Any], dict[str, int]] | None = None):
        """``counts_of(result)``: counters of this store to add to in the same transaction as the
        write (``within_transaction_counting``).

        Two round trips: a GET, then a script that writes only if the key still holds what was
        read (a compare-and-set), with the counters in the same script; on a conflict, again."""
        while True:
            raw = self._redis.get(key)
            if raw is None and default is _MISSING:
                raise KeyError(key)
            new, result = fn(_fresh(default) if raw is None else _decode(raw))
            if new is _SKIP:
                return result
            if self._swap(key, raw, _encode(new), counts_of(result) if counts_of else {}):
                return result

    def _swap(self, key: str, expected: str | None, new: str, counts: dict[str, int]) -> bool:
        """Write ``new`` at ``key`` (keeping its expiry) and add ``counts``, only if the key holds
        ``expected`` (None: does not exist); True if written."""
        keys = [key, *counts]
        digest = "" if expected is None else hashlib.sha1(expected.encode()).hexdigest()
        args = ["0" if expected is None else "1", digest, new, *(int(v) for v in counts.values())]
        return bool(self._cas(keys=keys, args=args))

    def add_new_counting(self, key: str, value: JSON, counts: dict[str, int]) -> tuple[JSON, bool]:
        # one round trip when the key is new, the usual case
        encoded = _encode(value)
        while True:
            if self._swap(key, None, encoded, counts):
                return value, True
            raw = self._redis.get(key)
            if raw is not None:  # else deleted meanwhile: try again
                return _decode(raw), False

    def close(self) -> None:
        self._pool.disconnect()


def _utcnow() -> datetime.datetime:
    """Naive UTC, the way BSON dates read back (millisecond precision)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class MongoStore(AbstractStore):
    """One document per key: ``{_id: key, v: <JSON text>, rev: <int>, exp?: <datetime>}``.

    User keys are never field names (upstream broke on ``jane.doe``). Writes that depend on the
    current value are conditioned on ``rev``, a random int replaced by every write (random rather
    than a counter, so a deleted and re-created document never repeats a revision a concurrent
    writer has seen). Expiry: ``exp`` plus a TTL index with ``expireAfterSeconds=0``; reads also
    hide expired documents, since the TTL monitor only runs every 60 s.
    """

    def __init__(self, uri_or_host: str | None = None, port: int | None = None, database: str = "abaco",
                 collection: str = "store", user: str | None = None, password: str | None = None,
                 ex: int | None = -1, client: Any = None):
        super().__init__(ex)
        self._own_client = client is None
        if client is None:
            client = self._connect(uri_or_host or "localhost", port, user, password)
        self._client = client
        self._coll = client[database][collection]
        self._ensure_ttl_index()

    @staticmethod
    def _connect(uri_or_host: str, port: int | None, user: str | None, password: str | None):
        options: dict[str, Any] = {"serverSelectionTimeoutMS": 10000, "connectTimeoutMS": 10000}
        if user:
            options.update(username=user, password=password or "")  # no URL quoting needed
        if uri_or_host.startswith(("mongodb://", "mongodb+srv://")):
            return _pymongo().MongoClient(uri_or_host, **options)
        return _pymongo().MongoClient(host=uri_or_host, port=int(port or 27017), **options)

    def _ensure_ttl_index(self) -> None:
        try:
            self._coll.create_index("exp", expireAfterSeconds=0)
        except _pymongo().errors.OperationFailure as e:
            # e.g. upstream's index with expireAfterSeconds=log_ex; reads still honour `exp`
            logger.warning("TTL index on %s.exp not created (%s); drop the existing index so that "
                           "expired documents are removed from disk", self._coll.full_name, e)

    @staticmethod
    def _live_filter() -> dict:
        return {"$or": [{"exp": {"$exists": False}}, {"exp": {"$gt": _utcnow()}}]}

    @staticmethod
    def _is_live(doc: dict | None) -> bool:
        if doc is None or doc.get("exp") is None:
            return doc is not None
        exp = doc["exp"]
        if exp.tzinfo is not None:  # a tz_aware client
            exp = exp.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return exp > _utcnow()

    def _write(self, key: str, value: JSON, exp: datetime.datetime | None = None) -> dict | None:
        """Unconditional upsert returning the previous document; clears the expiry unless ``exp``."""
        update: dict[str, Any] = {"$set": {"v": _encode(value), "rev": secrets.randbits(62)}}
        if exp is None:
            update["$unset"] = {"exp": ""}
        else:
            update["$set"]["exp"] = exp
        before = _pymongo().ReturnDocument.BEFORE
        for attempt in range(3):  # concurrent upserts of one new _id can collide once
            try:
                return self._coll.find_one_and_update({"_id": key}, update, upsert=True, return_document=before)
            except _pymongo().errors.DuplicateKeyError:
                if attempt == 2:
                    raise

    def __getitem__(self, key: str) -> JSON:
        doc = self._coll.find_one({"_id": key})
        if not self._is_live(doc):
            raise KeyError(key)
        return _decode(doc["v"])

    def get_many(self, keys: list[str]) -> list[JSON]:
        found: dict[str, dict] = {}
        for start in range(0, len(keys), SCAN_BATCH):  # a query document is limited to 16 MB
            found.update((doc["_id"], doc) for doc in self._coll.find({"_id": {"$in": keys[start:start + SCAN_BATCH]}}))
        return [_decode(found[k]["v"]) if self._is_live(found.get(k)) else None for k in keys]

    def __setitem__(self, key: str, value: JSON) -> None:
        self._write(key, value)

    def __delitem__(self, key: str) -> None:
        self._coll.delete_one({"_id": key})

    def __iter__(self) -> Iterator[str]:
        return (doc["_id"] for doc in self._coll.find(self._live_filter(), {"_id": 1}))

    def __len__(self) -> int:
        return self._coll.count_documents(self._live_filter())

    def items(self) -> list[tuple[str, JSON]]:  # type: ignore[override]
        return [(doc["_id"], _decode(doc["v"])) for doc in self._coll.find(self._live_filter(), {"v": 1})]

    def keys_with_prefix(self, prefix: str) -> list[str]:
        query = {"_id": {"$regex": "^" + re.escape(prefix)}, **self._live_filter()}
        return [doc["_id"] for doc in self._coll.find(query, {"_id": 1})]

    def set_with_expiry(self, key: str, value: JSON, ex: int | None = None) -> None:
        ttl = _ttl(self.ex if ex is None else ex)
        self._write(key, value, exp=None if ttl is None else _utcnow() + datetime.timedelta(seconds=ttl))

    def getset(self, key: str, value: JSON) -> JSON:
        previous = self._write(key, value)
        return _decode(previous["v"]) if self._is_live(previous) else None

    def flush(self) -> None:
        self._coll.delete_many({})

    def _modify(self, key, fn, default=_MISSING):
        while True:
            doc = self._coll.find_one({"_id": key})
            live = self._is_live(doc)
            if not live and default is _MISSING:
                raise KeyError(key)
            new, result = fn(_decode(doc["v"]) if live else _fresh(default))
            if new is _SKIP or self._replace_if_unchanged(key, doc, live, new):
                return result

    def _replace_if_unchanged(self, key: str, doc: dict | None, live: bool, new: JSON) -> bool:
        fields = {"v": _encode(new), "rev": secrets.randbits(62)}
        if doc is None:
            try:
                self._coll.insert_one({"_id": key, **fields})
                return True
            except _pymongo().errors.DuplicateKeyError:
                return False
        update: dict[str, Any] = {"$set": fields}
        if not live:  # an expired document is replaced by a fresh value without expiry
            update["$unset"] = {"exp": ""}
        return self._coll.update_one({"_id": key, "rev": doc.get("rev")}, update).matched_count == 1

    def close(self) -> None:
        if self._own_client:
            self._client.close()


# -- ordered indexes ---------------------------------------------------------------------------------
class AbstractIndex(abc.ABC):
    """Named ordered sets of string members, each with a score: what a listing needs without reading
    every record (the execution ids of one actor by arrival time, the actors of one tenant, ...).
    Adding a member twice keeps one, with the later score. Every method is atomic."""

    @abc.abstractmethod
    def add(self, index: str, member: str, score: float) -> None: ...

    def add_many(self, index: str, scores: dict[str, float]) -> None:
        """Add several members at once (one round trip where the backend allows it)."""
        for member, score in scores.items():
            self.add(index, member, score)

    def add_to_each(self, entries: dict[str, dict[str, float]]) -> None:
        """``add_many`` on several indexes (``{index: {member: score}}``), in one round trip where
        the backend allows it."""
        for index, scores in entries.items():
            self.add_many(index, scores)

    @abc.abstractmethod
    def remove(self, index: str, member: str) -> None: ...

    @abc.abstractmethod
    def remove_if_score(self, index: str, member: str, score: float) -> bool:
        """Remove the member only if its score is still ``score`` (nobody re-added it since it was
        read); True if removed."""

    @abc.abstractmethod
    def members(self, index: str, offset: int = 0, limit: int | None = None) -> list[str]:
        """Members by ascending score, from ``offset``, at most ``limit`` of them (None: all)."""

    @abc.abstractmethod
    def scores(self, index: str) -> dict[str, float]:
        """Every member with its score (one read)."""

    @abc.abstractmethod
    def size(self, index: str) -> int: ...

    @abc.abstractmethod
    def score(self, index: str, member: str) -> float | None:
        """The member's score, or None when it is not in the index."""

    @abc.abstractmethod
    def drop(self, index: str) -> None: ...

    @abc.abstractmethod
    def flush(self) -> None:
        """Remove every index."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""


class RedisIndex(AbstractIndex):
    """One sorted set per index in one Redis logical database."""

    def __init__(self, host: str, port: int, db: int = 0, password: str | None = None):
        self._store = RedisStore(host, port, db, password=password)  # its connection settings and retries
        self._redis = self._store._redis

    def add(self, index: str, member: str, score: float) -> None:
        self._redis.zadd(index, {member: score})

    def add_many(self, index: str, scores: dict[str, float]) -> None:
        if scores:
            self._redis.zadd(index, scores)

    def add_to_each(self, entries: dict[str, dict[str, float]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for index, scores in entries.items():
            if scores:
                pipe.zadd(index, scores)
        pipe.execute()

    def remove(self, index: str, member: str) -> None:
        self._redis.zrem(index, member)

    def remove_if_score(self, index: str, member: str, score: float) -> bool:
        def attempt(pipe):
            if pipe.zscore(index, member) != score:
                return False
            pipe.multi()
            pipe.zrem(index, member)
            return True
        return bool(self._redis.transaction(attempt, index, value_from_callable=True))

    def members(self, index: str, offset: int = 0, limit: int | None = None) -> list[str]:
        stop = -1 if limit is None else offset + limit - 1
        if limit == 0:
            return []
        return list(self._redis.zrange(index, offset, stop))

    def scores(self, index: str) -> dict[str, float]:
        return {member: float(score) for member, score in self._redis.zrange(index, 0, -1, withscores=True)}

    def size(self, index: str) -> int:
        return int(self._redis.zcard(index))

    def score(self, index: str, member: str) -> float | None:
        value = self._redis.zscore(index, member)
        return None if value is None else float(value)

    def drop(self, index: str) -> None:
        self._redis.delete(index)

    def flush(self) -> None:
        self._redis.flushdb()

    def close(self) -> None:
        self._store.close()


def _member_id(index: str, member: str) -> str:
    # MongoDB refuses arrays as _id; the JSON text of the pair is one string per (index, member),
    # whatever characters the two hold (a user name in an index name may hold anything)
    return json.dumps([index, member], ensure_ascii=False)


class MongoIndex(AbstractIndex):
    """One document per member, ``{_id: '["<index>", "<member>"]', i: index, m: member, s: score}``,
    with a compound index on (index, score, member)."""

    def __init__(self, uri_or_host: str | None = None, port: int | None = None, database: str = "abaco",
                 collection: str = "index", user: str | None = None, password: str | None = None,
                 client: Any = None):
        self._own_client = client is None
        self._client = client or MongoStore._connect(uri_or_host or "localhost", port, user, password)
        self._coll = self._client[database][collection]
        # the order pages are read in (score, then member), so a page is read from the index
        self._coll.create_index([("i", _pymongo().ASCENDING), ("s", _pymongo().ASCENDING), ("m", _pymongo().ASCENDING)])

    def add(self, index: str, member: str, score: float) -> None:
        self._coll.update_one({"_id": _member_id(index, member)}, {"$set": {"i": index, "m": member, "s": score}}, upsert=True)

    def remove(self, index: str, member: str) -> None:
        self._coll.delete_one({"_id": _member_id(index, member)})

    def remove_if_score(self, index: str, member: str, score: float) -> bool:
        return self._coll.delete_one({"_id": _member_id(index, member), "s": score}).deleted_count == 1

    def members(self, index: str, offset: int = 0, limit: int | None = None) -> list[str]:
        if limit == 0:
            return []
        cursor = self._coll.find({"i": index}, {"m": 1}).sort([("s", 1), ("m", 1)]).skip(offset)
        if limit is not None:
            cursor = cursor.limit(limit)
        return [doc["m"] for doc in cursor]

    def scores(self, index: str) -> dict[str, float]:
        return {doc["m"]: float(doc["s"]) for doc in self._coll.find({"i": index}, {"m": 1, "s": 1})}

    def size(self, index: str) -> int:
        return self._coll.count_documents({"i": index})

    def score(self, index: str, member: str) -> float | None:
        doc = self._coll.find_one({"_id": _member_id(index, member)}, {"s": 1})
        return None if doc is None else float(doc["s"])

    def drop(self, index: str) -> None:
        self._coll.delete_many({"i": index})

    def flush(self) -> None:
        self._coll.delete_many({})

    def close(self) -> None:
        if self._own_client:
            self._client.close()
