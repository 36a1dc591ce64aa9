"""Queue-length autoscaling: one pass per ``GET /metrics``.

Three layers, so the rules can be tested without any service:

* :func:`take_snapshot` reads actors, workers and queue lengths into plain frozen data;
* :func:`decide` is the whole policy: a pure function from a :class:`Snapshot` to a list of
  actions (:class:`ScaleUp`, :class:`StopWorker`);
* :func:`apply` carries the actions out (request a worker and send the spawner its command; mark an
  idle worker ``SHUTDOWN_REQUESTED`` and send it ``stop-no-delete``).

:func:`run_pass` ties them together under a guard so that two scrapes (two gunicorn processes, two
Prometheus servers, a curl beside Prometheus) never run a pass at the same time and double-scale.

The rules (what :func:`decide` does), and where they differ from upstream:

* Off unless ``[workers] autoscaling`` is true. Actors in ``ERROR`` or ``SHUTTING_DOWN`` are left
  alone, and so are stateful actors: their messages must run one at a time, so they keep the one
  worker they have (the health agent replaces it when it is lost). ``[workers] autoscaling_tenants``
  (ours; comma list, empty = every tenant) limits autoscaling to some tenants.
* Queue >= 1 and fewer workers than the actor's cap -> one more worker per pass. The cap is the
  actor's ``max_workers``, else ``[spawner] max_workers_per_actor``, else 1. Every worker record
  counts (a stopping worker still holds its container). No scale-up while the actor's command queue
  holds more than ``[spawner] max_cmd_length`` (default 10) messages -- measured per command queue
  (upstream measured one queue and applied it to all) -- or while there are
  ``[spawner] max_workers_per_host`` (default 20) worker records: upstream's spawner checks that
  limit, ours does not, so the autoscaler keeps to it. A requested worker has no host yet, so every
  worker record counts: exact on one host, conservative on several. Scale-ups of one pass count
  against both limits.
* An actor with 0 workers and queued messages is served first when those limits leave room for
  only some actors. An actor with 0 workers and an empty queue gets none: the issue's "0 workers
  gets 1" would flap against "empty queue loses one" (start, stop, start ...); the message POST
  (``ensure_one_worker``) and the health agent give an actor its first worker when a message comes.
* Queue = 0 -> stop ONE ``READY`` worker per pass, the one idle longest (upstream stopped every
  ``READY`` worker at once). ``BUSY`` and starting workers are never stopped. An
  actor with the ``sync`` hint keeps its last live worker until it has been idle
  ``[workers] sync_max_idle_time`` seconds (default 600; upstream read section ``worker``, a typo,
  and its hint test failed for any actor with hints).
* Tenants are read from the actor record, never parsed out of the db id (upstream's parsing kept tenants with
  ``_`` from scaling up).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Union

from actors import channels, codes, stores
from actors.commands import queued_messages, send_start_command, stop_worker
from actors.config import conf
from actors.errors import IllegalTransition, WorkerException
from actors.lifecycle import ACTOR, WORKER, ActorStatus, WorkerStatus
from actors.models import Actor, Host, Worker

log = logging.getLogger(__name__)

SYNC_HINT = "sync"

DEFAULT_MAX_CMD_LENGTH = 10
DEFAULT_MAX_WORKERS_PER_HOST = 20
DEFAULT_SYNC_MAX_IDLE_TIME = 600.0


# -- the snapshot ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerView:
    id: str
    status: str
    idle_seconds: float = 0.0  # since its last execution ended, else since it was created

    @property
    def live(self) -> bool:
        """Running or starting: not stopping and not failed."""
        return not (WORKER.in_group(self.status, "stopping") or WORKER.in_group(self.status, "failed"))


@dataclass(frozen=True)
class ActorView:
    dbid: str
    tenant: str
    messages: int  # ready messages in the actor's queue
    workers: tuple[WorkerView, ...] = ()
    stateless: bool = True
    status: str = ActorStatus.READY
    max_workers: int | None = None  # the actor's own cap (None: not set)
    hints: tuple[str, ...] = ()
    command_queue: str = "default"  # the spawner queue its commands go to


@dataclass(frozen=True)
class Limits:
    enabled: bool = True
    max_workers_per_actor: int = 1
    max_workers_per_host: int = DEFAULT_MAX_WORKERS_PER_HOST
    hosts: int = 1  # compute hosts alive: worker records may reach max_workers_per_host on each
    max_cmd_length: int = DEFAULT_MAX_CMD_LENGTH
    sync_max_idle_time: float = DEFAULT_SYNC_MAX_IDLE_TIME
    tenants: tuple[str, ...] = ()  # empty: every tenant


@dataclass(frozen=True)
class Snapshot:
    actors: tuple[ActorView, ...]
    command_queues: dict[str, int] = field(default_factory=dict)  # command queue name -> ready messages
    host_workers: int | None = None  # worker records on the host; None: sum of the actors' workers
    limits: Limits = field(default_factory=Limits)

    @property
    def worker_total(self) -> int:
        if self.host_workers is not None:
            return self.host_workers
        return sum(len(a.workers) for a in self.actors)


# -- actions --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScaleUp:
    dbid: str
    reason: str = ""
    limit: int = 1  # the actor's cap, re-checked atomically when the worker is requested


@dataclass(frozen=True)
class StopWorker:
    dbid: str
    worker_id: str
    reason: str = ""


Action = Union[ScaleUp, StopWorker]


# -- the policy -----------------------------------------------------------------------------------
def actor_cap(actor: ActorView, limits: Limits) -> int:
    """The actor's ``max_workers`` when set (> 0), else ``[spawner] max_workers_per_actor``, else 1."""
    if actor.max_workers is not None and actor.max_workers > 0:
        return actor.max_workers
    return max(limits.max_workers_per_actor, 1)


def managed(actor: ActorView, limits: Limits) -> bool:
    """Whether the autoscaler acts on this actor at all."""
    if not actor.stateless or ACTOR.in_group(actor.status, "unscalable"):
        return False
    return not limits.tenants or actor.tenant in limits.tenants


def decide(snapshot: Snapshot) -> list[Action]:
    """The actions of one autoscaling pass over ``snapshot`` (pure: reads nothing else)."""
    limits = snapshot.limits
    if not limits.enabled:
        return []
    actions: list[Action] = []
    host_workers = snapshot.worker_total
    cmd_lengths = dict(snapshot.command_queues)
    candidates = [a for a in snapshot.actors if managed(a, limits)]
    # actors without any worker first, then the longest queues: they gain most from scarce room
    wanting = sorted((a for a in candidates if a.messages >= 1),
                     key=lambda a: (len(a.workers) > 0, -a.messages, a.dbid))
    for actor in wanting:
        cap = actor_cap(actor, limits)
        if len(actor.workers) >= cap:
            continue
        if cmd_lengths.get(actor.command_queue, 0) > limits.max_cmd_length:
            log.info("autoscaler: not scaling %s up: command queue %s holds more than max_cmd_length=%d",
                     actor.dbid, actor.command_queue, limits.max_cmd_length)
            continue
        if host_workers >= limits.max_workers_per_host * limits.hosts:
            log.info("autoscaler: not scaling %s up: the %d host(s) have %d workers (max_workers_per_host=%d)",
                     actor.dbid, limits.hosts, host_workers, limits.max_workers_per_host)
            continue
        actions.append(ScaleUp(actor.dbid, f"{actor.messages} queued message(s), {len(actor.workers)} of "
                                           f"at most {cap} worker(s)", limit=cap))
        host_workers += 1
        cmd_lengths[actor.command_queue] = cmd_lengths.get(actor.command_queue, 0) + 1
    for actor in candidates:
        if actor.messages == 0:
            victim = idle_worker_to_stop(actor, limits)
            if victim is not None:
                actions.append(StopWorker(actor.dbid, victim.id,
                                          f"queue empty, idle for {victim.idle_seconds:.0f}s"))
    return actions


def idle_worker_to_stop(actor: ActorView, limits: Limits) -> WorkerView | None:
    """The READY worker idle longest, unless the actor is ``sync`` and it is the last live one and
    has not been idle ``sync_max_idle_time`` yet."""
    ready = [w for w in actor.workers if w.status == WorkerStatus.READY]
    if not ready:
        return None
    victim = max(ready, key=lambda w: (w.idle_seconds, w.id))
    live = sum(1 for w in actor.workers if w.live)
    if SYNC_HINT in actor.hints and live <= 1 and victim.idle_seconds < limits.sync_max_idle_time:
        return None
    return victim


# -- reading the world ----------------------------------------------------------------------------
def limits_from_config() -> Limits:
    c = conf()
    sync_idle = c.get("workers", "sync_max_idle_time", None)
    if sync_idle in (None, ""):
        # upstream's code read section [worker] (a typo); honour a file written for that
        sync_idle = c.get("worker", "sync_max_idle_time", None)
    return Limits(
        enabled=c.get_bool("workers", "autoscaling", False),
        max_workers_per_actor=c.get_int("spawner", "max_workers_per_actor", 1),
        max_workers_per_host=c.get_int("spawner", "max_workers_per_host", DEFAULT_MAX_WORKERS_PER_HOST),
        hosts=Host.count_alive(c.get_float("health", "host_timeout", 120.0)),
        max_cmd_length=c.get_int("spawner", "max_cmd_length", DEFAULT_MAX_CMD_LENGTH),
        sync_max_idle_time=float(sync_idle) if sync_idle not in (None, "") else DEFAULT_SYNC_MAX_IDLE_TIME,
        tenants=tuple(c.get_list("workers", "autoscaling_tenants", [])),
    )


def _as_int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _idle_seconds(worker: dict, now: float) -> float:
    try:
        since = float(worker.get("last_execution_time") or 0) or float(worker.get("create_time") or 0)
    except (TypeError, ValueError):
        return 0.0
    return max(now - since, 0.0) if since else 0.0


def command_queue_of(actor: dict, host_queues: list[str]) -> str:
    queue = actor.get("queue") or "default"
    return queue if queue in host_queues else "default"


def take_snapshot(limits: Limits | None = None) -> Snapshot:
    """The actors that have workers or may have messages, with their workers and queue lengths, and
    the command queues' lengths. The others (idle actors, however many) cannot be scaled up or
    down, so neither their records nor their queues are read (``commands.queued_messages``).

    Actors and workers appearing or vanishing while this runs are simply in or out of the snapshot
    (upstream's pass raised on the first scrape after new actors appeared)."""
    limits = limits or limits_from_config()
    host_queues = conf().get_list("spawner", "host_queues", ["default"])
    now = time.time()
    workers_by_actor = Worker.all_by_actor()
    messages = queued_messages({dbid for dbid, workers in workers_by_actor.items() if workers})
    views = []
    for actor in Actor.records(sorted(messages)):
        dbid = actor.get("db_id")
        if not dbid:
            continue
        workers = workers_by_actor.get(dbid, {})
        views.append(ActorView(
            dbid=dbid,
            tenant=actor.get("tenant", ""),
            messages=messages[dbid],
            workers=tuple(WorkerView(wid, w.get("status", ""), _idle_seconds(w, now))
                          for wid, w in sorted(workers.items()) if isinstance(w, dict)),
            stateless=actor.get("stateless", True) is not False,
            status=actor.get("status", ""),
            max_workers=_as_int(actor.get("max_workers")),
            hints=tuple(str(h) for h in (actor.get("hints") or []) if h is not None),
            command_queue=command_queue_of(actor, host_queues),
        ))
    queues = {q: channels.CommandChannel(q).message_count() for q in host_queues}
    host_workers = sum(len(w) for w in workers_by_actor.values())
    return Snapshot(tuple(views), queues, host_workers, limits)


# -- acting ---------------------------------------------------------------------------------------
def apply(actions: list[Action]) -> list[Action]:
    """Carry out ``actions``; returns those that took effect. Each one re-checks the store
    atomically, so a pass acting on a slightly stale snapshot never exceeds an actor's cap and never
    stops a worker that picked up a message meanwhile."""
    done: list[Action] = []
    for action in actions:
        try:
            if isinstance(action, ScaleUp):
                if scale_up(action):
                    done.append(action)
            elif stop_idle_worker(action):
                done.append(action)
        except Exception:  # noqa: BLE001 - one failed action must not stop the pass
            log.exception("autoscaler: %s failed", action)
    return done


def scale_up(action: ScaleUp) -> bool:
    try:
        actor = Actor.get(action.dbid)
    except Exception:  # noqa: BLE001 - deleted since the snapshot
        return False
    worker_id = Worker.request_if_fewer(action.dbid, actor["tenant"], action.limit)
    if worker_id is None:
        return False
    send_start_command(actor, worker_id)
    log.info("autoscaler: requested worker %s for %s (%s)", worker_id, action.dbid, action.reason)
    return True


def stop_idle_worker(action: StopWorker) -> bool:
    try:
        worker = Worker.get(action.dbid, action.worker_id)
    except (WorkerException, IllegalTransition):
        return False
    if not stop_worker(action.dbid, action.worker_id, worker, codes.STOP_NO_DELETE, only_from=(WorkerStatus.READY,)):
        return False
    log.info("autoscaler: stopping worker %s of %s (%s)", action.worker_id, action.dbid, action.reason)
    return True


# -- one pass, never two at once ------------------------------------------------------------------
LEASE_KEY = "_autoscaler_lease"  # in workers_store, whose readers skip values that are not dicts
LEASE_SECONDS = 30.0
_local_lock = threading.Lock()


def _lease_store():
    return stores.workers_store


@contextmanager
def pass_guard(lease_seconds: float = LEASE_SECONDS) -> Iterator[bool]:
    """Yields True when this caller may run a pass: no other thread of this process and no other
    process (another gunicorn worker or web host) is running one. A lease, not a plain mutex, so a
    process that dies mid-pass blocks the others for ``lease_seconds`` at most."""
    if not _local_lock.acquire(blocking=False):
        yield False
        return
    token = uuid.uuid4().hex
    try:
        held = _take_lease(token, lease_seconds)
        try:
            yield held
        finally:
            if held:
                _drop_lease(token)
    finally:
        _local_lock.release()


def _take_lease(token: str, seconds: float) -> bool:
    now = time.time()

    def take(current):
        if isinstance(current, list) and len(current) == 2 and float(current[1]) > now:
            return current
        return [token, now + seconds]

    value = _lease_store().within_transaction(take, LEASE_KEY, default=None)
    return value[0] == token


def _drop_lease(token: str) -> None:
    def drop(current):
        if isinstance(current, list) and current and current[0] == token:
            return [token, 0]
        return current

    try:
        _lease_store().within_transaction(drop, LEASE_KEY, default=None)
    except Exception:  # noqa: BLE001 - it expires by itself
        log.exception("autoscaler: could not release the pass lease")


@dataclass
class PassResult:
    snapshot: Snapshot
    ran: bool = False  # False: autoscaling off, or another scrape was running a pass
    actions: list[Action] = field(default_factory=list)  # the actions that took effect


def run_pass() -> PassResult:
    """Snapshot, and when autoscaling is on and no other pass runs, decide and act."""
    limits = limits_from_config()
    if not limits.enabled:
        return PassResult(take_snapshot(limits))
    with pass_guard() as mine:
        snapshot = take_snapshot(limits)
        if not mine:
            log.info("autoscaler: another scrape is running a pass; this one only reports")
            return PassResult(snapshot)
        done = apply(decide(snapshot))
        return PassResult(snapshot, True, done)

