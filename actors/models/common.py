"""Ids and times shared by every model."""
from __future__ import annotations

import datetime
import secrets
import time
from typing import Any

from hashids import Hashids

from actors import codes
from actors.config import conf

_hashids = Hashids(salt=codes.HASHID_SALT)


def new_id() -> str:
    """A 13-character hashid, as upstream's ids, of 62 random bits (upstream encoded the top 64 bits
    of a UUID1, which are its timestamp alone: two processes in the same 100 ns got the same id)."""
    return _hashids.encode(secrets.randbits(62) | 1 << 62)


def is_hashid(text: str) -> bool:
    try:
        return bool(_hashids.decode(text))
    except Exception:
        return False


def now_epoch() -> str:
    """Stored timestamps are strings of float POSIX seconds."""
    return str(time.time())


def display_time(value: Any) -> str:
    """Python's default datetime rendering of a stored epoch, in UTC; missing times are 'None'."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return "None"
    if seconds <= 0:
        return "None"
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return str(moment.replace(tzinfo=None))


def api_server_for(tenant: str) -> str:
    """The tenant's public base URL from ``[tenants]``, else ``[tenants] default``."""
    c = conf()
    for name in (tenant, tenant.upper(), tenant.lower()):
        value = c.get("tenants", name, None)
        if value:
            return value.rstrip("/")
    return c.get("tenants", "default", "http://127.0.0.1:8000").rstrip("/")


def dbid_of(tenant: str, actor_id: str) -> str:
    return f"{tenant}_{actor_id}"


def display_id(dbid: str) -> str:
    """The part after the tenant; hashids never contain '_', so split on the last one."""
    return dbid.rsplit("_", 1)[-1]


def page(items: list, offset: int = 0, limit: int | None = None) -> list:
    """``limit`` items from ``offset`` (None: all the rest)."""
    return items[offset:] if limit is None else items[offset:offset + limit]
