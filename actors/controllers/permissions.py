"""Permission maps of actors and aliases. Maps are never case-converted."""
from __future__ import annotations

import logging

from flask import g

from actors.controllers.authz import identity
from actors.controllers.base import as_text, parse_fields, request_fields, require_fields
from actors.models import Actor, Alias, Permission, alias_id_of
from actors.responses import ok

log = logging.getLogger(__name__)

PERMISSION_FIELD_TYPES = {"user": as_text, "level": as_text}
PERMISSION_FIELD_HELP = {
    "user": "User owning the permission.",
    "level": "Level of the permission: NONE, READ, EXECUTE or UPDATE.",
}


def grant_from_request(key: str, grant=Permission.set) -> dict:
    """Set the level of the body's ``user`` (``ABACO_WORLD`` shares with everyone) with ``grant``
    and return the map."""
    fields = parse_fields(request_fields(), PERMISSION_FIELD_TYPES)
    require_fields(fields, PERMISSION_FIELD_HELP)
    return grant(key, fields["user"], fields["level"])


def get_actor_permissions(actor_id: str):
    Actor.get(g.dbid)
    return ok(Permission.get(g.dbid), "Permissions retrieved successfully.")


def add_actor_permission(actor_id: str):
    Actor.get(g.dbid)
    return ok(grant_from_request(g.dbid, Actor.grant), "Permission added successfully.")


def alias_permissions_key(alias: str) -> str:
    tenant = identity().tenant
    Alias.get(tenant, alias)
    return alias_id_of(tenant, alias)


def get_alias_permissions(alias: str):
    return ok(Permission.get(alias_permissions_key(alias)), "Permissions retrieved successfully.")


def add_alias_permission(alias: str):
    return ok(grant_from_request(alias_permissions_key(alias)), "Permission added successfully.")
