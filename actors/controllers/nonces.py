"""Nonces of actors (``/actors/{id}/nonces``) and of aliases (``/actors/aliases/{alias}/nonces``)."""
from __future__ import annotations

import logging

from flask import g

from actors.controllers.authz import identity
from actors.controllers.base import as_int, as_text, parse_fields, request_fields
from actors.models import Actor, Alias, Nonce, alias_id_of
from actors.responses import convert_model, ok

log = logging.getLogger(__name__)

NONCE_FIELD_TYPES = {"level": as_text, "max_uses": as_int, "description": as_text}


def nonce_fields() -> dict:
    """``level``, ``max_uses``/``maxUses`` and ``description``, all optional (API ref §8.7)."""
    return parse_fields(request_fields(), NONCE_FIELD_TYPES)


def shown(nonce: dict) -> dict:
    return convert_model(Nonce.display(nonce))


# -- actor nonces -------------------------------------------------------------------------------
def list_actor_nonces(actor_id: str):
    Actor.get(g.dbid)
    return ok([shown(n) for n in Nonce.list(g.dbid)], "Actor nonces retrieved successfully.")


def create_actor_nonce(actor_id: str):
    ident = identity()
    actor = Actor.get(g.dbid)
    nonce = Nonce.create(
        actor["tenant"], g.dbid, ident.user, ident.roles, actor["api_server"], actor_id=actor["id"], **nonce_fields()
    )
    return ok(shown(nonce), "Actor nonce created successfully.")


def get_actor_nonce(actor_id: str, nonce_id: str):
    Actor.get(g.dbid)
    return ok(shown(Nonce.get(g.dbid, nonce_id)), "Actor nonce retrieved successfully.")


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
    _, key = alias_key(alias)
    return ok([shown(n) for n in Nonce.list(key)], "Alias nonces retrieved successfully.")


def create_alias_nonce(alias: str):
    ident = identity()
    record, key = alias_key(alias)
    nonce = Nonce.create(
        record["tenant"], key, ident.user, ident.roles, record["api_server"], alias=alias, **nonce_fields()
    )
    return ok(shown(nonce), "Alias nonce created successfully.")


def get_alias_nonce(alias: str, nonce_id: str):
    _, key = alias_key(alias)
    return ok(shown(Nonce.get(key, nonce_id)), "Alias nonce retrieved successfully.")


def delete_alias_nonce(alias: str, nonce_id: str):
    _, key = alias_key(alias)
    Nonce.delete(key, nonce_id)
    return ok(None, "Alias nonce deleted successfully.")
