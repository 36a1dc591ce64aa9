"""Nonces: credentials bound to one actor or one alias, with a level and an optional use limit.

Records live in ``nonce_store[<actor dbid or alias id>][<nonce id>]``; a nonce id is
``<TENANT>_<hashid>`` so the tenant of a bare nonce id is known.

Fixes of upstream: redemption is one atomic read-check-write (upstream's ``within_transaction``
was not atomic and concurrent redemptions could overspend ``max_uses``), and ``last_use_time`` is
updated for limited nonces as well as unlimited ones (upstream only did it for unlimited ones).
"""
from __future__ import annotations

import logging
from typing import Any

from actors import codes, stores
from actors.errors import DAOError, NonceNotFound, PermissionsException
from actors.models.common import new_id, now_epoch

log = logging.getLogger(__name__)

UNLIMITED = -1
DEFAULT_LEVEL = codes.EXECUTE


def nonce_tenant(nonce_id: str) -> str:
    """The tenant prefix of a nonce id (hashids never contain '_', so split on the last one)."""
    if "_" not in nonce_id:
        raise PermissionsException("Nonce does not exist.")
    return nonce_id.rsplit("_", 1)[0]


def validate_level(level: Any) -> str:
    if level not in codes.PERMISSION_LEVELS:
        raise DAOError(
            f"Invalid level: {level}. The level must be one of {', '.join(codes.PERMISSION_LEVELS)}."
        )
    return level


def validate_max_uses(max_uses: Any) -> int:
    if isinstance(max_uses, bool) or not isinstance(max_uses, int):
        raise DAOError(f"Invalid max_uses: {max_uses!r}; an integer is required.")
    if max_uses == 0 or max_uses < UNLIMITED:
        raise DAOError(f"Invalid max_uses: {max_uses}. Use a positive integer, or -1 for unlimited uses.")
    return max_uses


def redeemed(record: dict, required_level: str) -> dict:
    """The nonce after one use at ``required_level``; raises if it may not be used (pure)."""
    if codes.level_rank(record.get("level", codes.NONE)) < codes.level_rank(required_level):
        raise PermissionsException(
            f"Not authorized -- the nonce level {record.get('level')} is lower than the "
            f"{required_level} level this request requires."
        )
    remaining = int(record.get("remaining_uses", UNLIMITED))
    if remaining == 0:
        raise PermissionsException("No remaining uses left for this nonce.")
    out = dict(record)
    out["current_uses"] = int(record.get("current_uses", 0)) + 1
    out["last_use_time"] = now_epoch()  # upstream forgot this for limited nonces
    if remaining != UNLIMITED:
        out["remaining_uses"] = remaining - 1
    return out


class Nonce:
    """Nonces of an actor (key: its db id) or of an alias (key: the alias id)."""

    @staticmethod
    def create(
        tenant: str,
        key: str,
        owner: str,
        roles: list[str],
        api_server: str,
        actor_id: str | None = None,
        alias: str | None = None,
        level: str = DEFAULT_LEVEL,
        max_uses: int = UNLIMITED,
        description: str = "",
    ) -> dict:
        """Store a new nonce for the actor or alias at ``key``; ``roles`` are used when redeemed."""
        level = validate_level(level)
        max_uses = validate_max_uses(max_uses)
        nonce_id = f"{tenant}_{new_id()}"
        record: dict[str, Any] = {
            "id": nonce_id,
            "tenant": tenant,
            "db_id": key,
            "owner": owner,
            "roles": list(roles),
            "api_server": api_server,
            "actor_id": actor_id,
            "level": level,
            "max_uses": max_uses,
            "description": description,
            "create_time": now_epoch(),
            "last_use_time": None,
            "current_uses": 0,
            "remaining_uses": max_uses,
        }
        if alias is not None:
            record["alias"] = alias

        def add(nonces: dict) -> dict:
            if nonce_id in nonces:
                raise DAOError("Nonce id collision; try again.")
            return {**nonces, nonce_id: record}

        stores.nonce_store.within_transaction(add, key, default={})
        return record

    @staticmethod
    def list(key: str) -> list[dict]:
        return list((stores.nonce_store.get(key) or {}).values())

    @staticmethod
    def get(key: str, nonce_id: str) -> dict:
        nonce = (stores.nonce_store.get(key) or {}).get(nonce_id)
        if nonce is None:
            raise NonceNotFound(f"Nonce not found: {nonce_id}.")
        return nonce

    @staticmethod
    def delete(key: str, nonce_id: str) -> None:
        """Remove one nonce. An unknown id is 'Nonce not found' (400, like GET); upstream answered 500."""

        def remove(nonces: dict) -> dict:
            if nonce_id not in nonces:
                raise NonceNotFound(f"Nonce not found: {nonce_id}.")
            return {k: v for k, v in nonces.items() if k != nonce_id}

        try:
            stores.nonce_store.within_transaction(remove, key)
        except KeyError:
            raise NonceNotFound(f"Nonce not found: {nonce_id}.") from None

    @staticmethod
    def delete_all(key: str) -> None:
        del stores.nonce_store[key]

    @staticmethod
    def redeem(key: str, nonce_id: str, required_level: str) -> dict:
        """Check and consume one use of the nonce, atomically (never more uses than ``max_uses``)."""

        def use(nonces: dict) -> dict:
            if nonce_id not in nonces:
                raise PermissionsException("Nonce does not exist.")
            return {**nonces, nonce_id: redeemed(nonces[nonce_id], required_level)}

        try:
            nonces = stores.nonce_store.within_transaction(use, key)
        except KeyError:
            raise PermissionsException("Nonce does not exist.") from None
        return nonces[nonce_id]

