"""Cross-tenant views for admins: every actor, every worker, execution totals, and a
small HTML dashboard. Authorization (admin role only) is done by authz for any path with ``admin``."""
from __future__ import annotations

import html
import logging

from flask import Response

from actors import channels, lifecycle
from actors.controllers import views
from actors.lifecycle import WorkerStatus
from actors.models import (
    Actor,
    Execution,
    Worker,
    display_id,
)
from actors.responses import convert_keys, ok

log = logging.getLogger(__name__)


def actor_overview(actor: dict, workers: dict[str, dict], executions: list[dict]) -> dict:
    """The raw stored actor plus its workers, queued message count, execution count and runtime."""
    totals = Execution.totals(executions)
    return {
        **actor,
        "workers": workers,
        "messages": channels.ActorMsgChannel(actor["db_id"]).message_count(),
        "executions": totals["executions"],
        "runtime": totals["runtime"],
    }


def executions_by_actor() -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for record in Execution.all():
        grouped.setdefault(record["actor_id"], []).append(record)
    return grouped


def all_actor_overviews() -> list[dict]:
    workers, executions = Worker.all_by_actor(), executions_by_actor()
    return [
        actor_overview(actor, workers.get(actor["db_id"], {}), executions.get(actor["db_id"], []))
        for actor in Actor.list_all()
    ]


def admin_actors() -> Response:
    return ok([convert_keys(a) for a in all_actor_overviews()], "Actors retrieved successfully.")


# -- workers ------------------------------------------------------------------------------------
def admin_workers() -> Response:
    """Upstream counted ``error_workers`` against the bare string ERROR, which no stored status
    equals (they read ``ERROR (PREVIOUS …)``), so it was always 0; we count the real ones."""
    summary = {"total_workers": 0, "ready_workers": 0, "requested_workers": 0, "error_workers": 0,
               "busy_workers": 0, "actors_no_workers": 0}
    listed = []
    workers_by_actor = Worker.all_by_actor()
    for actor in Actor.list_all():
        dbid = actor["db_id"]
        workers = workers_by_actor.get(dbid) or {}
        if not workers:
            summary["actors_no_workers"] += 1
        for worker in workers.values():
            count_worker(summary, worker.get("status", ""))
            listed.append(convert_keys({**views.worker_view(worker), "actor_id": display_id(dbid), "actor_dbid": dbid}))
    return ok({"summary": convert_keys(summary), "workers": listed}, "Workers retrieved successfully.")


def count_worker(summary: dict, status: str) -> None:
    summary["total_workers"] += 1
    if status == WorkerStatus.READY:
        summary["ready_workers"] += 1
    elif status == WorkerStatus.REQUESTED:
        summary["requested_workers"] += 1
    elif status == WorkerStatus.BUSY:
        summary["busy_workers"] += 1
    elif lifecycle.is_worker_error(status):
        summary["error_workers"] += 1


# -- executions ---------------------------------------------------------------------------------
def admin_executions() -> Response:
    """Totals over every execution ever recorded ("all", deleted actors included) and over the
    actors still registered ("existing"), plus one line per existing actor."""
    grouped = executions_by_actor()
    actors = Actor.list_all()
    existing = {a["db_id"] for a in actors}
    every = Execution.totals([r for records in grouped.values() for r in records])
    current = Execution.totals([r for dbid, records in grouped.items() if dbid in existing for r in records])
    summary = {
        "total_actors_all": len(existing | set(grouped)),
        "total_executions_all": every["executions"],
        "total_execution_runtime_all": every["runtime"],
        "total_execution_cpu_all": every["cpu"],
        "total_execution_io_all": every["io"],
        "total_actors_existing": len(existing),
        "total_executions_existing": current["executions"],
        "total_execution_runtime_existing": current["runtime"],
        "total_execution_cpu_existing": current["cpu"],
        "total_execution_io_existing": current["io"],
    }
    lines = [convert_keys(actor_execution_line(a, grouped.get(a["db_id"], []))) for a in actors]
    return ok({"summary": convert_keys(summary), "actors": lines}, "Executions retrieved successfully.")


def actor_execution_line(actor: dict, records: list[dict]) -> dict:
    totals = Execution.totals(records)
    return {
        "actor_id": actor["id"],
        "owner": actor.get("owner"),
        "image": actor.get("image"),
        "total_executions": totals["executions"],
        "total_execution_cpu": totals["cpu"],
        "total_execution_io": totals["io"],
        "total_execution_runtime": totals["runtime"],
    }


# -- dashboard ----------------------------------------------------------------------------------
DASHBOARD_COLUMNS = ("id", "tenant", "name", "owner", "image", "status", "workers", "messages", "executions")


def dashboard() -> Response:
    """Server-rendered table of every actor. Upstream's page fetched the admin endpoint over HTTP
    with a JWT typed into a form (``base_url``, ``jwt_header``, ``jwt``); we read the same data
    directly, so the form is accepted (GET or POST) and needs nothing."""
    rows = []
    for actor in sorted(all_actor_overviews(), key=lambda a: (a.get("tenant", ""), a.get("id", ""))):
        cells = {**actor, "workers": len(actor["workers"])}
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(cells.get(c, '')))}</td>" for c in DASHBOARD_COLUMNS) + "</tr>")
    header = "".join(f"<th>{c}</th>" for c in DASHBOARD_COLUMNS)
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Abaco admin dashboard</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}</style></head>"
        f"<body><h1>Abaco actors</h1><p>{len(rows)} actor(s)</p>"
        f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table></body></html>"
    )
    return Response(page, status=200, mimetype="text/html")
