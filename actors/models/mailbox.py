"""Which actors may have messages waiting: the only ones whose queue length is worth asking for.

Counting an actor's queue is a round trip to RabbitMQ (about 2 ms when the queue does not exist).
With thousands of idle actors, a metrics scrape or a health pass that asked for every queue would
take seconds, so a message sent to an actor notes the actor here (after the message is queued) and
whoever finds its queue empty, with no worker, settles it. Settling removes the actor only if no
message was noted since its note was read, so a message that arrives meanwhile keeps it listed
(docs/architecture.md, "Store layout").
"""
from __future__ import annotations

import time

from actors import stores

WITH_MAIL = "actors-with-mail"


def note(dbid: str) -> None:
    """A message for ``dbid`` was just queued (call after the message is on its queue)."""
    stores.index_store.add(WITH_MAIL, dbid, time.time())


def noted() -> dict[str, float]:
    """``{dbid: when its latest message was noted}`` of every actor that may have mail."""
    return stores.index_store.scores(WITH_MAIL)


def settle(dbid: str, noted_at: float) -> bool:
    """``dbid``'s queue was seen empty after its note of ``noted_at`` was read: unlist it unless a
    message was noted since. True if unlisted."""
    return stores.index_store.remove_if_score(WITH_MAIL, dbid, noted_at)


def forget(dbid: str) -> None:
    """The actor is gone."""
    stores.index_store.remove(WITH_MAIL, dbid)
