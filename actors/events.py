"""The events agent: delivers the events of actors that have a ``link`` or a ``webhook``.

``python -m actors.events`` consumes ``events_channel_default``, where ``actors/notify.py`` publishes
ACTOR_READY/ACTOR_ERROR and EXECUTION_COMPLETE.
For each event:

* **link** (``_abaco_link``, the linked actor's db id): a new execution of the linked actor with
  executor ``Abaco Event``, and the event queued on its inbox as a JSON message
  (``_abaco_Content_Type=application/json``, ``_abaco_username=Abaco Event``, ``_abaco_api_server``,
  ``_abaco_execution_id``). Unlike upstream we also make sure the linked actor has a worker (upstream
  relied on one being there, so an event to an actor without workers waited for the next message).
* **webhook** (``_abaco_webhook``): an HTTP POST of the event as JSON with the same ``_abaco_*``
  fields merged in (and the link's ``_abaco_execution_id`` when a link was processed), with a timeout
  (``[events] webhook_timeout``, default 10 s); failures and non-2xx answers are logged. Only public
  addresses are called, redirects are not followed (``actors/webhooks.py``).

An event is acknowledged after it was processed, also when processing failed (errors are logged, as
upstream: at-most-once, no retries), so a bad event cannot block the queue. Events are processed by
``[events] concurrency`` threads (default 4), so one slow webhook does not hold the others.
"""
from __future__ import annotations

import logging
import signal
from typing import Any

import requests

from actors import channels, codes, commands, logs, migrations, webhooks
from actors.agent import PooledAgent
from actors.config import conf
from actors.errors import ActorNotFound
from actors.lifecycle import ActorStatus
from actors.models import Actor, api_server_for
from actors.notify import EVENT_USERNAME

log = logging.getLogger("actors.events")  # not __name__: run as __main__ by -m


class EventsAgent(PooledAgent):
    log = log

    def __init__(self, name: str = "default"):
        c = conf()
        super().__init__(c.get_int("events", "concurrency", 4), thread_name_prefix="event")
        self.queue = name
        self.webhook_timeout = c.get_float("events", "webhook_timeout", 10.0)
        self.name = "events agent"

    def channel(self) -> channels.Channel:
        return channels.EventsChannel(self.queue)

    def process(self, event: Any, delivery) -> None:
        self.process_event(event)

    # -- one event --------------------------------------------------------------------------
    def process_event(self, event: Any) -> None:
        if not isinstance(event, dict) or not event.get("tenant_id"):
            log.error("dropping an event without tenant_id: %r", event)
            return
        fields = {
            "_abaco_Content_Type": codes.CONTENT_JSON,
            "_abaco_username": EVENT_USERNAME,
            "_abaco_api_server": api_server_for(event["tenant_id"]),
        }
        link = event.get("_abaco_link")
        if link:
            execution_id = self.send_to_link(link, event, fields)
            if execution_id:
                fields["_abaco_execution_id"] = execution_id
        webhook = event.get("_abaco_webhook")
        if webhook:
            self.post_webhook(webhook, {**event, **fields})

    def send_to_link(self, link_dbid: str, event: dict, fields: dict) -> str | None:
        """Queue the event as a JSON message to the linked actor; returns the new execution id."""
        try:
            linked = Actor.get(link_dbid)
        except ActorNotFound:
            log.warning("%s of %s: the linked actor %s does not exist", event.get("event_type"),
                        event.get("actor_dbid"), link_dbid)
            return None
        if linked.get("status") == ActorStatus.SHUTTING_DOWN:
            log.info("%s of %s: the linked actor %s is being deleted", event.get("event_type"),
                     event.get("actor_dbid"), link_dbid)
            return None
        execution = commands.send_message(linked, EVENT_USERNAME, event, fields)
        log.info("%s of %s -> execution %s of %s", event.get("event_type"), event.get("actor_dbid"),
                 execution["id"], link_dbid)
        return execution["id"]

    def post_webhook(self, url: str, body: dict) -> None:
        what = f"{body.get('event_type')} of {body.get('actor_dbid')}"
        try:
            response = webhooks.post(url, body, self.webhook_timeout)
        except ValueError as e:
            log.error("%s: webhook %r refused: %s", what, url, e)
            return
        except requests.RequestException as e:
            log.error("%s: webhook %s failed: %s", what, url, e)
            return
        if not 200 <= response.status_code < 300:
            log.error("%s: webhook %s answered %s: %s", what, url, response.status_code, response.text[:200])
        else:
            log.info("%s -> webhook %s (%s)", what, url, response.status_code)


def main() -> None:
    logs.setup("events")
    migrations.ensure_current()
    agent = EventsAgent(conf().environ.get("events_ch_name") or "default")
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    agent.run()


if __name__ == "__main__":
    main()
