"""Executions (one per message) and their logs."""
from __future__ import annotations

import logging
from typing import Any

from actors import stores
from actors.config import conf
from actors.errors import ExecutionNotFound, IllegalTransition
from actors.lifecycle import EXECUTION, ExecutionStatus
from actors.models.common import display_time, new_id, now_epoch

log = logging.getLogger(__name__)


PURGED_FINAL_STATE = {
    "Status": "purged",
    "unavailable": True,
    "Error": "The message was purged from the actor's mailbox before it ran.",
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
            "status": EXECUTION.initial,
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
        Execution.count_status(record["status"])
        return record

    @staticmethod
    def get(dbid: str, execution_id: str) -> dict:
        record = stores.executions_store.get(Execution.key(dbid, execution_id))
        # the key alone could name an execution of another tenant's actor when the id holds a '_'
        if not isinstance(record, dict) or record.get("actor_id") != dbid or record.get("id") != execution_id:
            raise ExecutionNotFound(f"Execution not found {execution_id}.")
        return record

    @staticmethod
    def list(dbid: str) -> list[dict]:
        keys = stores.executions_store.keys_with_prefix(f"{dbid}_")
        # the prefix also matches executions of a tenant named "<tenant>_<actor id>": keep this actor's
        records = [r for r in (stores.executions_store.get(k) for k in keys) if isinstance(r, dict)
                   and r.get("actor_id") == dbid]
        return sorted(records, key=lambda r: float(r.get("message_received_time") or 0))

    @staticmethod
    def all() -> list[dict]:
        """Every execution of every actor, including actors deleted since (admin totals)."""
        return [r for _, r in stores.executions_store.items() if isinstance(r, dict) and "actor_id" in r]

    @staticmethod
    def mark_purged(dbid: str, execution_id: str) -> None:
        """Finalize the execution of a message purged from the mailbox. Upstream left these SUBMITTED
        forever; we mark them COMPLETE (a status clients know) and say why in ``final_state``."""
        try:
            Execution.set_status(
                dbid, execution_id, ExecutionStatus.COMPLETE,
                final_state=dict(PURGED_FINAL_STATE), finish_time=now_epoch(),
            )
        except (IllegalTransition, ExecutionNotFound) as e:  # already final, or its record is gone
            log.info("purged message of execution %s of %s: %s", execution_id, dbid, e)

    @staticmethod
    def set_status(dbid: str, execution_id: str, status: str, **fields: Any) -> dict:
        """The one place an execution changes status; checked and written atomically."""

        def move(record: dict) -> dict:
            EXECUTION.check(record.get("status"), status, f"{execution_id} of {dbid}")
            return {**record, **fields, "status": status}

        try:
            record = stores.executions_store.within_transaction(move, Execution.key(dbid, execution_id))
        except KeyError:
            raise ExecutionNotFound(f"Execution not found {execution_id}.") from None
        log.info("execution %s of %s -> %s", execution_id, dbid, status)
        Execution.count_status(status)
        return record

    # Counters of executions entering each status, for /metrics (abaco_executions_total): keeping
    # them costs one small write per status change, where counting per scrape meant reading every
    # execution every 5 seconds. Their keys hold integers, which Execution.all() skips.
    COUNTER_PREFIX = "_status_count_"

    @staticmethod
    def count_status(status: str) -> None:
        try:
            stores.executions_store.within_transaction(
                lambda n: (n if isinstance(n, int) else 0) + 1, Execution.COUNTER_PREFIX + status, default=0)
        except Exception:  # noqa: BLE001 - a metric must never fail an execution
            log.warning("could not count an execution entering %s", status, exc_info=True)

    @staticmethod
    def status_counts() -> dict[str, int]:
        """``{status: executions that entered it}`` since the counters exist."""
        store = stores.executions_store
        counts = {}
        for status in EXECUTION.statuses:
            value = store.get(Execution.COUNTER_PREFIX + status)
            counts[status] = value if isinstance(value, int) else 0
        return counts

    @staticmethod
    def finalize(dbid: str, execution_id: str, **fields: Any) -> dict:
        """The end of a run: COMPLETE with its stats (``notify.finalize_execution`` adds the event)."""
        return Execution.set_status(dbid, execution_id, ExecutionStatus.COMPLETE, **fields)

    @staticmethod
    def begin_attempt(dbid: str, execution_id: str, worker_id: str, earlier_outcome: str) -> dict:
        """A worker takes the message: count the attempt and, when an earlier one was lost with its
        worker, say what happened to it in ``previous_attempts`` (docs/architecture.md, "Delivery guarantees"). Atomic."""

        def take(record: dict) -> dict:
            attempts = int(record.get("attempts") or 0)
            fields = {"worker_id": worker_id, "attempts": attempts + 1}
            if attempts:
                fields["previous_attempts"] = Execution.attempts_accounted(record, earlier_outcome)
            return {**record, **fields}

        try:
            return stores.executions_store.within_transaction(take, Execution.key(dbid, execution_id))
        except KeyError:
            raise ExecutionNotFound(f"Execution not found {execution_id}.") from None

    @staticmethod
    def record_start_failure(dbid: str, execution_id: str, outcome: str) -> int:
        """The current attempt's container did not start: say so in ``previous_attempts`` (so the next
        attempt does not report a lost worker) and return how many attempts failed that way."""

        def note(record: dict) -> dict:
            return {**record, "start_failures": int(record.get("start_failures") or 0) + 1,
                    "previous_attempts": Execution.with_lost_attempt(record, outcome)}

        try:
            record = stores.executions_store.within_transaction(note, Execution.key(dbid, execution_id))
        except KeyError:
            raise ExecutionNotFound(f"Execution not found {execution_id}.") from None
        return record["start_failures"]

    @staticmethod
    def attempts_accounted(record: dict, outcome: str) -> list[dict]:
        """``previous_attempts`` with an entry for the latest attempt if it has none yet (a start
        failure wrote its own entry; a lost worker could not)."""
        if int(record.get("attempts") or 0) > len(record.get("previous_attempts") or []):
            return Execution.with_lost_attempt(record, outcome)
        return list(record.get("previous_attempts") or [])

    @staticmethod
    def with_lost_attempt(record: dict, outcome: str) -> list[dict]:
        """``previous_attempts`` of ``record`` plus an entry for its latest attempt, which ended with
        ``outcome`` (its worker was lost, or its container did not start) and no result. Entry keys
        are single words, so they read the same in snake and camel mode."""
        entry = {
            "attempt": int(record.get("attempts") or 0),
            "worker": record.get("worker_id"),
            "started": display_time(record["start_time"]) if record.get("start_time") else None,
            "redelivered": display_time(now_epoch()),
            "outcome": outcome,
        }
        return [*(record.get("previous_attempts") or []), entry]

    @staticmethod
    def totals(records: list[dict]) -> dict:
        """Count and summed cpu, io and runtime of ``records``."""
        return {
            "executions": len(records),
            "cpu": sum(int(r.get("cpu") or 0) for r in records),
            "io": sum(int(r.get("io") or 0) for r in records),
            "runtime": sum(int(r.get("runtime") or 0) for r in records),
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
