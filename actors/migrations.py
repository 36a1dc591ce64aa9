"""Moves records written by an earlier store layout into the current one.

Each migration is idempotent and resumable: it moves one record at a time with the stores' atomic
operations and deletes the old record last, so a run that is interrupted is completed by the next
one, and a run with nothing left to move changes nothing. :func:`ensure_current` runs them once per
process; the web apps call it before their first request and the agents when they start, so an
upgraded deployment migrates itself. Migrations are listed in docs/architecture.md ("Store layout").
"""
from __future__ import annotations

import logging
import threading

from actors import codes, stores
from actors.models.alias import ALIAS_KEY_SEPARATOR, alias_id_of

log = logging.getLogger(__name__)

_done = False
_lock = threading.Lock()


def ensure_current() -> None:
    """Run every migration once in this process; a failure is logged and retried on the next call."""
    global _done
    if _done:
        return
    with _lock:
        if _done:
            return
        try:
            moved = migrate_alias_keys()
        except Exception:  # noqa: BLE001 - the store may be down: serve anyway, try again next time
            log.exception("store migration failed; it is retried on the next request")
            return
        if moved:
            log.warning("migrated %d alias record(s) to the %r key layout", moved, ALIAS_KEY_SEPARATOR)
        _done = True


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
