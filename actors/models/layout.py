"""Which store layouts are in place: markers the migrations set when they have moved every record.

A model reads through its index only once the layout it needs is marked done; until then it reads the
old way (scanning), so an upgraded deployment answers correctly while ``actors.migrations`` runs.
The markers live in the index store itself: if the indexes are lost, so are the markers, and the
migrations rebuild the indexes from the records.
"""
from __future__ import annotations

import time

from actors import stores

LAYOUTS = "_layouts"
ACTOR_INDEX = "actor-index"  # every actor in the actor indexes (all, per tenant, per reader)
EXECUTION_INDEX = "execution-index"  # every execution indexed and counted in its actor's totals

_done: set[str] = set()


def is_done(name: str) -> bool:
    """Whether the layout ``name`` is complete (once seen done, cached for the process)."""
    if name not in _done and stores.index_store.score(LAYOUTS, name) is not None:
        _done.add(name)
    return name in _done


def mark_done(name: str) -> None:
    stores.index_store.add(LAYOUTS, name, time.time())
    _done.add(name)


def forget() -> None:
    """Forget what this process has seen (tests that rebuild an old layout)."""
    _done.clear()
