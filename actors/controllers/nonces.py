"""Nonces of actors (``/actors/{id}/nonces``) and of aliases (``/actors/aliases/{alias}/nonces``).

A nonce id is a bearer secret: whoever has it may use it. So a caller is shown only the nonces whose
level is at most their own on the actor (or alias); the owner and admins see them all. A request
authenticated with a nonce counts at that nonce's level, never at its owner's, so a READ nonce
cannot be used to read the ids of stronger nonces. Upstream listed every nonce to anyone with READ.
"""
from __future__ import annotations

import logging

from flask import g

from actors import auth, codes
from actors.controllers import views
from actors.controllers.authz import identity
from actors.controllers.base import as_int, as_text, check_size, paging, parse_fields, request_fields
from actors.errors import NonceNotFound
from actors.models import Actor, Alias, Nonce, Permission, alias_id_of, page
from actors.responses import convert_model, ok

log = logging.getLogger(__name__)

NONCE_FIELD_TYPES = {"level": as_text, "max_uses": as_int, "description": as_text}


def nonce_fields() -> dict:
    """``level``, ``max_uses``/``maxUses`` and ``description``, all optional."""
    fields = parse_fields(request_fields(), NONCE_FIELD_TYPES)
    if fields.get("description"):
        check_size("max_description_size", fields["description"])
    return fields


def shown(nonce: dict, alias_actor_id: str | None = None) -> dict:
    return convert_model(views.nonce_view(nonce, alias_actor_id))


def caller_level(ident: auth.Identity, key: str, owner: str | None) -> str:
    """The level up to which ``ident`` may see the nonces of the object ``key`` owned by ``owner``."""
    if ident.nonce_id:
        held = Permission.level_of(key, ident.user) if not ident.is_admin else codes.UPDATE
        nonce_level = ident.nonce_level if ident.nonce_level in codes.PERMISSION_LEVELS else codes.NONE
        return min(held, nonce_level, key=codes.level_rank)
    if ident.is_admin or ident.user == owner:
        return codes.UPDATE
    return Permission.level_of(key, ident.user)


def visible(nonce: dict, level: str) -> bool:
    wanted = nonce.get("level")
    return wanted in codes.PERMISSION_LEVELS and codes.level_rank(wanted) <= codes.level_rank(level)


def visible_nonce(key: str, nonce_id: str, level: str) -> dict:
    """One nonce, if the caller may see it; otherwise it is "not found", as if it did not exist."""
    nonce = Nonce.get(key, nonce_id)
    if not visible(nonce, level):
        raise NonceNotFound(f"Nonce not found: {nonce_id}.")
    return nonce


# -- actor nonces -------------------------------------------------------------------------------
def actor_level() -> str:
    return caller_level(identity(), g.dbid, Actor.get(g.dbid).get("owner"))


def list_actor_nonces(actor_id: str):
    level = actor_level()
    offset, limit = paging()
    nonces = page([shown(n) for n in Nonce.list(g.dbid) if visible(n, level)], offset, limit)
    return ok(nonces, "Actor nonces retrieved successfully.")


def create_actor_nonce(actor_id: str):
    ident = identity()
    actor = Actor.get(g.dbid)
    nonce = Nonce.create(
        actor["tenant"], g.dbid, ident.user, ident.roles, actor["api_server"], actor_id=actor["id"], **nonce_fields()
    )
    return ok(shown(nonce), "Actor nonce created successfully.")


def get_actor_nonce(actor_id: str, nonce_id: str):
    return ok(shown(visible_nonce(g.dbid, nonce_id, actor_level())), "Actor nonce retrieved successfully.")


def delete_actor_nonce(actor_id: str, nonce_id: str):
    Actor.get(g.dbid)
    Nonce.delete(g.dbid, nonce_id)
    return ok(None, "Actor nonce deleted successfully.")


# -- alias nonces -------------------------------------------------------------------------------
def alias_key(alias: str) -> tuple[dict, str]:
    """The alias record (404 "No alias found" if unknown) and the key its nonces live under."""
    tenant = identity().tenant
    return Alias.get(tenant, alias), alias_id_of(tenant, alias)


def list_alias_nonces(alias: str):
    record, key = alias_key(alias)
    level = caller_level(identity(), key, record.get("owner"))
    offset, limit = paging()
    nonces = page([shown(n, record.get("actor_id")) for n in Nonce.list(key) if visible(n, level)], offset, limit)
    return ok(nonces, "Alias nonces retrieved successfully.")


def create_alias_nonce(alias: str):
    ident = identity()
    record, key = alias_key(alias)
    nonce = Nonce.create(
        record["tenant"], key, ident.user, ident.roles, record["api_server"], alias=alias, **nonce_fields()
    )
    return ok(shown(nonce, record.get("actor_id")), "Alias nonce created successfully.")


def get_alias_nonce(alias: str, nonce_id: str):
    record, key = alias_key(alias)
    nonce = visible_nonce(key, nonce_id, caller_level(identity(), key, record.get("owner")))
    return ok(shown(nonce, record.get("actor_id")), "Alias nonce retrieved successfully.")


def delete_alias_nonce(alias: str, nonce_id: str):
    _, key = alias_key(alias)
    Nonce.delete(key, nonce_id)
    return ok(None, "Alias nonce deleted successfully.")
