"""Executions, their logs and results, and force-quit."""
from __future__ import annotations

import logging

from flask import Response, g

from actors import channels, codes
from actors.controllers import views
from actors.controllers.base import as_int, paging, request_fields
from actors.errors import ExecutionNotFound, NotFound, ResourceError
from actors.lifecycle import ExecutionStatus
from actors.models import (
    Actor,
    Execution,
    Logs,
)
from actors.responses import convert_model, ok

log = logging.getLogger(__name__)

# the legacy accounting hook's required fields and their help texts (upstream's parser)
LEGACY_EXECUTION_FIELDS = {
    "runtime": "runtime, in milliseconds, of the execution (required)",
    "cpu": "CPU usage, in user jiffies, of the execution (required)",
    "io": "Block I/O usage, in number of 512-byte sectors read from and written to, by the execution (required)",
}


def list_executions(actor_id: str) -> Response:
    actor = Actor.get(g.dbid)
    offset, limit = paging()
    dbid = actor["db_id"]
    [totals] = Execution.totals_of([dbid])
    summary = views.executions_summary(actor, Execution.list(dbid, offset, limit), totals)
    return ok(convert_model(summary), "Actor executions retrieved successfully.")


def add_execution(actor_id: str) -> Response:
    """Upstream's legacy accounting hook never worked: its model also needed an executor that this
    path does not supply, so it always answered 400. We keep that answer (after checking the
    fields, so that a non-integer is a 400 and not upstream's 500)."""
    Actor.get(g.dbid)
    data = request_fields()
    for name, help_text in LEGACY_EXECUTION_FIELDS.items():
        if data.get(name) in (None, ""):
            raise ResourceError(f"Missing required field: {{'{name}': '{help_text}'}}")
        as_int(name, data[name])
    raise ResourceError("Required field executor missing.")


def get_execution(actor_id: str, execution_id: str) -> Response:
    Actor.get(g.dbid)
    execution = Execution.get(g.dbid, execution_id)
    return ok(convert_model(views.execution_view(execution)), "Actor execution retrieved successfully.")


def force_quit_execution(actor_id: str, execution_id: str) -> Response:
    """Ask the worker running the execution to stop its container; the execution then ends COMPLETE."""
    Actor.get(g.dbid)
    execution = Execution.get(g.dbid, execution_id)
    status = execution.get("status")
    if status != ExecutionStatus.RUNNING or not execution.get("worker_id"):
        raise ResourceError(
            f"Cannot force quit an execution not in {ExecutionStatus.RUNNING} status. Execution was found in status: {status}."
        )
    # upstream sent the bare string, which could kill the worker's next execution if this one ended
    # meanwhile; naming the execution lets the worker ignore a stale request
    channels.WorkerChannel(execution["worker_id"]).put({"command": codes.FORCE_QUIT, "execution_id": execution_id})
    return ok(None, f"Issued force quit command for execution {execution_id}.")


def get_logs(actor_id: str, execution_id: str) -> Response:
    actor = Actor.get(g.dbid)
    Execution.get(g.dbid, execution_id)
    return ok({"logs": Logs.get(execution_id), "_links": views.logs_links(actor, execution_id)},
              "Logs retrieved successfully.")


def get_results(actor_id: str, execution_id: str) -> Response:
    """The next result of the execution as raw bytes (empty when none arrives within 0.1 s); each
    call consumes one, without an envelope. Upstream did not look the execution up, so any caller
    could create result queues (each lives 20 minutes) and a long id broke the queue name (500);
    an execution that does not exist is a 404 here, and no queue is made for it."""
    Actor.get(g.dbid)
    try:
        Execution.get(g.dbid, execution_id)
    except ExecutionNotFound:  # 400 elsewhere, as upstream; results came later and answer 404
        raise NotFound(f"Execution {execution_id[:80]} not found.") from None
    result = channels.ExecutionResultsChannel(g.dbid, execution_id).get_result(0.1)
    return Response(result or b"", status=200, mimetype=codes.CONTENT_BINARY)
