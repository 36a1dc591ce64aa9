"""Aliases: ``/actors/aliases`` and ``/actors/aliases/{alias}``."""
from __future__ import annotations

import logging

from actors.controllers import views
from actors.controllers.authz import identity
from actors.controllers.base import as_text, paging, parse_fields, request_fields, require_fields
from actors.models import Alias, page
from actors.responses import convert_model, ok

log = logging.getLogger(__name__)

ALIAS_FIELD_TYPES = {"alias": as_text, "actor_id": as_text}
ALIAS_FIELD_HELP = {
    "alias": "The alias to assign to the actor.",
    "actor_id": "The actor id to which the alias should be assigned.",
}


def list_aliases():
    offset, limit = paging()
    aliases = page(Alias.list_for_tenant(identity().tenant), offset, limit)
    return ok([convert_model(views.alias_view(a)) for a in aliases], "Aliases retrieved successfully.")


def create_alias():
    ident = identity()
    fields = parse_fields(request_fields(), ALIAS_FIELD_TYPES)
    require_fields(fields, ALIAS_FIELD_HELP)
    record = Alias.create(ident.tenant, fields["alias"], fields["actor_id"], ident.user)
    return ok(convert_model(views.alias_view(record)), "Actor alias created successfully.")


def get_alias(alias: str):
    record = Alias.get(identity().tenant, alias)
    return ok(convert_model(views.alias_view(record)), "Alias retrieved successfully.")


def delete_alias(alias: str):
    Alias.delete(identity().tenant, alias)
    return ok(None, f"Alias {alias} deleted successfully.")
