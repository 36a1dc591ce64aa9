"""Moves records written by an earlier store layout into the current one.

Each migration is idempotent and resumable: it moves one record at a time with the stores' atomic
operations and deletes the old record last, so a run that is interrupted is completed by the next
one, and a run with nothing left to move changes nothing. :func:`ensure_current` runs them once per
process; the web apps call it before their first request and the agents when they start, so an
upgraded deployment migrates itself. Migrations are listed in docs/architecture.md ("Store layout").
"""
from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator

from actors import codes, stores
from actors.models import Actor, Execution, layout
from actors.models.actor import index_reader
from actors.models.alias import ALIAS_KEY_SEPARATOR, alias_id_of
from actors.models.execution import counting

log = logging.getLogger(__name__)

BATCH = 500
_done = False
_lock = threading.Lock()
_index_thread: threading.Thread | None = None


def ensure_current() -> None:
    """Run the quick migrations once in this process (aliases, the actor indexes); a failure is
    logged and retried on the next call. The execution index, which may take minutes over a large
    store, is built by :func:`start_execution_index` in the background."""
    global _done
    if _done:
        return
    with _lock:
        if _done:
            return
        try:
            moved = migrate_alias_keys()
            indexed = index_actors()
        except Exception:  # noqa: BLE001 - the store may be down: serve anyway, try again next time
            log.exception("store migration failed; it is retried on the next request")
            return
        if moved:
            log.warning("migrated %d alias record(s) to the %r key layout", moved, ALIAS_KEY_SEPARATOR)
        if indexed:
            log.warning("listed %d existing actor(s) in the actor indexes", indexed)
        _done = True


# -- the actor indexes ----------------------------------------------------------------------------
def index_actors() -> int:
    """List every actor in the actor indexes and each permission holder's readable index, then mark
    the layout done. Idempotent; returns how many actors it listed (0 when already done)."""
    if layout.is_done(layout.ACTOR_INDEX):
        return 0
    listed = 0
    for keys in batches(stores.actors_store.keys(), BATCH):
        actors = [a for a in stores.actors_store.get_many(keys) if isinstance(a, dict) and a.get("db_id")
                  and a.get("tenant")]
        Actor.index(actors)
        for actor, permissions in zip(actors, stores.permissions_store.get_many([a["db_id"] for a in actors])):
            for user, level in (permissions or {}).items():
                index_reader(actor, user, level)
        listed += len(actors)
    layout.mark_done(layout.ACTOR_INDEX)
    return listed


# -- the execution index and totals ---------------------------------------------------------------
def start_execution_index() -> threading.Thread | None:
    """Build the execution index in a daemon thread, unless it is done; returns the thread."""
    global _index_thread
    if layout.is_done(layout.EXECUTION_INDEX):
        return None
    _index_thread = threading.Thread(target=_index_executions_logged, name="execution-index", daemon=True)
    _index_thread.start()
    return _index_thread


def _index_executions_logged() -> None:
    try:
        index_executions()
    except Exception:  # noqa: BLE001 - the next start of the agent tries again
        log.exception("building the execution index failed; it is resumed when the agent starts again")


def index_executions(progress: Callable[[int, int], None] | None = None) -> int:
    """Index every execution record in its actor's index and count it in the totals, then mark the
    layout done. Each record is counted in a transaction that also marks it counted, so a run that
    stops half way is completed by the next one, runs side by side count nothing twice, and
    executions coming and ending meanwhile are counted exactly once. Returns how many records it
    counted; ``progress(seen, total)`` is called after each batch."""
    if layout.is_done(layout.EXECUTION_INDEX):
        return 0
    store = stores.executions_store
    total, seen, counted = len(store), 0, 0
    for keys in batches(store.keys(), BATCH):
        records = [(k, r) for k, r in zip(keys, store.get_many(keys)) if is_execution(r)]
        Execution.index([r for _, r in records])
        for key, record in records:
            if counting(record)[1] and Execution.count_existing(key):  # something of it is not counted
                counted += 1
        seen += len(keys)
        if progress is not None:
            progress(seen, total)
    layout.mark_done(layout.EXECUTION_INDEX)
    log.warning("execution index built: %d record(s) read, %d counted in the totals", seen, counted)
    return counted


def is_execution(value: object) -> bool:
    return isinstance(value, dict) and bool(value.get("actor_id")) and bool(value.get("id"))


def batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- aliases: <TENANT>_<alias> -> <TENANT>:<alias> ------------------------------------------------
def migrate_alias_keys() -> int:
    """Move aliases stored under ``<TENANT>_<alias>`` (with their permissions and nonces) to
    ``<TENANT>:<alias>``. Returns how many aliases were moved."""
    moved = 0
    for key in stores.alias_store.keys():
        if ALIAS_KEY_SEPARATOR in key:
            continue
        record = stores.alias_store.get(key)
        if not isinstance(record, dict) or not record.get("tenant") or not record.get("alias"):
            log.warning("alias record %r has no tenant or alias; left where it is", key)
            continue
        move_alias(key, record)
        moved += 1
    return moved


def move_alias(old_key: str, record: dict) -> None:
    new_key = alias_id_of(record["tenant"], record["alias"])
    stores.alias_store.add_key_val_if_empty(new_key, {**record, "alias_id": new_key})
    shared_with_actor = old_key in stores.actors_store
    move_alias_permissions(old_key, new_key, record, shared_with_actor)
    move_alias_nonces(old_key, new_key, shared_with_actor)
    del stores.alias_store[old_key]


def move_alias_permissions(old_key: str, new_key: str, record: dict, shared_with_actor: bool) -> None:
    """An old alias key that equals an actor's db id (another tenant's actor: the collision this
    layout change closes) shares that actor's permission map. Then the alias starts afresh with its
    owner's UPDATE, and the alias owner's entry leaves the actor's map unless they own the actor."""
    old_map = stores.permissions_store.get(old_key) or {}
    if not shared_with_actor:
        stores.permissions_store.within_transaction(lambda current: {**old_map, **current}, new_key, default={})
        del stores.permissions_store[old_key]
        return
    owner = record.get("owner")
    stores.permissions_store.within_transaction(
        lambda current: {**current, owner: current.get(owner, codes.UPDATE)}, new_key, default={})
    actor = stores.actors_store.get(old_key) or {}
    if owner and owner != actor.get("owner") and owner in old_map:
        stores.permissions_store.within_transaction(
            lambda current: {k: v for k, v in current.items() if k != owner}, old_key, default={})
    log.warning("alias %r of tenant %s shared the permissions of actor %s; the alias got its own map. "
                "Review that actor's permissions: %s", record.get("alias"), record.get("tenant"), old_key,
                sorted(stores.permissions_store.get(old_key) or {}))


def move_alias_nonces(old_key: str, new_key: str, shared_with_actor: bool) -> None:
    """Alias nonces carry an ``alias`` field; actor nonces of a colliding actor stay with the actor."""
    old_nonces = stores.nonce_store.get(old_key) or {}
    moving = {nid: {**n, "db_id": new_key} for nid, n in old_nonces.items()
              if not shared_with_actor or (isinstance(n, dict) and n.get("alias") is not None)}
    if moving:
        stores.nonce_store.within_transaction(lambda current: {**moving, **current}, new_key, default={})
    if not shared_with_actor:
        del stores.nonce_store[old_key]
    elif moving:
        stores.nonce_store.within_transaction(
            lambda current: {k: v for k, v in current.items() if k not in moving}, old_key, default={})


def forget_done() -> None:
    """Let :func:`ensure_current` run the migrations again in this process."""
    global _done
    with _lock:
        _done = False


def resume_if_needed() -> None:
    """Run the migrations again if a layout is no longer marked done (the index store was lost):
    the health agent calls this every pass. While the execution index is being built, nothing."""
    if not layout.is_done(layout.ACTOR_INDEX):
        forget_done()
        ensure_current()
    building = _index_thread is not None and _index_thread.is_alive()
    if not building and not layout.is_done(layout.EXECUTION_INDEX):
        start_execution_index()


def main(argv: list[str] | None = None) -> int:
    """``python -m actors.migrations [--again]``: every migration in the foreground, with progress.
    ``--again`` first forgets that the indexes were built, so every record is indexed and anything
    of it not yet in the totals is counted (after processes of an earlier version wrote records)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--again"]):
        print("usage: python -m actors.migrations [--again]", file=sys.stderr)
        return 2
    if args == ["--again"]:
        layout.unmark(layout.ACTOR_INDEX)
        layout.unmark(layout.EXECUTION_INDEX)
        forget_done()
    ensure_current()
    if not _done:
        return 1

    def show(seen: int, total: int) -> None:
        print(f"\rexecution index: {seen:,} of about {total:,} keys read", end="", file=sys.stderr, flush=True)

    counted = index_executions(progress=show)
    print(f"\nexecution index done ({counted:,} record(s) counted)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
