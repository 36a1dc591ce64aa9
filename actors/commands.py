"""Commands that the web apps and the agents (health, autoscaler, events) both send: request a worker
from a spawner, ask workers to stop. No Flask here: agents import this module."""
from __future__ import annotations

import logging
from typing import Any

from actors import channels
from actors.errors import IllegalTransition, WorkerException
from actors.lifecycle import ActorStatus, WorkerStatus
from actors.models import Execution, Worker, mailbox

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


def discard_worker(dbid: str, worker_id: str) -> None:
    """Forget a worker that is gone or never started: its record and its control queue."""
    Worker.delete(dbid, worker_id)
    channels.WorkerChannel(worker_id).delete()


def send_message(actor: dict, executor: str, message: Any, meta: dict) -> dict:
    """Queue one message for ``actor``: its execution (SUBMITTED), the message on the actor's inbox
    with the execution id, and a worker if the actor has none. Returns the execution."""
    execution = Execution.create(actor, executor)
    channels.ActorMsgChannel(actor["db_id"]).put_msg(message, {**meta, "_abaco_execution_id": execution["id"]})
    mailbox.note(actor["db_id"])  # after the message is queued (actors/models/mailbox.py)
    ensure_one_worker(actor)
    return execution


def ensure_one_worker(actor: dict) -> str | None:
    worker_id = Worker.request_if_none(actor["db_id"], actor["tenant"])
    if worker_id:
        send_start_command(actor, worker_id)
    return worker_id


def replace_worker(actor: dict, had: int) -> str | None:
    """One of the ``had`` workers of ``actor`` was lost: request another, unless the actor is going
    away or already has ``had`` again (the health agent's pass and its event watch may both see the
    same loss)."""
    if actor.get("status") == ActorStatus.SHUTTING_DOWN:
        return None
    worker_id = Worker.request_if_fewer(actor["db_id"], actor["tenant"], had)
    if worker_id:
        send_start_command(actor, worker_id)
    return worker_id


def stop_worker(dbid: str, worker_id: str, worker: dict, command: str,
                only_from: tuple[str, ...] | None = None) -> bool:
    """Mark the worker SHUTDOWN_REQUESTED and send it ``command``; False if it is already gone (or,
    with ``only_from``, no longer in one of those statuses: the autoscaler stops only READY workers).
    A REQUESTED worker gets no message: the spawner drops a request whose worker is
    SHUTDOWN_REQUESTED (and deletes its control queue)."""
    try:
        Worker.set_status(dbid, worker_id, WorkerStatus.SHUTDOWN_REQUESTED, only_from=only_from)
    except (WorkerException, IllegalTransition) as e:  # the worker may have gone (or changed) meanwhile
        log.info("worker %s: %s", worker_id, e)
        return False
    if worker.get("status") != WorkerStatus.REQUESTED:
        channels.WorkerChannel(worker_id).put(command)
    return True


def stop_workers(dbid: str, command: str, keep: tuple[str, ...] = ()) -> None:
    """Ask every worker of the actor (but ``keep``) to stop."""
    for worker_id, worker in Worker.get_workers(dbid).items():
        if worker_id not in keep:
            stop_worker(dbid, worker_id, worker, command)


def queued_messages(with_workers: set[str]) -> dict[str, int]:
    """Ready messages of every actor that may have some: those noted in the mailbox index and those
    with workers (``with_workers``). Every other actor has none, and its queue is not asked for. A
    noted actor found empty, without workers or consumers, is settled (actors/models/mailbox.py)."""
    noted = mailbox.noted()
    counts = {dbid: channels.ActorMsgChannel(dbid).counts() for dbid in sorted(set(noted) | with_workers)}
    for dbid, noted_at in noted.items():
        # a consumer may hold a message unacknowledged (a worker on its way out): not settled yet
        if counts[dbid] == (0, 0) and dbid not in with_workers:
            mailbox.settle(dbid, noted_at)
    return {dbid: messages for dbid, (messages, _) in counts.items()}
