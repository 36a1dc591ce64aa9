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

RECHECK_SECONDS = 60.0  # a layout seen done is read again this often: the index store may be lost

_done: dict[str, float] = {}  # layout -> when it was last seen done (monotonic)


def is_done(name: str) -> bool:
    """Whether the layout ``name`` is complete. Seen done, it is taken as done for
    ``RECHECK_SECONDS``, then read again: if the index store was emptied (lost without persistence,
    flushed), the process goes back to reading the old way until the migrations have run again."""
    seen = _done.get(name)
    if seen is not None and time.monotonic() - seen < RECHECK_SECONDS:
        return True
    if stores.index_store.score(LAYOUTS, name) is None:
        _done.pop(name, None)
        return False
    _done[name] = time.monotonic()
    return True


def mark_done(name: str) -> None:
    stores.index_store.add(LAYOUTS, name, time.time())
    _done[name] = time.monotonic()


def unmark(name: str) -> None:
    """Say the layout is not complete (``python -m actors.migrations --again``)."""
    stores.index_store.remove(LAYOUTS, name)
    _done.pop(name, None)


def forget() -> None:
    """Forget what this process has seen (tests that rebuild an old layout)."""
    _done.clear()
