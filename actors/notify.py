"""Events of actors with a ``link`` or a ``webhook``, and the status changes that
produce them.

An actor that becomes READY or ERROR, and an execution that becomes COMPLETE, produce an event when
their actor has a link or a webhook: ``ACTOR_READY``, ``ACTOR_ERROR``, ``EXECUTION_COMPLETE``. The
agents and web apps make those changes through :func:`set_actor_status` and
:func:`finalize_execution`, which write the record through the model and then publish the event on
``events_channel_default``; the events agent (``python -m actors.events``) delivers it. The models
themselves never publish. Publishing never fails the status change behind it: a broker hiccup loses
the event (logged), as upstream's at-most-once delivery did.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from actors import channels
from actors.lifecycle import ActorStatus
from actors.models import Actor, Alias, Execution, dbid_of, display_id, display_time, is_hashid

log = logging.getLogger(__name__)

ACTOR_READY = "ACTOR_READY"
ACTOR_ERROR = "ACTOR_ERROR"
EXECUTION_STARTED = "EXECUTION_STARTED"  # reserved by upstream, never emitted
EXECUTION_COMPLETE = "EXECUTION_COMPLETE"

EVENT_USERNAME = "Abaco Event"  # executor of link executions and _abaco_username of their messages
ACTOR_EVENTS = {ActorStatus.READY: ACTOR_READY, ActorStatus.ERROR: ACTOR_ERROR}


# -- the changes that produce events -----------------------------------------------------------------
def set_actor_status(dbid: str, status: str, status_message: str | None = None,
                     unless_changed_from: tuple[str, str] | None = None) -> bool:
    """``Actor.set_status``, then ACTOR_READY / ACTOR_ERROR when it wrote one of those."""
    actor = Actor.set_status(dbid, status, status_message, unless_changed_from=unless_changed_from)
    if actor is None:
        return False
    if status in ACTOR_EVENTS and wants_events(actor):
        event = base_event(actor, ACTOR_EVENTS[status])
        event["status_message"] = status_message if status_message is not None else actor.get("status_message", "")
        publish(event)
    return True


def finalize_execution(dbid: str, execution_id: str, **fields: Any) -> dict:
    """The end of a run: COMPLETE with its stats, then EXECUTION_COMPLETE."""
    record = Execution.finalize(dbid, execution_id, **fields)
    actor = Actor.find(dbid)
    if wants_events(actor):
        event = base_event(actor, EXECUTION_COMPLETE)
        event.update(execution_id=record["id"], status=record.get("status"), exit_code=record.get("exit_code"))
        publish(event)
    return record


# -- events -----------------------------------------------------------------------------------------
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
    try:
        channels.EventsChannel().put(event)
    except Exception as e:  # noqa: BLE001 - an event must never fail the status change behind it
        log.error("could not publish %s of %s: %s", event.get("event_type"), event.get("actor_dbid"), e)
