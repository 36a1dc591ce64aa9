"""Compute hosts: each host's health agent says it is alive, and the agents of the other hosts take
over the workers of a host that stopped saying so.

Records live in ``hosts_store[<host id>]``: ``{host_id, last_seen, ...}``. A host whose ``last_seen``
is older than ``[health] host_timeout`` is lost: the first other host that claims it (atomically,
``lost_by``) removes its worker records and requests their replacements. A lost host that comes
back clears the claim with its next heartbeat and cleans up after itself (its containers no longer
have records).
"""
from __future__ import annotations

import time
from typing import Any

from actors import stores


class Host:
    @staticmethod
    def heartbeat(host_id: str, **info: Any) -> dict:
        """This host is alive now (a claim on it, from while it was away, is cleared)."""
        record = {**info, "host_id": host_id, "last_seen": time.time(), "lost_by": None}
        stores.hosts_store[host_id] = record
        return record

    @staticmethod
    def all() -> list[dict]:
        return [r for _, r in stores.hosts_store.items() if isinstance(r, dict) and r.get("host_id")]

    @staticmethod
    def alive(timeout: float, now: float | None = None) -> list[dict]:
        now = time.time() if now is None else now
        return [h for h in Host.all() if now - float(h.get("last_seen") or 0) <= timeout]

    @staticmethod
    def count_alive(timeout: float) -> int:
        """Compute hosts alive now; at least 1 (a deployment whose health agent has not beaten yet)."""
        return max(1, len(Host.alive(timeout)))

    @staticmethod
    def lost(timeout: float, now: float | None = None) -> list[dict]:
        """Hosts silent for longer than ``timeout`` that nobody has taken over yet."""
        now = time.time() if now is None else now
        return [h for h in Host.all()
                if now - float(h.get("last_seen") or 0) > timeout and not h.get("lost_by")]

    @staticmethod
    def claim(host_id: str, by: str, timeout: float) -> bool:
        """Atomically take over the lost host ``host_id``; False when it is alive again or another
        host claimed it first."""
        claimed = False

        def take(record: dict) -> dict:
            nonlocal claimed
            silent = time.time() - float(record.get("last_seen") or 0) > timeout
            claimed = silent and not record.get("lost_by")
            return {**record, "lost_by": by, "lost_at": time.time()} if claimed else record

        try:
            stores.hosts_store.within_transaction(take, host_id)
        except KeyError:
            return False
        return claimed

    @staticmethod
    def forget(host_id: str) -> None:
        del stores.hosts_store[host_id]
