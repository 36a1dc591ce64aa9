"""Abaco's objects and their lifecycles: actors, workers, executions, logs and permissions.

Models return plain data and raise the exceptions of ``errors``; they know nothing of HTTP.
Each lifecycle has one function that moves an object between statuses (``Worker.set_status``,
``Execution.set_status``, ``Actor.set_status``), and that function is where the allowed
transitions are checked, atomically with the write.
"""
from __future__ import annotations

import datetime
import logging
import time
import uuid
from typing import Any, Callable

from hashids import Hashids

from actors import codes
from actors.config import conf
from actors.errors import DAOError, NotFound, WorkerException
from actors import stores

log = logging.getLogger(__name__)

_hashids = Hashids(salt=codes.HASHID_SALT)


# -- ids and times ------------------------------------------------------------------------------
def new_id() -> str:
    """A 13-character hashid of the top 64 bits of a UUID1, as upstream makes its ids."""
    return _hashids.encode(uuid.uuid1().int >> 64)


def is_hashid(text: str) -> bool:
    try:
        return bool(_hashids.decode(text))
    except Exception:
        return False


def now_epoch() -> str:
    """Stored timestamps are strings of float POSIX seconds."""
    return str(time.time())


def display_time(value: Any) -> str:
    """Python's default datetime rendering of a stored epoch, in UTC; missing times are 'None'."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return "None"
    if seconds <= 0:
        return "None"
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return str(moment.replace(tzinfo=None))


def api_server_for(tenant: str) -> str:
    """The tenant's public base URL from ``[tenants]``, else ``[tenants] default``."""
    c = conf()
    for name in (tenant, tenant.upper(), tenant.lower()):
        value = c.get("tenants", name, None)
        if value:
            return value.rstrip("/")
    return c.get("tenants", "default", "http://127.0.0.1:8000").rstrip("/")


def dbid_of(tenant: str, actor_id: str) -> str:
    return f"{tenant}_{actor_id}"


def display_id(dbid: str) -> str:
    """The part after the tenant; hashids never contain '_', so split on the last one."""
    return dbid.rsplit("_", 1)[-1]


def links_base(api_server: str) -> str:
    return f"{api_server}/actors/v2"


# -- actors -------------------------------------------------------------------------------------
ACTOR_DEFAULTS: dict[str, Any] = {
    "name": None,
    "description": "",
    "stateless": True,
    "type": "none",
    "link": "",
    "webhook": "",
    "hints": [],
    "token": False,
    "privileged": False,
    "max_workers": None,
    "mem_limit": None,
    "max_cpus": None,
    "use_container_uid": False,
    "default_environment": {},
    "queue": "default",
    "state": {},
}
ACTOR_HIDDEN = ("db_id", "tenant", "api_server", "executions")
ACTOR_TIMES = ("create_time", "last_update_time")


class Actor:
    """Actor records live in ``actors_store`` under their db id ``<TENANT>_<id>``."""

    @staticmethod
    def get(dbid: str) -> dict:
        try:
            return stores.actors_store[dbid]
        except KeyError:
            raise NotFound(f"Actor with id {display_id(dbid)} not found.") from None

    @staticmethod
    def exists(dbid: str) -> bool:
        return stores.actors_store.get(dbid) is not None

    @staticmethod
    def create(tenant: str, owner: str, fields: dict) -> dict:
        """Store a new actor built from validated ``fields`` and grant its owner UPDATE."""
        actor_id = new_id()
        dbid = dbid_of(tenant, actor_id)
        now = now_epoch()
        record = dict(ACTOR_DEFAULTS)
        record.update({k: v for k, v in fields.items() if v is not None or k in ("name",)})
        record.update(
            id=actor_id,
            db_id=dbid,
            tenant=tenant,
            api_server=api_server_for(tenant),
            owner=owner,
            status=fields.get("status") or codes.SUBMITTED,
            status_message=fields.get("status_message") or "",
            create_time=now,
            last_update_time=now,
            executions={},
            mounts=fields.get("mounts") or [],
            uid=fields.get("uid"),
            gid=fields.get("gid"),
            tasdir=fields.get("tasdir"),
        )
        if not stores.actors_store.add_key_val_if_empty(dbid, record):
            raise DAOError("Actor id collision; try again.")
        Permission.set(dbid, owner, codes.UPDATE)
        return record

    @staticmethod
    def set_status(dbid: str, status: str, status_message: str | None = None) -> None:
        fields: dict[str, Any] = {"status": status}
        if status_message:
            fields["status_message"] = status_message
        stores.actors_store.update_fields(dbid, fields)
        log.info("actor %s -> %s %s", dbid, status, status_message or "")

    @staticmethod
    def delete(dbid: str) -> None:
        del stores.actors_store[dbid]
        del stores.permissions_store[dbid]
        del stores.nonce_store[dbid]

    @staticmethod
    def list_for_tenant(tenant: str) -> list[dict]:
        prefix = f"{tenant}_"
        return [a for k, a in stores.actors_store.items() if k.startswith(prefix) and a.get("tenant") == tenant]

    @staticmethod
    def display(record: dict) -> dict:
        """The actor as the API shows it: hidden fields removed, display times, links."""
        out = {k: v for k, v in record.items() if k not in ACTOR_HIDDEN}
        for key in ACTOR_TIMES:
            out[key] = display_time(record.get(key))
        base = links_base(record["api_server"])
        out["_links"] = {
            "self": f"{base}/{record['id']}",
            "owner": f"{record['api_server']}/profiles/v2/{record['owner']}",
            "executions": f"{base}/{record['id']}/executions",
        }
        return out


# -- workers ------------------------------------------------------------------------------------
WORKER_TIMES = ("create_time", "last_execution_time", "last_health_check_time")


class Worker:
    """Worker records live in ``workers_store[<actor dbid>][<worker id>]``."""

    @staticmethod
    def requested_record(tenant: str, worker_id: str) -> dict:
        return {"status": codes.REQUESTED, "id": worker_id, "tenant": tenant, "create_time": now_epoch()}

    @staticmethod
    def request(dbid: str, tenant: str) -> str:
        """Record a new REQUESTED worker and return its id (the caller sends the spawner command)."""
        worker_id = new_id()
        record = Worker.requested_record(tenant, worker_id)

        def add(workers: dict) -> dict:
            return {**workers, worker_id: record}

        stores.workers_store.within_transaction(add, dbid, default={})
        return worker_id

    @staticmethod
    def request_if_none(dbid: str, tenant: str) -> str | None:
        """Atomically request a worker only when the actor has none; returns its id if it did."""
        worker_id = new_id()
        written = stores.workers_store.add_if_empty(dbid, worker_id, Worker.requested_record(tenant, worker_id))
        return worker_id if written else None

    @staticmethod
    def get_workers(dbid: str) -> dict[str, dict]:
        return stores.workers_store.get(dbid) or {}

    @staticmethod
    def get(dbid: str, worker_id: str) -> dict:
        worker = Worker.get_workers(dbid).get(worker_id)
        if worker is None:
            raise WorkerException("Worker not found.", 404)
        return worker

    @staticmethod
    def allowed(current: str, new: str) -> bool:
        if new in (codes.SHUTDOWN_REQUESTED, codes.SHUTTING_DOWN) or codes.is_worker_error(new):
            return True
        if codes.is_worker_error(current):
            return True
        if current in codes.WORKER_START_CHAIN:
            return new in codes.WORKER_START_CHAIN[current]
        return True

    @staticmethod
    def set_status(dbid: str, worker_id: str, status: str, **fields: Any) -> dict:
        """Move a worker to ``status`` (checked against the lifecycle) and write ``fields`` with it,
        in one atomic step. ``status='ERROR'`` is stored as ``ERROR (PREVIOUS <old>)``."""

        def move(workers: dict) -> dict:
            if worker_id not in workers:
                raise WorkerException(f"Worker {worker_id} of actor {dbid} not found.", 404)
            worker = dict(workers[worker_id])
            current = worker.get("status", "")
            new = codes.worker_error_status(current) if status == codes.ERROR else status
            if not Worker.allowed(current, new):
                raise WorkerException(f"Invalid worker status transition {current!r} -> {new!r}.")
            worker.update(fields)
            worker["status"] = new
            return {**workers, worker_id: worker}

        try:
            workers = stores.workers_store.within_transaction(move, dbid)
        except KeyError:
            raise WorkerException(f"No workers for actor {dbid}.", 404) from None
        log.info("worker %s of %s -> %s", worker_id, dbid, workers[worker_id]["status"])
        return workers[worker_id]

    @staticmethod
    def update_fields(dbid: str, worker_id: str, **fields: Any) -> None:
        def change(workers: dict) -> dict:
            if worker_id not in workers:
                raise WorkerException(f"Worker {worker_id} not found.", 404)
            return {**workers, worker_id: {**workers[worker_id], **fields}}

        try:
            stores.workers_store.within_transaction(change, dbid)
        except KeyError:
            raise WorkerException(f"No workers for actor {dbid}.", 404) from None

    @staticmethod
    def delete(dbid: str, worker_id: str) -> None:
        try:
            stores.workers_store.pop_field(dbid, worker_id)
        except KeyError:
            pass

    @staticmethod
    def display(record: dict) -> dict:
        out = dict(record)
        for key in WORKER_TIMES:
            if key in out or key == "create_time":
                out[key] = display_time(out.get(key))
        return out


# -- executions ---------------------------------------------------------------------------------
EXECUTION_TRANSITIONS = {
    codes.SUBMITTED: {codes.RUNNING, codes.COMPLETE},
    # a redelivered message re-runs an execution whose worker died while it was RUNNING
    codes.RUNNING: {codes.RUNNING, codes.COMPLETE},
    codes.COMPLETE: set(),
}


class Execution:
    """Executions are stored flat, one record per key ``<actor dbid>_<execution id>`` (upstream kept
    all of an actor's executions in one document, which grows without bound)."""

    @staticmethod
    def key(dbid: str, execution_id: str) -> str:
        return f"{dbid}_{execution_id}"

    @staticmethod
    def create(actor: dict, executor: str, **fields: Any) -> dict:
        execution_id = new_id()
        record = {
            "id": execution_id,
            "actor_id": actor["db_id"],
            "tenant": actor["tenant"],
            "api_server": actor["api_server"],
            "executor": executor,
            "worker_id": None,
            "status": codes.SUBMITTED,
            "message_received_time": now_epoch(),
            "start_time": None,
            "finish_time": None,
            "runtime": 0,
            "cpu": 0,
            "io": 0,
            "exit_code": None,
            "final_state": None,
        }
        record.update(fields)
        stores.executions_store[Execution.key(actor["db_id"], execution_id)] = record
        return record

    @staticmethod
    def get(dbid: str, execution_id: str) -> dict:
        try:
            return stores.executions_store[Execution.key(dbid, execution_id)]
        except KeyError:
            raise DAOError(f"Execution not found {execution_id}.") from None

    @staticmethod
    def list(dbid: str) -> list[dict]:
        keys = stores.executions_store.keys_with_prefix(f"{dbid}_")
        records = [r for r in (stores.executions_store.get(k) for k in keys) if r]
        return sorted(records, key=lambda r: float(r.get("message_received_time") or 0))

    @staticmethod
    def set_status(dbid: str, execution_id: str, status: str, **fields: Any) -> dict:
        """The one place an execution changes status; checked and written atomically."""

        def move(record: dict) -> dict:
            current = record.get("status")
            if status not in EXECUTION_TRANSITIONS.get(current, set()):
                raise DAOError(f"Invalid execution status transition {current} -> {status}.")
            return {**record, **fields, "status": status}

        try:
            record = stores.executions_store.within_transaction(move, Execution.key(dbid, execution_id))
        except KeyError:
            raise DAOError(f"Execution not found {execution_id}.") from None
        log.info("execution %s of %s -> %s", execution_id, dbid, status)
        return record

    @staticmethod
    def update_fields(dbid: str, execution_id: str, **fields: Any) -> None:
        try:
            stores.executions_store.update_fields(Execution.key(dbid, execution_id), fields)
        except KeyError:
            raise DAOError(f"Execution not found {execution_id}.") from None

    @staticmethod
    def display(record: dict) -> dict:
        out = {k: v for k, v in record.items() if k not in ("tenant", "finish_time")}
        dbid = record["actor_id"]
        out["actor_id"] = display_id(dbid)
        for key in ("message_received_time", "start_time"):
            out[key] = display_time(record.get(key))
        base = links_base(record["api_server"])
        # upstream's links use the internal db id here; clients may parse them, so we keep that
        out["_links"] = {
            "self": f"{base}/{dbid}/executions/{record['id']}",
            "owner": f"{record['api_server']}/profiles/v2/{record['executor']}",
            "logs": f"{base}/{dbid}/executions/{record['id']}/logs",
        }
        return out

    @staticmethod
    def summary_item(record: dict) -> dict:
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

    @staticmethod
    def summary(actor: dict) -> dict:
        records = Execution.list(actor["db_id"])
        base = links_base(actor["api_server"])
        return {
            "actor_id": actor["id"],
            "api_server": actor["api_server"],
            "owner": actor["owner"],
            "total_executions": len(records),
            "total_cpu": sum(int(r.get("cpu") or 0) for r in records),
            "total_io": sum(int(r.get("io") or 0) for r in records),
            "total_runtime": sum(int(r.get("runtime") or 0) for r in records),
            "executions": [Execution.summary_item(r) for r in records],
            "_links": {
                "self": f"{base}/{actor['id']}/executions",
                "owner": f"{actor['api_server']}/profiles/v2/{actor['owner']}",
            },
        }


# -- logs ---------------------------------------------------------------------------------------
class Logs:
    """Execution logs, keyed by execution id, expiring ``[web] log_ex`` seconds after the last write."""

    @staticmethod
    def set(execution_id: str, text: str) -> None:
        c = conf()
        limit = c.get_int("web", "max_log_length", 1_000_000)
        if len(text) > limit:  # upstream only truncated above 1,000,000 whatever the limit was
            text = text[:limit]
        log_ex = c.get_int("web", "log_ex", 43200)
        if log_ex > 0:
            stores.logs_store.set_with_expiry(execution_id, text, log_ex)
        else:
            stores.logs_store[execution_id] = text

    @staticmethod
    def get(execution_id: str) -> str:
        value = stores.logs_store.get(execution_id)
        return value if isinstance(value, str) else ""


# -- permissions --------------------------------------------------------------------------------
class Permission:
    """Permission maps ``{user: level}`` keyed by actor db id or alias id."""

    @staticmethod
    def set(key: str, user: str, level: str) -> dict:
        return stores.permissions_store.within_transaction(lambda m: {**m, user: level}, key, default={})

    @staticmethod
    def get(key: str) -> dict:
        try:
            return stores.permissions_store[key]
        except KeyError:
            raise DAOError(f"Actor {key} does not exist.") from None

    @staticmethod
    def allows(key: str, user: str, level: str) -> bool:
        """Upstream's check: walk the map in stored order; ABACO_WORLD allows at any level; the
        user's own entry allows iff its level is high enough."""
        for name, granted in Permission.get(key).items():
            if name == codes.ABACO_WORLD:
                return True
            if name == user:
                return codes.level_rank(granted) >= codes.level_rank(level)
        return False


def with_retries(fn: Callable[[], Any], attempts: int = 3, delay: float = 0.2) -> Any:
    """Run ``fn``, retrying transient failures a few times (used around store calls in agents)."""
    for attempt in range(attempts):
        try:
            return fn()
        except (WorkerException, DAOError, NotFound):
            raise
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(delay * (2**attempt))
