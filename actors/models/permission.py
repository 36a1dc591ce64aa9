"""Permission maps of actors and aliases."""
from __future__ import annotations

import logging

from actors import codes, stores
from actors.errors import DAOError, PermissionsNotFound

log = logging.getLogger(__name__)


def validate_level(level: object) -> str:
    if level not in codes.PERMISSION_LEVELS:
        raise DAOError(
            f"Invalid permission level: {level}. The valid values are {', '.join(codes.PERMISSION_LEVELS)}."
        )
    return level  # type: ignore[return-value]


def grants(permissions: dict, user: str, level: str) -> bool:
    """Does the map give ``user`` at least ``level``, on their own or through ``ABACO_WORLD``?

    Upstream walked the map in stored order and allowed *any* level as soon as it met an
    ``ABACO_WORLD`` entry, so sharing an actor with READ let every user update or delete it. Here
    ``ABACO_WORLD``'s level counts like any user's: a user gets the higher of the two levels.
    """
    wanted = codes.level_rank(level)
    for name in (user, codes.ABACO_WORLD):
        granted = permissions.get(name)
        if granted in codes.PERMISSION_LEVELS and codes.level_rank(granted) >= wanted:
            return True
    return False


class Permission:
    """Permission maps ``{user: level}`` keyed by actor db id or alias id."""

    @staticmethod
    def set(key: str, user: str, level: str) -> dict:
        """Set (or overwrite) one user's level and return the whole map."""
        validate_level(level)
        return stores.permissions_store.within_transaction(lambda m: {**m, user: level}, key, default={})

    @staticmethod
    def get(key: str) -> dict:
        try:
            return stores.permissions_store[key]
        except KeyError:
            raise PermissionsNotFound(f"Actor {key} does not exist.") from None

    @staticmethod
    def level_of(key: str, user: str) -> str:
        """The highest level ``user`` holds on ``key``, on their own or through ``ABACO_WORLD``."""
        permissions = Permission.get(key)
        held = [permissions.get(name) for name in (user, codes.ABACO_WORLD)]
        return max((lvl for lvl in held if lvl in codes.PERMISSION_LEVELS), key=codes.level_rank, default=codes.NONE)

    @staticmethod
    def allows(key: str, user: str, level: str) -> bool:
        """Whether ``user`` holds ``level`` on the object ``key`` (PermissionsNotFound if it has none)."""
        return grants(Permission.get(key), user, level)
