"""Aliases: tenant-unique names that stand for an actor id.

Records live in ``alias_store[<TENANT>:<alias>]`` (the alias id); their permission maps and nonces
live in ``permissions_store`` and ``nonce_store`` under the same alias id, beside the maps of actors,
which are keyed by actor db id ``<TENANT>_<actor id>``. The ``:`` keeps the keys apart: neither a
tenant name (auth.TENANT_NAME) nor an alias (codes.FORBIDDEN_ALIAS_CHARS) may contain it, so an
alias id names exactly one (tenant, alias) pair and is never an actor's db id. (Keys of the form
``<TENANT>_<alias>`` collided across tenants whose names share a prefix; ``actors.migrations``
moves records written that way.)
"""
from __future__ import annotations

import logging

from actors import codes, stores
from actors.errors import ActorNotFound, AliasNotFound, DAOError
from actors.models.actor import Actor
from actors.models.common import api_server_for, dbid_of, is_hashid
from actors.models.nonce import Nonce
from actors.models.permission import Permission

log = logging.getLogger(__name__)


ALIAS_KEY_SEPARATOR = ":"


def alias_id_of(tenant: str, alias: str) -> str:
    return f"{tenant}{ALIAS_KEY_SEPARATOR}{alias}"


def validate_alias_text(alias: str) -> None:
    """The rules that don't need the store; the order of the checks is upstream's."""
    if is_hashid(alias):
        raise DAOError(f"Invalid alias: {alias}. An alias may not be a valid actor id; choose another one.")


def validate_alias_words(alias: str) -> None:
    if alias in codes.RESERVED_ALIAS_WORDS:
        raise DAOError(
            f"Invalid alias: {alias} is a reserved word. Aliases may not be one of: "
            f"{', '.join(codes.RESERVED_ALIAS_WORDS)}."
        )
    bad = sorted({ch for ch in alias if ch in codes.FORBIDDEN_ALIAS_CHARS})
    if bad:
        raise DAOError(
            f"Invalid alias: {alias} contains the forbidden character(s) {' '.join(bad)}. Aliases may not "
            f"contain any of: {' '.join(codes.FORBIDDEN_ALIAS_CHARS)}"
        )


class Alias:
    """Aliases of a tenant; each points at one actor (several aliases may point at one actor)."""

    @staticmethod
    def create(tenant: str, alias: str, actor_id: str, owner: str) -> dict:
        """Validate and store a new alias (atomically unique in the tenant); the owner gets UPDATE."""
        validate_alias_text(alias)
        actor_dbid = dbid_of(tenant, actor_id)
        if not Actor.exists(actor_dbid):
            raise ActorNotFound(f"No actor found with id {actor_id}.")
        validate_alias_words(alias)
        alias_id = alias_id_of(tenant, alias)
        record = {
            "alias": alias,
            "alias_id": alias_id,
            "actor_id": actor_id,
            "db_id": actor_dbid,
            "tenant": tenant,
            "owner": owner,
            "api_server": api_server_for(tenant),
        }
        if not stores.alias_store.add_key_val_if_empty(alias_id, record):
            raise DAOError(f"Alias {alias} already exists; choose another alias.")
        Permission.set(alias_id, owner, codes.UPDATE)
        return record

    @staticmethod
    def find(tenant: str, alias: str) -> dict | None:
        """The alias record of ``tenant``, or None; never a record of another tenant."""
        record = stores.alias_store.get(alias_id_of(tenant, alias))
        if not isinstance(record, dict) or record.get("tenant") != tenant or record.get("alias") != alias:
            return None
        return record

    @staticmethod
    def get(tenant: str, alias: str) -> dict:
        record = Alias.find(tenant, alias)
        if record is None:
            raise AliasNotFound(f"No alias found with alias {alias}.")
        return record

    @staticmethod
    def actor_dbid(tenant: str, alias: str) -> str | None:
        """The db id of the actor that ``alias`` stands for in ``tenant``, or None."""
        record = Alias.find(tenant, alias)
        return record["db_id"] if record else None

    @staticmethod
    def list_for_tenant(tenant: str) -> list[dict]:
        """The tenant's aliases by name (a stable order to page in)."""
        keys = sorted(stores.alias_store.keys_with_prefix(alias_id_of(tenant, "")))
        return [r for r in stores.alias_store.get_many(keys) if isinstance(r, dict) and r.get("tenant") == tenant]

    @staticmethod
    def delete(tenant: str, alias: str) -> None:
        """Remove the alias, its permissions and its nonces. Upstream kept the alias nonces, which
        a new alias of the same name would then have honoured: we delete them."""
        alias_id = alias_id_of(tenant, alias)
        Alias.get(tenant, alias)
        del stores.alias_store[alias_id]
        del stores.permissions_store[alias_id]
        Nonce.delete_all(alias_id)

