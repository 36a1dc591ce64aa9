"""Events of actors with a ``link`` or a ``webhook`` (API ref §6.4, internals §2.4, §4.11).

``Actor.set_status`` (READY, ERROR) and ``Execution.finalize`` publish them on
``events_channel_default``; the events agent (``python -m actors.events``) delivers them. Only actors
with a non-empty ``link`` or ``webhook`` produce events, and publishing never fails the status change
that caused it: a broker hiccup loses the event (logged), as upstream's at-most-once delivery did.
"""
from __future__ import annotations

import logging
import time

from actors.lifecycle import ActorStatus
from actors.models.common import dbid_of, display_id, display_time, is_hashid

log = logging.getLogger(__name__)

ACTOR_READY = "ACTOR_READY"
ACTOR_ERROR = "ACTOR_ERROR"
EXECUTION_STARTED = "EXECUTION_STARTED"  # reserved by upstream, never emitted
EXECUTION_COMPLETE = "EXECUTION_COMPLETE"

EVENT_USERNAME = "Abaco Event"  # executor of link executions and _abaco_username of their messages


def wants_events(actor: dict | None) -> bool:
    return bool(actor and (actor.get("link") or actor.get("webhook")))


def resolve_link(actor: dict) -> str:
    """The db id of the actor ``link`` names (an id or an alias of the actor's tenant); '' if none
    or if the alias is gone."""
    link = actor.get("link") or ""
    if not link:
        return ""
    tenant = actor["tenant"]
    if is_hashid(link):
        return dbid_of(tenant, link)
    from actors.models.alias import Alias  # alias imports actor, which imports this module

    return Alias.actor_dbid(tenant, link) or ""


def base_event(actor: dict, event_type: str) -> dict:
    now = time.time()
    return {
        "event_type": event_type,
        "tenant_id": actor["tenant"],
        "actor_id": display_id(actor["db_id"]),
        "actor_dbid": actor["db_id"],
        "event_time_utc": str(now),
        "event_time_display": display_time(now),
        "_abaco_link": resolve_link(actor),
        "_abaco_webhook": actor.get("webhook") or "",
    }


def publish(event: dict) -> None:
    from actors import channels  # models stay importable without pika for the callers that never publish

    try:
        channels.EventsChannel().put(event)
    except Exception as e:  # noqa: BLE001 - an event must never fail the status change behind it
        log.error("could not publish %s of %s: %s", event.get("event_type"), event.get("actor_dbid"), e)


def actor_status_changed(actor: dict, status: str, status_message: str | None) -> None:
    """ACTOR_READY / ACTOR_ERROR for an actor that has a link or a webhook."""

    event_type = {ActorStatus.READY: ACTOR_READY, ActorStatus.ERROR: ACTOR_ERROR}.get(status)
    if event_type is None or not wants_events(actor):
        return
    event = base_event(actor, event_type)
    event["status_message"] = status_message if status_message is not None else actor.get("status_message", "")
    publish(event)


def execution_completed(actor: dict, execution: dict) -> None:
    """EXECUTION_COMPLETE for an actor that has a link or a webhook."""
    if not wants_events(actor):
        return
    event = base_event(actor, EXECUTION_COMPLETE)
    event.update(execution_id=execution["id"], status=execution.get("status"), exit_code=execution.get("exit_code"))
    publish(event)
