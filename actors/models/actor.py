"""Actors: registration records and their status."""
from __future__ import annotations

import logging
from typing import Any

from actors import codes, stores
from actors.errors import ActorNotFound, DAOError
from actors.lifecycle import ACTOR, ActorStatus
from actors.models import layout, mailbox
from actors.models.common import (
    api_server_for,
    dbid_of,
    display_id,
    new_id,
    now_epoch,
    page,
)
from actors.models.permission import Permission, grants

log = logging.getLogger(__name__)


ACTOR_DEFAULTS: dict[str, Any] = {
    "name": None,
    "description": "",
    "stateless": True,
    "type": "none",
    "link": "",
    "webhook": "",
    "hints": [],
    "token": False,
    "privileged": False,
    "max_workers": None,
    "mem_limit": None,
    "max_cpus": None,
    "use_container_uid": False,
    "default_environment": {},
    "queue": "default",
    "state": {},
}
# Indexes of actors (index_store, scored by creation time) for the listings the API makes: every
# actor (admin), a tenant's actors, and the actors each user of a tenant holds a permission on
# (ABACO_WORLD is such a user: its index holds the actors shared with everyone).
ALL_ACTORS = "actors"
ACTORS_OF_TENANT = "actors-of:{}"
READABLE_BY = "actors-readable:{}:{}"
BY_STATUS = "actors-by-status"  # score: the status's place in ACTOR.statuses (metrics read it in one go)

# what a PUT never changes (the name cannot be changed, the owner stays)
KEPT_ON_UPDATE = ("id", "db_id", "tenant", "api_server", "owner", "name", "create_time", "executions")


class Actor:
    """Actor records live in ``actors_store`` under their db id ``<TENANT>_<id>``."""

    @staticmethod
    def get(dbid: str) -> dict:
        try:
            return stores.actors_store[dbid]
        except KeyError:
            raise ActorNotFound(f"Actor with id {display_id(dbid)} not found.") from None

    @staticmethod
    def find(dbid: str) -> dict | None:
        actor = stores.actors_store.get(dbid)
        return actor if isinstance(actor, dict) else None

    @staticmethod
    def exists(dbid: str) -> bool:
        return stores.actors_store.get(dbid) is not None

    @staticmethod
    def create(tenant: str, owner: str, fields: dict) -> dict:
        """Store a new actor built from validated ``fields`` and grant its owner UPDATE."""
        actor_id = new_id()
        dbid = dbid_of(tenant, actor_id)
        now = now_epoch()
        record = dict(ACTOR_DEFAULTS)
        record.update({k: v for k, v in fields.items() if v is not None or k in ("name",)})
        record.update(
            id=actor_id,
            db_id=dbid,
            tenant=tenant,
            api_server=api_server_for(tenant),
            owner=owner,
            # a status in the body is ignored: a new actor is SUBMITTED until a worker reports ready
            status=ACTOR.initial,
            status_message="",
            create_time=now,
            last_update_time=now,
            executions={},
            mounts=fields.get("mounts") or [],
            uid=fields.get("uid"),
            gid=fields.get("gid"),
            tasdir=fields.get("tasdir"),
        )
        if not stores.actors_store.add_key_val_if_empty(dbid, record):
            raise DAOError("Actor id collision; try again.")
        Actor.index([record])
        Actor.grant(dbid, owner, codes.UPDATE, record)
        return record

    @staticmethod
    def index(records: list[dict]) -> None:
        """List actors in the all-actors and per-tenant indexes (idempotent)."""
        by_tenant: dict[str, dict[str, float]] = {}
        for record in records:
            by_tenant.setdefault(record["tenant"], {})[record["db_id"]] = creation_score(record)
        for tenant, scores in by_tenant.items():
            stores.index_store.add_many(ALL_ACTORS, scores)
            stores.index_store.add_many(ACTORS_OF_TENANT.format(tenant), scores)
        if records:
            stores.index_store.add_many(BY_STATUS, {r["db_id"]: status_score(r.get("status")) for r in records})

    @staticmethod
    def grant(dbid: str, user: str, level: str, actor: dict | None = None) -> dict:
        """Set ``user``'s level on the actor (as :meth:`Permission.set`) and keep the user's index
        of readable actors in step. Returns the whole permission map."""
        permissions = Permission.set(dbid, user, level)
        actor = actor or Actor.find(dbid)
        if actor is not None:
            index_reader(actor, user, level)
        return permissions

    @staticmethod
    def set_status(dbid: str, status: str, status_message: str | None = None,
                   unless_changed_from: tuple[str, str] | None = None) -> dict | None:
        """Move the actor to ``status`` (checked against the actor lifecycle, IllegalTransition if
        not allowed) and return the record written. With ``unless_changed_from=(status,
        status_message)`` the write happens only if the actor still has exactly those and is not
        already in ``status`` (checked atomically; None otherwise): the spawner marks an actor READY
        that way, so an ERROR a new worker wrote in the meantime is not overwritten. Callers that
        may produce an event go through ``notify.set_actor_status``."""
        fields: dict[str, Any] = {"status": status}
        if status_message:
            fields["status_message"] = status_message
        written = False

        def move(current: dict) -> dict:
            nonlocal written
            seen = (current.get("status"), current.get("status_message"))
            if unless_changed_from is not None and (seen[0] == status or seen != tuple(unless_changed_from)):
                written = False
                return current
            ACTOR.check(current.get("status"), status, dbid)
            written = True
            return {**current, **fields}

        try:
            actor = stores.actors_store.within_transaction(move, dbid)
        except KeyError:
            raise ActorNotFound(f"Actor with id {display_id(dbid)} not found.") from None
        if not written:
            return None
        stores.index_store.add(BY_STATUS, dbid, status_score(actor["status"]))
        log.info("actor %s -> %s %s", dbid, status, status_message or "")
        return actor

    @staticmethod
    def replace(dbid: str, fields: dict, restart: bool) -> dict:
        """Full replacement (PUT): every user field comes from ``fields`` or reverts to its
        default; id, owner, name and create time are kept. ``restart`` (new image or ``force``) sets
        SUBMITTED; otherwise the status stays as it is at write time, read in the same transaction so
        that a READY written by the spawner meanwhile is not overwritten.

        Upstream also reset ``state`` to ``{}`` when the body had none; we keep the stored state
        then, because a PUT that only changes the image must not wipe a stateful actor's data."""

        def rebuild(current: dict) -> dict:
            if restart:
                ACTOR.check(current.get("status"), ActorStatus.SUBMITTED, dbid)
            record = dict(ACTOR_DEFAULTS)
            record.update({k: v for k, v in fields.items() if v is not None and k not in KEPT_ON_UPDATE})
            record.update({k: current.get(k) for k in KEPT_ON_UPDATE})
            record.update(
                state=fields["state"] if "state" in fields else current.get("state", {}),
                status=ActorStatus.SUBMITTED if restart else current.get("status", ACTOR.initial),
                status_message="",
                last_update_time=now_epoch(),
                mounts=fields.get("mounts") or [],
                uid=fields.get("uid"),
                gid=fields.get("gid"),
                tasdir=fields.get("tasdir"),
            )
            return record

        try:
            record = stores.actors_store.within_transaction(rebuild, dbid)
        except KeyError:
            raise ActorNotFound(f"Actor with id {display_id(dbid)} not found.") from None
        stores.index_store.add(BY_STATUS, dbid, status_score(record["status"]))
        return record

    @staticmethod
    def set_state(dbid: str, state: Any) -> dict:
        """Replace the actor's state (the whole document, as upstream)."""
        try:
            return stores.actors_store.within_transaction(lambda current: {**current, "state": state}, dbid)
        except KeyError:
            raise ActorNotFound(f"Actor with id {display_id(dbid)} not found.") from None

    @staticmethod
    def delete(dbid: str) -> None:
        """The actor's record, permissions, nonces and index entries; the index entries first, so a
        delete that stops half way leaves a record the health agent lists again, not an entry
        without a record. Its executions, their index and its totals stay (the all-time totals
        count them)."""
        actor = Actor.find(dbid)
        holders = stores.permissions_store.get(dbid) or {}
        if actor is not None:
            unlist(dbid, actor["tenant"], holders)
        del stores.actors_store[dbid]
        del stores.permissions_store[dbid]
        del stores.nonce_store[dbid]

    @staticmethod
    def list_for_tenant(tenant: str) -> list[dict]:
        """The tenant's actors, oldest first."""
        if not layout.is_done(layout.ACTOR_INDEX):
            prefix = f"{tenant}_"
            return by_creation([a for k, a in stores.actors_store.items() if k.startswith(prefix)
                                and isinstance(a, dict) and a.get("tenant") == tenant])
        return Actor.records(stores.index_store.members(ACTORS_OF_TENANT.format(tenant)), tenant)

    @staticmethod
    def readable_by(tenant: str, user: str) -> list[dict]:
        """The tenant's actors ``user`` may read (their own permission or ``ABACO_WORLD``'s), oldest
        first: read from the readers' indexes, each checked against its permission map."""
        if not layout.is_done(layout.ACTOR_INDEX):
            candidates = Actor.list_for_tenant(tenant)
        else:
            dbids = {*stores.index_store.members(READABLE_BY.format(tenant, user)),
                     *stores.index_store.members(READABLE_BY.format(tenant, codes.ABACO_WORLD))}
            candidates = by_creation(Actor.records(sorted(dbids), tenant))
        maps = stores.permissions_store.get_many([a["db_id"] for a in candidates])
        return [a for a, permissions in zip(candidates, maps)
                if isinstance(permissions, dict) and grants(permissions, user, codes.READ)]

    @staticmethod
    def records(dbids: list[str], tenant: str | None = None) -> list[dict]:
        """The actor records of ``dbids`` that exist (and belong to ``tenant`` when given), in order."""
        found = stores.actors_store.get_many(dbids)
        return [a for a in found if isinstance(a, dict) and (tenant is None or a.get("tenant") == tenant)]

    @staticmethod
    def page_all(offset: int = 0, limit: int | None = None) -> list[dict]:
        """Every actor of every tenant, oldest first, ``limit`` of them from ``offset``."""
        if not layout.is_done(layout.ACTOR_INDEX):
            return page(by_creation(Actor.list_all()), offset, limit)
        return Actor.records(stores.index_store.members(ALL_ACTORS, offset, limit))

    @staticmethod
    def list_all() -> list[dict]:
        """Every actor of every tenant (admin views, utilization)."""
        return [a for _, a in stores.actors_store.items() if isinstance(a, dict)]

    @staticmethod
    def count() -> int:
        return len(stores.actors_store)

    @staticmethod
    def statuses() -> dict[str, str]:
        """``{dbid: status}`` of every actor, from the status index (one read, no records)."""
        return {dbid: status_of_score(score) for dbid, score in stores.index_store.scores(BY_STATUS).items()}

    @staticmethod
    def reconcile_indexes(actors: list[dict]) -> int:
        """Make the all-actors, per-tenant and status indexes agree with ``actors`` (every record, as
        the health agent reads them each pass): a process that died between a record and its index
        entries, or two status writes racing, leave them behind. Returns how many entries it fixed."""
        by_dbid = {a["db_id"]: a for a in actors if a.get("db_id") and a.get("tenant")}
        listed = stores.index_store.scores(ALL_ACTORS)
        missing = [a for dbid, a in by_dbid.items() if dbid not in listed]
        Actor.index(missing)
        statuses = stores.index_store.scores(BY_STATUS)
        stale = [dbid for dbid, a in by_dbid.items() if statuses.get(dbid) != status_score(a.get("status"))]
        # read those again: a status written since the pass read its records must not be undone
        wrong = {a["db_id"]: status_score(a.get("status")) for a in Actor.records(stale)}
        stores.index_store.add_many(BY_STATUS, wrong)
        unknown = (set(listed) | set(statuses)) - set(by_dbid)
        gone = [dbid for dbid, record in zip(sorted(unknown), stores.actors_store.get_many(sorted(unknown)))
                if record is None]  # not one registered since the records were read
        for dbid in gone:
            unlist(dbid, dbid.rsplit("_", 1)[0], {})
        return len(missing) + len(wrong) + len(gone)



UNKNOWN_STATUS = "UNKNOWN"


def status_score(status: str | None) -> float:
    return float(ACTOR.statuses.index(status)) if status in ACTOR.statuses else -1.0


def status_of_score(score: float) -> str:
    position = int(score)
    return ACTOR.statuses[position] if 0 <= position < len(ACTOR.statuses) else UNKNOWN_STATUS


def creation_score(actor: dict) -> float:
    try:
        return float(actor.get("create_time") or 0)
    except (TypeError, ValueError):
        return 0.0


def by_creation(actors: list[dict]) -> list[dict]:
    return sorted(actors, key=lambda a: (creation_score(a), a.get("db_id", "")))


def unlist(dbid: str, tenant: str, holders: dict) -> None:
    """Take the actor out of every actor index (the readers' ones of ``holders``)."""
    for name in (ALL_ACTORS, BY_STATUS, ACTORS_OF_TENANT.format(tenant)):
        stores.index_store.remove(name, dbid)
    for user in holders:
        stores.index_store.remove(READABLE_BY.format(tenant, user), dbid)
    mailbox.forget(dbid)


def index_reader(actor: dict, user: str, level: str) -> None:
    """``user`` may read the actor from ``level`` READ up: list it in their index. A lower level
    leaves the entry: :meth:`Actor.readable_by` checks every candidate against its permission map,
    and taking entries out would race with a grant written meanwhile (the grant's entry could be
    removed after it was added, and the user would never see the actor again)."""
    if level in codes.PERMISSION_LEVELS and codes.level_rank(level) >= codes.level_rank(codes.READ):
        stores.index_store.add(READABLE_BY.format(actor["tenant"], user), actor["db_id"], creation_score(actor))
