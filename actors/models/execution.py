"""Executions (one per message) and their logs."""
from __future__ import annotations

import logging
from typing import Any, Callable

from actors import stores
from actors.config import conf
from actors.errors import DAOError, ExecutionNotFound, IllegalTransition
from actors.lifecycle import EXECUTION, ExecutionStatus
from actors.models import layout
from actors.models.common import display_time, new_id, now_epoch, page

log = logging.getLogger(__name__)


PURGED_FINAL_STATE = {
    "Status": "purged",
    "unavailable": True,
    "Error": "The message was purged from the actor's mailbox before it ran.",
}


# An actor's executions are listed from an index (index_store) by arrival time, and its totals are
# counters in executions_store, kept in the same transaction as the record they count (the record's
# ``counted`` says what of it is in the totals). Records written before this layout are indexed and
# counted by the migration in actors/migrations.py; until it is done, lists and totals are read
# the old way, by scanning (docs/architecture.md, "Store layout").
EXECUTIONS_OF = "executions:{}"
ACTORS_WITH_EXECUTIONS = "actors-with-executions"
TOTALS_OF = "_totals:{}:{}"
TOTAL_NAMES = ("executions", "cpu", "io", "runtime")
USAGE_NAMES = ("cpu", "io", "runtime")
EVERY_ACTOR = "*"
ID_ATTEMPTS = 3  # new ids to try when one is taken
STATUS_COUNTER = "_status_count_{}"  # executions that entered each status, for /metrics

COUNTED_EXECUTION = "execution"  # in ``counted``: the record is in its actor's execution count
COUNTED_USAGE = "usage"  # in ``counted``: its cpu, io and runtime are in the totals


def totals_counts(dbid: str, amounts: dict[str, int]) -> dict[str, int]:
    """Counter additions for ``amounts`` of the actor ``dbid``: its own totals and everyone's."""
    return {TOTALS_OF.format(target, name): int(amount)
            for target in (dbid, EVERY_ACTOR) for name, amount in amounts.items() if amount}


def usage_of(record: dict) -> dict[str, int]:
    return {name: int(record.get(name) or 0) for name in USAGE_NAMES}


def counting(record: dict) -> tuple[dict, dict[str, int]]:
    """The record marked counted, and what counting it adds to the totals: the execution itself,
    and its usage once it is COMPLETE. What ``counted`` already names is not added again, so
    counting a record twice (a migration run again, a retried transaction) adds nothing."""
    counted = list(record.get("counted") or [])
    amounts: dict[str, int] = {}
    if COUNTED_EXECUTION not in counted:
        counted.append(COUNTED_EXECUTION)
        amounts["executions"] = 1
    if record.get("status") == ExecutionStatus.COMPLETE and COUNTED_USAGE not in counted:
        counted.append(COUNTED_USAGE)
        amounts.update(usage_of(record))
    return {**record, "counted": counted}, totals_counts(record["actor_id"], amounts)


class Execution:
    """Executions are stored flat, one record per key ``<actor dbid>_<execution id>`` (upstream kept
    all of an actor's executions in one document, which grows without bound). Listing one actor's
    executions or reading its totals never reads another actor's executions."""

    @staticmethod
    def key(dbid: str, execution_id: str) -> str:
        return f"{dbid}_{execution_id}"

    @staticmethod
    def new_record(actor: dict, executor: str, **fields: Any) -> dict:
        """The record of a new SUBMITTED execution of ``actor`` (not stored)."""
        record = {
            "id": new_id(),
            "actor_id": actor["db_id"],
            "tenant": actor["tenant"],
            "api_server": actor["api_server"],
            "executor": executor,
            "worker_id": None,
            "status": ExecutionStatus.SUBMITTED,
            "message_received_time": now_epoch(),
            "start_time": None,
            "runtime": 0,
            "cpu": 0,
            "io": 0,
            "exit_code": None,
            "final_state": None,
        }
        record.update(fields)
        return record

    @staticmethod
    def create(actor: dict, executor: str, **fields: Any) -> dict:
        for _ in range(ID_ATTEMPTS):
            stored = Execution.store_new(Execution.new_record(actor, executor, **fields))
            if stored is not None:
                return stored
        raise DAOError("Execution id collision; try again.")

    @staticmethod
    def store_new(record: dict) -> dict:
        """List a new record in its actor's index, then store it, counted in the totals and in the
        status counters; None if another execution has its id. The index entry comes first: if the process dies in between, a listing
        skips an id without a record, while a record without its entry would never be listed."""
        counted, counts = counting(record)
        Execution.index([record])
        key = Execution.key(record["actor_id"], record["id"])
        stored, _ = stores.executions_store.add_new_counting(
            key, counted, {**counts, STATUS_COUNTER.format(record["status"]): 1})
        # the same record: a retried write that went through; else another process's execution
        # that got the same id: leave it, take another id
        return stored if same_execution(stored, record) else None

    @staticmethod
    def index(records: list[dict]) -> None:
        """List the records in their actors' indexes, by the time their message came (idempotent)."""
        by_actor: dict[str, dict[str, float]] = {}
        for record in records:
            by_actor.setdefault(record["actor_id"], {})[record["id"]] = float(record.get("message_received_time") or 0)
        entries = {EXECUTIONS_OF.format(dbid): scores for dbid, scores in by_actor.items()}
        if by_actor:
            entries[ACTORS_WITH_EXECUTIONS] = dict.fromkeys(by_actor, 0.0)
        stores.index_store.add_to_each(entries)

    @staticmethod
    def count_existing(key: str) -> bool:
        """Count what of a record is not in the totals yet (the migration): a record stored before
        the totals were kept, or the usage of one finalized by a process of an earlier version.
        False if it was counted already or is gone."""
        counted = False

        def count(record: Any) -> tuple[Any, dict[str, int]]:
            nonlocal counted
            if not isinstance(record, dict):
                return record, {}
            new, counts = counting(record)
            counted = bool(counts)  # the execution itself, or the usage of a COMPLETE one, was missing
            return (new, counts) if counted else (record, {})
        try:
            stores.executions_store.within_transaction_counting(count, key)
        except KeyError:
            return False
        return counted

    @staticmethod
    def get(dbid: str, execution_id: str) -> dict:
        record = stores.executions_store.get(Execution.key(dbid, execution_id))
        # a key can also be read as "<tenant>_<actor id>_<execution id>" of another tenant: check it
        if not isinstance(record, dict) or record.get("actor_id") != dbid:
            raise ExecutionNotFound(f"Execution not found {execution_id}.")
        return record

    @staticmethod
    def list(dbid: str, offset: int = 0, limit: int | None = None) -> list[dict]:
        """The actor's executions, oldest first: ``limit`` of them from ``offset`` (None: all)."""
        if not layout_done():
            return page(Execution.scan(dbid), offset, limit)
        ids = stores.index_store.members(EXECUTIONS_OF.format(dbid), offset, limit)
        records = stores.executions_store.get_many([Execution.key(dbid, i) for i in ids])
        return [r for r in records if isinstance(r, dict) and r.get("actor_id") == dbid]

    @staticmethod
    def scan(dbid: str) -> list[dict]:
        """The actor's executions read the way of the old layout: every key with its prefix."""
        keys = stores.executions_store.keys_with_prefix(f"{dbid}_")
        # the prefix also matches executions of a tenant named "<tenant>_<actor id>": keep this actor's
        records = [r for r in stores.executions_store.get_many(keys) if isinstance(r, dict)
                   and r.get("actor_id") == dbid]
        return sorted(records, key=lambda r: float(r.get("message_received_time") or 0))

    @staticmethod
    def totals_of(dbids: list[str]) -> list[dict]:
        """``{executions, cpu, io, runtime}`` of each actor of ``dbids`` (``EVERY_ACTOR``: all of
        them, deleted actors included): counters, so the cost does not grow with the executions."""
        if not layout_done():
            return [scanned_totals(dbid) for dbid in dbids]
        keys = [TOTALS_OF.format(dbid, name) for dbid in dbids for name in TOTAL_NAMES]
        values = stores.executions_store.get_many(keys)
        width = len(TOTAL_NAMES)
        return [{name: int(v or 0) for name, v in zip(TOTAL_NAMES, values[i * width:(i + 1) * width])}
                for i in range(len(dbids))]

    @staticmethod
    def actors_with_executions() -> list[str]:
        """The db ids of the actors that ever had an execution, deleted ones included."""
        if not layout_done():
            return sorted({r["actor_id"] for r in every_record()})
        return stores.index_store.members(ACTORS_WITH_EXECUTIONS)

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
        """The one place an execution changes status: checked against the lifecycle and written
        atomically with the status counter and, when it becomes COMPLETE, its usage totals."""

        def move(record: dict) -> tuple[dict, dict[str, int]]:
            EXECUTION.check(record.get("status"), status, f"{execution_id} of {dbid}")
            moved = {**record, **fields, "status": status}
            moved, totals = counting_usage(moved)
            return moved, {**totals, STATUS_COUNTER.format(status): 1}

        try:
            record = stores.executions_store.within_transaction_counting(move, Execution.key(dbid, execution_id))
        except KeyError:
            raise ExecutionNotFound(f"Execution not found {execution_id}.") from None
        # one line per execution and status is noise at any load (the record says it): DEBUG
        log.debug("execution %s of %s -> %s", execution_id, dbid, status)
        return record

    @staticmethod
    def status_counts() -> dict[str, int]:
        """``{status: executions that entered it}`` since the counters exist."""
        values = stores.executions_store.get_many([STATUS_COUNTER.format(s) for s in EXECUTION.statuses])
        return {status: v if isinstance(v, int) else 0 for status, v in zip(EXECUTION.statuses, values)}

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

        return Execution._note_attempt(dbid, execution_id, take)

    @staticmethod
    def record_start_failure(dbid: str, execution_id: str, outcome: str) -> int:
        """The current attempt's container did not start: say so in ``previous_attempts`` (so the next
        attempt does not report a lost worker) and return how many attempts failed that way."""
        record = Execution._note_attempt(dbid, execution_id, lambda record: {
            **record, "start_failures": int(record.get("start_failures") or 0) + 1,
            "previous_attempts": Execution.with_lost_attempt(record, outcome)})
        return record["start_failures"]

    @staticmethod
    def _note_attempt(dbid: str, execution_id: str, change: Callable[[dict], dict]) -> dict:
        try:
            return stores.executions_store.within_transaction(change, Execution.key(dbid, execution_id))
        except KeyError:
            raise ExecutionNotFound(f"Execution not found {execution_id}.") from None

    @staticmethod
    def record_lost_attempt(dbid: str, execution_id: str, outcome: str) -> dict:
        """The current attempt ended without an outcome its worker could read: say so in
        ``previous_attempts``, so the next attempt does not report it as a lost worker."""
        return Execution._note_attempt(dbid, execution_id, lambda record: {
            **record, "previous_attempts": Execution.with_lost_attempt(record, outcome)})

    @staticmethod
    def account_latest_attempt(dbid: str, execution_id: str, outcome: str) -> dict:
        """The latest attempt ended with ``outcome``, unless ``previous_attempts`` already says how it
        ended (safe to repeat)."""
        return Execution._note_attempt(dbid, execution_id, lambda record: {
            **record, "previous_attempts": Execution.attempts_accounted(record, outcome)})

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


def same_execution(stored: Any, record: dict) -> bool:
    """Whether ``stored`` is ``record`` as ``store_new`` wrote it (every field, ``counted`` aside)."""
    def fields(r: dict) -> dict:
        return {k: v for k, v in r.items() if k != "counted"}
    return isinstance(stored, dict) and fields(stored) == fields(record)


def counting_usage(record: dict) -> tuple[dict, dict[str, int]]:
    """A COMPLETE record's usage added to the totals, once (see :func:`counting`)."""
    counted = list(record.get("counted") or [])
    if record.get("status") != ExecutionStatus.COMPLETE or COUNTED_USAGE in counted:
        return record, {}
    return {**record, "counted": [*counted, COUNTED_USAGE]}, totals_counts(record["actor_id"], usage_of(record))


def every_record() -> list[dict]:
    """Every execution record (not the counters beside them): the old layout's only way to list."""
    return [r for _, r in stores.executions_store.items() if isinstance(r, dict) and "actor_id" in r]


def scanned_totals(dbid: str) -> dict[str, int]:
    records = every_record() if dbid == EVERY_ACTOR else Execution.scan(dbid)
    return {"executions": len(records), **{n: sum(int(r.get(n) or 0) for r in records) for n in USAGE_NAMES}}


def layout_done() -> bool:
    return layout.is_done(layout.EXECUTION_INDEX)


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
