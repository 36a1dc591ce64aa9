"""Cross-tenant views for admins: every actor, every worker, execution totals, and a
small HTML dashboard. Authorization (admin role only) is done by authz for any path with ``admin``."""
from __future__ import annotations

import html
import logging

from flask import Response

from actors import channels, lifecycle
from actors.controllers import views
from actors.controllers.base import paging
from actors.lifecycle import WorkerStatus
from actors.models import (
    Actor,
    Execution,
    Worker,
    display_id,
    mailbox,
    page,
)
from actors.models.actor import by_creation
from actors.models.execution import EVERY_ACTOR, TOTAL_NAMES
from actors.responses import convert_keys, ok

log = logging.getLogger(__name__)


def actor_overviews(actors: list[dict]) -> list[dict]:
    """The raw stored actors plus their workers, queued messages, execution count and runtime.
    Queues are asked for only where messages may wait (a worker, or mail noted: models/mailbox.py)."""
    workers = Worker.all_by_actor()
    totals = Execution.totals_of([a["db_id"] for a in actors])
    may_have_mail = set(mailbox.noted()) | {dbid for dbid, ws in workers.items() if ws}
    return [{**actor, "workers": workers.get(actor["db_id"], {}),
             "messages": channels.ActorMsgChannel(actor["db_id"]).message_count()
             if actor["db_id"] in may_have_mail else 0,
             "executions": total["executions"], "runtime": total["runtime"]}
            for actor, total in zip(actors, totals)]


def admin_actors() -> Response:
    """Every actor of every tenant, oldest first; ``limit``/``skip`` page them."""
    actors = Actor.page_all(*paging())
    return ok([convert_keys(a) for a in actor_overviews(actors)], "Actors retrieved successfully.")


# -- workers ------------------------------------------------------------------------------------
def admin_workers() -> Response:
    """Upstream counted ``error_workers`` against the bare string ERROR, which no stored status
    equals (they read ``ERROR (PREVIOUS …)``), so it was always 0; we count the real ones."""
    summary = {"total_workers": 0, "ready_workers": 0, "requested_workers": 0, "error_workers": 0,
               "busy_workers": 0, "actors_no_workers": 0}
    listed = []
    workers_by_actor = {dbid: workers for dbid, workers in Worker.all_by_actor().items() if workers}
    with_workers = Actor.records(sorted(workers_by_actor))  # registered ones: not every actor is read
    summary["actors_no_workers"] = max(Actor.count() - len(with_workers), 0)
    for actor in with_workers:
        dbid = actor["db_id"]
        for worker in workers_by_actor[dbid].values():
            count_worker(summary, worker.get("status", ""))
            listed.append(convert_keys({**views.worker_view(worker), "actor_id": display_id(dbid), "actor_dbid": dbid}))
    return ok({"summary": convert_keys(summary), "workers": page(listed, *paging())}, "Workers retrieved successfully.")


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
    actors still registered ("existing"), plus one line per existing actor (``limit``/``skip`` page
    the lines). Every number comes from counters kept as executions come and end."""
    actors = by_creation(Actor.list_all())  # a stable order to page the lines in
    existing = [a["db_id"] for a in actors]
    [every] = Execution.totals_of([EVERY_ACTOR])
    per_actor = Execution.totals_of(existing)
    current = {name: sum(t[name] for t in per_actor) for name in TOTAL_NAMES}
    summary = {
        "total_actors_all": len(set(existing) | set(Execution.actors_with_executions())),
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
    offset, limit = paging()
    lines = [convert_keys(actor_execution_line(a, t)) for a, t in page(list(zip(actors, per_actor)), offset, limit)]
    return ok({"summary": convert_keys(summary), "actors": lines}, "Executions retrieved successfully.")


def actor_execution_line(actor: dict, totals: dict) -> dict:
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
    for actor in sorted(actor_overviews(Actor.list_all()), key=lambda a: (a.get("tenant", ""), a.get("id", ""))):
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
