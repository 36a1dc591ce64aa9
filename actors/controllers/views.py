"""How the API shows each record: internal fields hidden, times rendered, ``_links`` added.

Records are the models' plain data; these functions turn them into response bodies (before case
conversion, which ``responses.convert_model`` does). Links follow upstream's shapes
(``<api_server>/actors/v2/<actor id>/...`` and ``<api_server>/profiles/v2/<owner>``), with the
actor id where upstream put the internal db id, which no URL accepts (docs/compatibility.md).
"""
from __future__ import annotations

from actors.models import display_id, display_time

ACTOR_HIDDEN = ("db_id", "tenant", "api_server", "executions")
ACTOR_TIMES = ("create_time", "last_update_time")
ALIAS_HIDDEN = ("alias_id", "db_id", "tenant", "api_server")
NONCE_HIDDEN = ("db_id", "tenant")
EXECUTION_HIDDEN = ("tenant", "finish_time", "start_failures", "counted")
WORKER_TIMES = ("create_time", "last_execution_time", "last_health_check_time")


# -- links ----------------------------------------------------------------------------------------
def actors_base(api_server: str) -> str:
    return f"{api_server}/actors/v2"


def profile(api_server: str, user: str) -> str:
    return f"{api_server}/profiles/v2/{user}"


def actor_url(api_server: str, actor_id: str) -> str:
    return f"{actors_base(api_server)}/{actor_id}"


def execution_url(api_server: str, actor_id: str, execution_id: str) -> str:
    return f"{actor_url(api_server, actor_id)}/executions/{execution_id}"


# -- records --------------------------------------------------------------------------------------
def actor_view(record: dict) -> dict:
    out = {k: v for k, v in record.items() if k not in ACTOR_HIDDEN}
    for key in ACTOR_TIMES:
        out[key] = display_time(record.get(key))
    url = actor_url(record["api_server"], record["id"])
    out["_links"] = {"self": url, "owner": profile(record["api_server"], record["owner"]),
                     "executions": f"{url}/executions"}
    return out


def alias_view(record: dict) -> dict:
    out = {k: v for k, v in record.items() if k not in ALIAS_HIDDEN}
    api_server = record["api_server"]
    out["_links"] = {
        "self": f"{actors_base(api_server)}/aliases/{record['alias']}",
        "owner": profile(api_server, record["owner"]),
        "actor": actor_url(api_server, record["actor_id"]),
    }
    return out


def nonce_view(record: dict, alias_actor_id: str | None = None) -> dict:
    """``last_use_time`` is null until the first use. An alias nonce's links name the alias (and
    ``alias_actor_id``, the actor the alias stands for); upstream's read ``/actors/v2/None/...``."""
    out = {k: v for k, v in record.items() if k not in NONCE_HIDDEN}
    out["create_time"] = display_time(record.get("create_time"))
    out["last_use_time"] = display_time(record["last_use_time"]) if record.get("last_use_time") else None
    api_server = record["api_server"]
    alias = record.get("alias")
    actor_id = record.get("actor_id") or alias_actor_id
    owner = profile(api_server, record["owner"])
    if alias is not None:
        out["_links"] = {"self": f"{actors_base(api_server)}/aliases/{alias}/nonces/{record['id']}", "owner": owner,
                         "actor": actor_url(api_server, actor_id) if actor_id
                         else f"{actors_base(api_server)}/aliases/{alias}"}
    else:
        out["_links"] = {"self": f"{actor_url(api_server, actor_id)}/nonces/{record['id']}", "owner": owner,
                         "actor": actor_url(api_server, actor_id)}
    return out


def worker_view(record: dict) -> dict:
    out = dict(record)
    for key in WORKER_TIMES:
        if key in out or key == "create_time":
            out[key] = display_time(out.get(key))
    return out


def execution_view(record: dict) -> dict:
    out = {k: v for k, v in record.items() if k not in EXECUTION_HIDDEN}
    out["actor_id"] = display_id(record["actor_id"])
    for key in ("message_received_time", "start_time"):
        out[key] = display_time(record.get(key))
    url = execution_url(record["api_server"], out["actor_id"], record["id"])
    out["_links"] = {"self": url, "owner": profile(record["api_server"], record["executor"]), "logs": f"{url}/logs"}
    return out


def execution_summary_item(record: dict) -> dict:
    item = {
        "id": record["id"],
        "status": record["status"],
        "start_time": display_time(record["start_time"]) if record.get("start_time") else None,
        "message_received_time": display_time(record.get("message_received_time")),
    }
    if record.get("final_state"):
        finished = (record["final_state"] or {}).get("FinishedAt", "")
        if not finished or finished.startswith("0001-01-01"):
            finished = display_time(float(record.get("start_time") or 0) + int(record.get("runtime") or 0))
        item["finish_time"] = finished
    return item


def executions_summary(actor: dict, records: list[dict], totals: dict) -> dict:
    """The actor's execution totals (over all its executions) and ``records``, one page of them or
    all."""
    return {
        "actor_id": actor["id"],
        "api_server": actor["api_server"],
        "owner": actor["owner"],
        "total_executions": totals["executions"],
        "total_cpu": totals["cpu"],
        "total_io": totals["io"],
        "total_runtime": totals["runtime"],
        "executions": [execution_summary_item(r) for r in records],
        "_links": {"self": f"{actor_url(actor['api_server'], actor['id'])}/executions",
                   "owner": profile(actor["api_server"], actor["owner"])},
    }


def message_links(actor: dict, execution_id: str | None = None) -> dict:
    """Links of a message POST (with its execution) or of the mailbox (count, purge)."""
    url = actor_url(actor["api_server"], actor["id"])
    links = {"self": f"{url}/messages", "owner": profile(actor["api_server"], actor["owner"])}
    if execution_id is not None:
        links = {"self": f"{url}/executions/{execution_id}", "owner": links["owner"], "messages": f"{url}/messages"}
    return links


def logs_links(actor: dict, execution_id: str) -> dict:
    url = execution_url(actor["api_server"], actor["id"], execution_id)
    return {"self": f"{url}/logs", "owner": profile(actor["api_server"], actor["owner"]), "execution": url}
