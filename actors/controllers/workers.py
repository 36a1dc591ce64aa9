"""Workers as the web side sees them: listing, requesting and stopping them over channels."""
from __future__ import annotations

import logging

from flask import Response, g

from actors import codes
from actors.commands import send_start_command, stop_worker
from actors.config import conf
from actors.controllers import views
from actors.controllers.base import as_int, paging, request_fields
from actors.errors import ResourceError, WorkerNotFound
from actors.models import (
    Actor,
    Host,
    Worker,
    page,
)
from actors.responses import convert_model, ok

log = logging.getLogger(__name__)


# -- resources (admin app) -------------------------------------------------------
def list_workers(actor_id: str) -> Response:
    Actor.get(g.dbid)
    offset, limit = paging()
    workers = page(list(Worker.get_workers(g.dbid).values()), offset, limit)
    return ok([convert_model(views.worker_view(w)) for w in workers], "All workers retrieved.")


def add_workers(actor_id: str) -> Response:
    """Admins only (authz): request workers until the actor has ``num``, as upstream. A stateful
    actor gets them too (admin tooling relies on it), and the answer says what that means."""
    actor = Actor.get(g.dbid)
    num = requested_worker_count()
    existing = len(Worker.get_workers(g.dbid))
    if existing >= num:
        return ok(None, f"Actor {actor_id} already had {existing} worker(s); {num} requested.")
    for _ in range(num - existing):
        send_start_command(actor, Worker.request(g.dbid, actor["tenant"]))
    message = f"Scheduled {num - existing} new worker(s) to start. There were {existing} worker(s)."
    if not actor.get("stateless", True) and num > 1:
        message += (" This actor is stateful: with more than one worker its executions may now run "
                    "concurrently and update its state in any order.")
    return ok(None, message)


def requested_worker_count() -> int:
    value = request_fields().get("num")
    if value is None or value == "":
        return 1
    num = as_int("num", value) or 1  # upstream: 0 means 1
    # upstream queued any number of start commands; more than a host may run is refused up front
    c = conf()
    hosts = Host.count_alive(c.get_float("health", "host_timeout", 120.0))
    limit = c.get_int("spawner", "max_workers_per_host", 20) * hosts
    if num < 0 or num > limit:
        raise ResourceError(f"Invalid num: {num}; ask for between 1 and {limit} workers "
                            f"([spawner] max_workers_per_host on each of {hosts} compute host(s)).")
    return num


def get_worker(actor_id: str, worker_id: str) -> Response:
    Actor.get(g.dbid)
    return ok(convert_model(views.worker_view(Worker.get(g.dbid, worker_id))), "Worker retrieved successfully.")


def delete_worker(actor_id: str, worker_id: str) -> Response:
    """Stop one worker but keep the actor's inbox. Upstream's worker exited at once and abandoned
    a running execution; ours finishes it first (worker.py, ``stop-no-delete``)."""
    Actor.get(g.dbid)
    worker = Worker.get(g.dbid, worker_id)
    if not stop_worker(g.dbid, worker_id, worker, codes.STOP_NO_DELETE):
        raise WorkerNotFound("Worker not found.")
    return ok(None, "Worker scheduled to be stopped.")
