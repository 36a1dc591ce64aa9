"""Workers as the web side sees them: listing, requesting and stopping them over channels."""
from __future__ import annotations

import logging

from flask import Response, g

from actors import channels, codes
from actors.controllers.base import as_int, request_fields
from actors.errors import WorkerException
from actors.models import (
    Actor,
    Worker,
)
from actors.responses import convert_model, ok

log = logging.getLogger(__name__)


def send_start_command(actor: dict, worker_id: str, stop_existing: bool = False) -> None:
    channels.CommandChannel(actor.get("queue") or "default").put(
        {
            "actor_id": actor["db_id"],
            "worker_id": worker_id,
            "image": actor["image"],
            "tenant": actor["tenant"],
            "stop_existing": stop_existing,
        }
    )


def ensure_one_worker(actor: dict) -> str | None:
    worker_id = Worker.request_if_none(actor["db_id"], actor["tenant"])
    if worker_id:
        send_start_command(actor, worker_id)
    return worker_id


def stop_worker(dbid: str, worker_id: str, worker: dict, command: str) -> bool:
    """Mark the worker SHUTDOWN_REQUESTED and send it ``command``; False if it is already gone.
    A REQUESTED worker gets no message: the spawner drops a request whose worker is
    SHUTDOWN_REQUESTED (and deletes its control queue)."""
    try:
        Worker.set_status(dbid, worker_id, codes.SHUTDOWN_REQUESTED)
    except WorkerException as e:  # the worker may have gone meanwhile
        log.info("worker %s: %s", worker_id, e)
        return False
    if worker.get("status") != codes.REQUESTED:
        channels.WorkerChannel(worker_id).put(command)
    return True


def stop_workers(dbid: str, command: str, keep: tuple[str, ...] = ()) -> None:
    """Ask every worker of the actor (but ``keep``) to stop."""
    for worker_id, worker in Worker.get_workers(dbid).items():
        if worker_id not in keep:
            stop_worker(dbid, worker_id, worker, command)


# -- resources (admin app, API ref §8.10) -------------------------------------------------------
def list_workers(actor_id: str) -> Response:
    Actor.get(g.dbid)
    workers = [convert_model(Worker.display(w)) for w in Worker.get_workers(g.dbid).values()]
    return ok(workers, "All workers retrieved.")


def add_workers(actor_id: str) -> Response:
    """Admins only (authz): request workers until the actor has ``num``. Upstream allowed several
    workers on a stateful actor, whose messages must run one at a time; we keep it at one."""
    actor = Actor.get(g.dbid)
    num = requested_worker_count()
    if not actor.get("stateless", True):
        num = 1
    existing = len(Worker.get_workers(g.dbid))
    if existing >= num:
        return ok(None, f"Actor {actor_id} already had {existing} worker(s); {num} requested.")
    for _ in range(num - existing):
        send_start_command(actor, Worker.request(g.dbid, actor["tenant"]))
    return ok(None, f"Scheduled {num - existing} new worker(s) to start. There were {existing} worker(s).")


def requested_worker_count() -> int:
    value = request_fields().get("num")
    if value is None or value == "":
        return 1
    return as_int("num", value) or 1  # upstream: 0 means 1


def get_worker(actor_id: str, worker_id: str) -> Response:
    Actor.get(g.dbid)
    return ok(convert_model(Worker.display(Worker.get(g.dbid, worker_id))), "Worker retrieved successfully.")


def delete_worker(actor_id: str, worker_id: str) -> Response:
    """Stop one worker but keep the actor's inbox. Upstream's worker exited at once and abandoned
    a running execution; ours finishes it first (worker.py, ``stop-no-delete``)."""
    Actor.get(g.dbid)
    worker = Worker.get(g.dbid, worker_id)
    if not stop_worker(g.dbid, worker_id, worker, codes.STOP_NO_DELETE):
        raise WorkerException("Worker not found.", 404)
    return ok(None, "Worker scheduled to be stopped.")
