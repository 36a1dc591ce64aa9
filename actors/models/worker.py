"""Workers: one record per worker container, and the one place their status changes."""
from __future__ import annotations

import logging
from typing import Any, Collection

from actors import lifecycle, stores
from actors.errors import WorkerNotFound, WorkerStatusConflict
from actors.lifecycle import WORKER, WorkerStatus
from actors.models.common import new_id, now_epoch

log = logging.getLogger(__name__)
PER_EXECUTION = (WorkerStatus.BUSY, WorkerStatus.READY)




class Worker:
    """Worker records live in ``workers_store[<actor dbid>][<worker id>]``."""

    @staticmethod
    def requested_record(tenant: str, worker_id: str) -> dict:
        return {"status": WORKER.initial, "id": worker_id, "tenant": tenant, "create_time": now_epoch()}

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
        if stores.workers_store.get(dbid):  # the usual case of a message: one read, no transaction
            return None
        worker_id = new_id()
        written = stores.workers_store.add_if_empty(dbid, worker_id, Worker.requested_record(tenant, worker_id))
        return worker_id if written else None

    @staticmethod
    def request_if_fewer(dbid: str, tenant: str, limit: int) -> str | None:
        """Atomically request a worker only while the actor has fewer than ``limit`` worker records
        (the autoscaler's cap); returns its id if it did."""
        worker_id = new_id()
        record = Worker.requested_record(tenant, worker_id)

        def add(workers: dict) -> dict:
            if len(workers) >= limit:
                return workers
            return {**workers, worker_id: record}

        workers = stores.workers_store.within_transaction(add, dbid, default={})
        return worker_id if worker_id in workers else None

    @staticmethod
    def get_workers(dbid: str) -> dict[str, dict]:
        return stores.workers_store.get(dbid) or {}

    @staticmethod
    def all_by_actor() -> dict[str, dict[str, dict]]:
        """``{actor dbid: {worker id: record}}`` over every tenant (admin views, utilization)."""
        return {dbid: workers for dbid, workers in stores.workers_store.items() if isinstance(workers, dict)}

    @staticmethod
    def get(dbid: str, worker_id: str) -> dict:
        worker = Worker.get_workers(dbid).get(worker_id)
        if worker is None:
            raise WorkerNotFound("Worker not found.")
        return worker

    @staticmethod
    def set_status(dbid: str, worker_id: str, status: str, only_from: Collection[str] | None = None,
                   **fields: Any) -> dict:
        """Move a worker to ``status`` (checked against the worker lifecycle, IllegalTransition if the
        move is not allowed) and write ``fields`` with it, in one atomic step. ``status='ERROR'`` is
        stored as ``ERROR (PREVIOUS <old>)``. With ``only_from``, the move happens only from one of
        those statuses (else WorkerStatusConflict, not logged: the caller expects it may happen)."""

        def move(workers: dict) -> dict:
            if worker_id not in workers:
                raise WorkerNotFound(f"Worker {worker_id} of actor {dbid} not found.")
            worker = dict(workers[worker_id])
            current = worker.get("status", "")
            if only_from is not None and current not in only_from:
                raise WorkerStatusConflict(f"Worker {worker_id} is {current!r}, not {' or '.join(only_from)}.")
            new = lifecycle.worker_error_status(current) if status == WorkerStatus.ERROR else status
            WORKER.check(current, new, f"{worker_id} of {dbid}")
            worker.update(fields)
            worker["status"] = new
            return {**workers, worker_id: worker}

        try:
            workers = stores.workers_store.within_transaction(move, dbid)
        except KeyError:
            raise WorkerNotFound(f"No workers for actor {dbid}.") from None
        # BUSY and READY come and go with every execution: DEBUG; the rest of a worker's life at INFO
        level = logging.DEBUG if workers[worker_id]["status"] in PER_EXECUTION else logging.INFO
        log.log(level, "worker %s of %s -> %s", worker_id, dbid, workers[worker_id]["status"])
        return workers[worker_id]

    @staticmethod
    def update_fields(dbid: str, worker_id: str, **fields: Any) -> None:
        """Write fields other than the status (which only ``set_status`` moves)."""
        if "status" in fields:
            raise ValueError("a worker's status is written by Worker.set_status only")

        def change(workers: dict) -> dict:
            if worker_id not in workers:
                raise WorkerNotFound(f"Worker {worker_id} not found.")
            return {**workers, worker_id: {**workers[worker_id], **fields}}

        try:
            stores.workers_store.within_transaction(change, dbid)
        except KeyError:
            raise WorkerNotFound(f"No workers for actor {dbid}.") from None

    @staticmethod
    def delete(dbid: str, worker_id: str) -> None:
        try:
            stores.workers_store.pop_field(dbid, worker_id)
        except KeyError:
            pass

    @staticmethod
    def forget_actor(dbid: str) -> bool:
        """Drop the empty worker map a deleted actor leaves behind; True if there was one."""
        if stores.workers_store.get(dbid) != {} or dbid in stores.actors_store:
            return False
        try:
            del stores.workers_store[dbid]
        except KeyError:
            return False
        return True

