"""The worker agent: runs inside a container of the core image, one per worker record, and executes
its actor's messages one at a time.

``python -m actors.worker`` reads its identity from the environment the spawner set (``worker_id``,
``actor_id`` = the actor's db id, ``tenant``, ``image``, ``api_server``). It consumes the actor's
inbox with prefetch 1 and acknowledges a message only after its execution reached a final status;
a worker that dies mid-execution leaves the message to be redelivered.

The consumer thread drives all AMQP I/O (so heartbeats keep flowing); each execution runs in its
own thread, and control commands (stop, force quit, status pings) arrive on ``worker_<id>``.

Per execution: a results socket (always) and, for a binary
message, a FIFO are made under ``[workers] socket_host_path_dir`` / ``fifo_host_path_dir`` in a
folder named after this worker (bind-mounted at the same path into this container by the spawner,
so the paths are host paths) and mounted into the actor container; results are forwarded to
``results_<dbid>_<eid>`` while the container runs and drained before the execution becomes
COMPLETE, so a synchronous caller never misses one.

Missing socket/FIFO configuration (upstream: actor ERROR, nack, the worker dies): the actor goes to
ERROR with a message naming the option, the message goes back to the inbox (nack + requeue, its
execution stays SUBMITTED and runs once the configuration is fixed and a worker restarts, e.g. by a
PUT with ``force``) and this worker stops cleanly.

An execution stopped by the worker or by Docker ends COMPLETE like upstream's, with Docker's
``State`` as ``final_state`` plus two keys of ours that say why: ``AbacoStopReason``
(``max_run_time``, ``force_quit``, ``worker_stop`` or ``mem_limit``) and ``AbacoMessage`` (a
sentence for people).
"""
from __future__ import annotations

import importlib
import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from actors import channels, codes, environment, ipc, logs, notify
from actors.accounting import CgroupAccounting, Usage
from actors.commands import discard_worker
from actors.config import conf
from actors.errors import (
    DockerError,
    DockerOutcomeUnknown,
    DockerStartContainerError,
    IllegalTransition,
    NotFound,
    WorkerException,
    WorkerNotFound,
    WorkerStatusConflict,
)
from actors.lifecycle import EXECUTION, WORKER, ActorStatus, ExecutionStatus, WorkerStatus
from actors.models import Actor, Execution, Logs, Worker, now_epoch

log = logging.getLogger("actors.worker")  # not __name__: run as __main__ by -m

MAX_CONSECUTIVE_START_ERRORS = 5  # executions in a row whose container did not start: the actor goes to ERROR
START_TRIES = 2  # times one message's container may fail to start before its execution is failed


@dataclass
class Settled:
    """A message that needs no container (already final, adopted, failed, misconfigured);
    ``requeue`` says whether it goes back to the queue."""

    requeue: bool = False


class ExecutionIpc:
    """The results socket (always) and the binary FIFO (binary messages) of one execution."""

    def __init__(self, results: ipc.ResultsSocket, fifo: ipc.BinaryFifo | None):
        self.results = results
        self.fifo = fifo

    def mounts(self) -> list[dict]:
        return [self.results.mount()] + ([self.fifo.mount()] if self.fifo else [])

    def start_writing(self) -> None:
        if self.fifo is not None:
            self.fifo.start_writer()

    def finish(self) -> None:
        if self.fifo is not None:
            self.fifo.finish()
        self.results.finish()


@dataclass
class Attempt:
    """One try at running one message: what ``prepare`` found, then what ``start`` set up."""

    msg: dict
    execution: dict
    actor: dict
    ipc_dirs: tuple[str, str]  # [workers] socket_host_path_dir, fifo_host_path_dir
    spec: docker_utils.RunSpec | None = None
    usage_before: Usage | None = None

    @property
    def execution_id(self) -> str:
        return self.execution["id"]

    @property
    def binary(self) -> bool:
        return self.msg.get("_abaco_Content_Type") == codes.CONTENT_BINARY

    def missing_configuration(self) -> str | None:
        socket_dir, fifo_dir = self.ipc_dirs
        if not socket_dir:
            return "Abaco is not configured for results data: [workers] socket_host_path_dir is not set."
        if self.binary and not fifo_dir:
            return "Abaco is not configured for binary data: [workers] fifo_host_path_dir is not set."
        return None

    def open_ipc(self, worker_id: str) -> ExecutionIpc:
        socket_dir, fifo_dir = self.ipc_dirs
        results = ipc.ResultsSocket(socket_dir, worker_id, self.execution_id)
        fifo = None
        try:
            if self.binary:
                fifo = ipc.BinaryFifo(fifo_dir, worker_id, self.execution_id, bytes(self.msg.get("message") or b""))
                fifo.open()
        except OSError:
            ExecutionIpc(results, fifo).finish()
            raise
        return ExecutionIpc(results, fifo)



class BackgroundImport:
    """A module imported in a thread once ``begin`` is called; the first use waits for that import
    (Python's import lock), and a use before ``begin`` imports it there and then. The docker SDK
    takes about 100 ms to import (requests, urllib3) and a worker needs it only for its first
    execution, so the import begins once the worker has reported ready: begun at the start, it held
    the GIL while the worker waited on its Redis and RabbitMQ round trips, and the start took ~30 ms
    longer (bench/README.md, "The per-execution path")."""

    def __init__(self, name: str):
        self._name = name

    def begin(self) -> None:
        threading.Thread(target=importlib.import_module, args=(self._name,), name=f"import {self._name}",
                         daemon=True).start()

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


docker_utils = BackgroundImport("actors.docker_utils")

class WorkerProcess:
    def __init__(self, environ: dict[str, str], consumer: channels.Consumer | None = None):
        self.worker_id = environ["worker_id"]
        self.dbid = environ["actor_id"]
        self.tenant = environ.get("tenant", "")
        self.image = environ.get("image", "")
        self.inbox = channels.ActorMsgChannel(self.dbid).name
        self.quit_event = threading.Event()  # force-quit of the current execution
        self.quit_reason = "force_quit"  # or "worker_stop": why quit_event was set
        self.stopping = threading.Event()  # no new messages; exit when idle
        self.terminate_requested = False
        self.current_execution: str | None = None
        self.busy = threading.Event()
        self.consecutive_errors = 0
        self.consumer = consumer  # a standby's, already connected
        self.accounting = CgroupAccounting(
            conf().get("workers", "cgroup_root", "/sys/fs/cgroup"), f"abaco/{self.worker_id}"
        )

    # -- start-up and the loop --------------------------------------------------------------
    def ipc_roots(self) -> list[str]:
        """[workers] socket_host_path_dir and fifo_host_path_dir, in that order."""
        c = conf()
        return [c.get("workers", "socket_host_path_dir", ""), c.get("workers", "fifo_host_path_dir", "")]

    def run(self) -> None:
        try:
            ipc.make_worker_dirs(self.ipc_roots(), self.worker_id)
        except OSError as e:  # reported per execution, where it matters
            log.error("could not create the results/FIFO folders of worker %s: %s", self.worker_id, e)
        self.consumer = self.consumer or channels.Consumer()
        self.consumer.subscribe(channels.WorkerChannel(self.worker_id), self.on_control, prefetch=1)
        try:
            Worker.set_status(self.dbid, self.worker_id, WorkerStatus.READY, only_from=WORKER.group("starting"))
        except (WorkerStatusConflict, WorkerNotFound):
            # asked to stop while it was starting (or already forgotten): no message is taken
            log.info("worker %s of %s was asked to stop before it was ready", self.worker_id, self.dbid)
            channels.SpawnerWorkerChannel(self.worker_id).put(codes.HANDSHAKE_STOPPED)
            self.shutdown()
            return
        self.consumer.subscribe(channels.ActorMsgChannel(self.dbid), self.on_message, prefetch=1)
        channels.SpawnerWorkerChannel(self.worker_id).put(codes.HANDSHAKE_READY)
        docker_utils.begin()
        log.info("worker %s of %s ready", self.worker_id, self.dbid)
        self.consumer.run(until=self.finished)
        self.shutdown()

    def shutdown(self) -> None:
        try:
            Worker.set_status(self.dbid, self.worker_id, WorkerStatus.SHUTTING_DOWN)
        except (WorkerException, IllegalTransition):
            pass  # gone already, or never got further than starting
        self.accounting.remove()
        ipc.remove_worker_dirs(self.ipc_roots(), self.worker_id)
        self.consumer.close()
        discard_worker(self.dbid, self.worker_id)
        log.info("worker %s of %s stopped", self.worker_id, self.dbid)

    def request_stop(self, force_quit: bool) -> None:
        """Stop taking messages; with ``force_quit`` also kill the running execution."""
        if not self.stopping.is_set():
            self.stopping.set()
            self.consumer.cancel(self.inbox)
        if force_quit:
            self.quit_reason = "worker_stop"
            self.quit_event.set()

    # -- control channel (consumer thread) --------------------------------------------------
    def on_control(self, value: Any, delivery) -> None:
        delivery.ack()
        if isinstance(value, dict) and value.get("value") == codes.STATUS_PING:
            channels.reply(value["reply_to"], "ok")
        elif value == codes.STOP:
            self.request_stop(force_quit=True)
        elif value == codes.STOP_NO_DELETE:
            self.request_stop(force_quit=False)
        elif value == codes.FORCE_QUIT:
            self.quit_reason = "force_quit"
            self.quit_event.set()
        elif isinstance(value, dict) and value.get("command") == codes.FORCE_QUIT:
            if value.get("execution_id") == self.current_execution:
                self.quit_reason = "force_quit"
                self.quit_event.set()
            else:
                log.info("ignoring force quit of %s: not running here now", value.get("execution_id"))
        else:
            log.warning("ignoring unknown control message %r", value)

    def on_signal(self, *_args) -> None:
        """SIGTERM: finish the current execution, then exit (acted on in finished())."""
        self.terminate_requested = True

    def finished(self) -> bool:
        """Checked by the consumer loop on its own thread."""
        if self.terminate_requested:
            self.request_stop(force_quit=False)
        return self.stopping.is_set() and not self.busy.is_set()

    # -- messages ---------------------------------------------------------------------------
    def on_message(self, msg: dict, delivery) -> None:
        if self.stopping.is_set():
            delivery.nack(requeue=True)
            return
        self.busy.set()
        self.quit_event.clear()
        self.quit_reason = "force_quit"
        self.current_execution = msg.get("_abaco_execution_id")
        threading.Thread(target=self.execute, args=(msg, delivery), name="execution", daemon=True).start()

    def execute(self, msg: dict, delivery) -> None:
        requeue = False
        try:
            requeue = self.run_execution(msg, redelivered=bool(getattr(delivery, "redelivered", False)))
        except Exception as e:
            log.exception("unexpected error running a message of %s", self.dbid)
            self.record_failure(msg.get("_abaco_execution_id"), f"Error executing container: {e}")
        finally:
            # READY is written before the ack: the ack lets the broker hand over the next message,
            # whose execution writes BUSY, so the order of the two writes is fixed
            self.record_idle()
            if requeue:
                delivery.nack(requeue=True)
            else:
                delivery.ack()
            self.busy.clear()
            channels.close_thread_connection()  # this thread's publisher (events, status) ends with it

    def record_failure(self, execution_id: str | None, reason: str, **fields: Any) -> None:
        """An execution that failed in the worker ends COMPLETE with the reason in final_state (its
        message is acknowledged: retrying would most likely fail the same way)."""
        if not execution_id:
            return
        try:
            notify.finalize_execution(self.dbid, execution_id, exit_code="undetermined", finish_time=now_epoch(),
                               final_state={"unavailable": True, "Error": reason}, **fields)
        except Exception as e:  # already final, or the store is gone too
            log.error("could not record the failure of execution %s: %s", execution_id, e)

    def record_idle(self) -> None:
        try:
            # BUSY -> READY only: a stop request written meanwhile is never overwritten
            Worker.set_status(self.dbid, self.worker_id, WorkerStatus.READY, only_from=(WorkerStatus.BUSY,),
                              last_execution_time=now_epoch())
        except WorkerException:
            pass

    # -- one execution: prepare -> start -> record ---------------------------------------------
    def run_execution(self, msg: dict, redelivered: bool = False) -> bool:
        """Run one message along its lifecycle (docs/architecture.md, "One execution"): prepare the
        attempt, start and supervise the container, record the outcome. Returns True when the
        message should go back to the queue."""
        try:
            attempt = self.prepare(msg, redelivered)
        except DockerOutcomeUnknown as e:
            return self.earlier_attempt_unknown(msg.get("_abaco_execution_id"), e)
        if isinstance(attempt, Settled):
            return attempt.requeue
        try:
            result = self.start(attempt)
        except DockerStartContainerError as e:
            return self.start_failed(attempt.execution, e)
        except DockerOutcomeUnknown as e:
            return self.outcome_lost(attempt.execution_id, e)
        except DockerError as e:
            log.error("execution %s failed: %s", attempt.execution_id, e)
            self.record_failure(attempt.execution_id, str(e))
            return False
        self.record(attempt, result)
        return False

    def prepare(self, msg: dict, redelivered: bool) -> Attempt | Settled:
        """Everything before the container: find the execution, skip one that is final already,
        adopt the container of an earlier attempt, check the configuration and the attempt cap,
        then mark the worker BUSY and count the attempt."""
        execution_id = msg.get("_abaco_execution_id")
        try:
            execution = Execution.get(self.dbid, execution_id)
            actor = Actor.get(self.dbid)
        except NotFound as e:
            log.error("dropping message %s: %s", execution_id, e)
            return Settled()
        if EXECUTION.in_group(execution["status"], "final"):
            log.info("execution %s is already %s; not running it again", execution_id, execution["status"])
            return Settled()
        # only a redelivered message can have an earlier attempt (its worker died after starting the
        # container, possibly before recording RUNNING)
        if redelivered and self.adopt_earlier_run(execution):
            return Settled()
        attempt = Attempt(msg, execution, actor, tuple(self.ipc_roots()))
        missing = attempt.missing_configuration()
        if missing:
            return Settled(requeue=self.configuration_error(missing))
        if self.attempts_exhausted(execution):
            return Settled()
        Worker.set_status(self.dbid, self.worker_id, WorkerStatus.BUSY)
        log.debug("execution %s: attempt %d on worker %s (status %s, redelivered %s)", execution_id,
                  int(execution.get("attempts") or 0) + 1, self.worker_id, execution["status"], redelivered)
        Execution.begin_attempt(self.dbid, execution_id, self.worker_id, earlier_outcome=(
            f"Worker {execution.get('worker_id')} was lost before the actor container ran; worker "
            f"{self.worker_id} ran the message again."))
        return attempt

    def attempts_exhausted(self, execution: dict) -> bool:
        """Every attempt so far ended without an outcome: at ``[workers] max_attempts`` the execution
        is recorded as failed rather than tried for ever."""
        max_attempts = conf().get_int("workers", "max_attempts", 3)
        if int(execution.get("attempts") or 0) < max_attempts:
            return False
        self.record_failure(
            execution["id"], f"Gave up after {max_attempts} attempts ([workers] max_attempts); previous_attempts "
                             "says what happened to each.",
            previous_attempts=Execution.attempts_accounted(
                execution, f"Worker {execution.get('worker_id')} was lost; this was the last of {max_attempts} attempts."))
        return True

    def start(self, attempt: Attempt) -> docker_utils.RunResult:
        """Open the execution's results socket (and FIFO for a binary message), run the container
        until it ends, and close them again: every result is on its queue when this returns."""
        execution_id = attempt.execution_id
        spec = self.run_spec(attempt.actor, attempt.msg)
        try:
            pipes = attempt.open_ipc(self.worker_id)
        except OSError as e:
            raise DockerStartContainerError(f"Could not create the results socket or the binary FIFO: {e}") from e
        spec.mounts += pipes.mounts()
        pipes.results.start(channels.ExecutionResultsChannel(self.dbid, execution_id).put_result,
                            on_exit=channels.close_thread_connection)

        def on_start(start: float) -> None:
            pipes.start_writing()
            Execution.set_status(self.dbid, execution_id, ExecutionStatus.RUNNING, start_time=str(start),
                                 worker_id=self.worker_id)

        attempt.usage_before = self.accounting.read()
        self.accounting.reset_memory_peak()
        attempt.spec = spec
        try:
            return docker_utils.run_actor_container(
                spec, on_start, self.quit_event, on_logs=lambda text: Logs.set(execution_id, text),
                sample_stats=not spec.cgroup_parent,
            )
        finally:
            pipes.finish()

    def record(self, attempt: Attempt, result: docker_utils.RunResult) -> None:
        """The container ended: its usage, logs and final state make the execution COMPLETE."""
        self.consecutive_errors = 0
        spec = attempt.spec
        usage = self.accounting.usage_since(attempt.usage_before) if spec.cgroup_parent else (result.usage or Usage())
        Logs.set(attempt.execution_id, result.logs)
        notify.finalize_execution(
            self.dbid, attempt.execution_id,
            runtime=result.runtime, cpu=usage.cpu, io=usage.io, exit_code=result.exit_code,
            final_state=self.final_state(result, spec), start_time=str(result.start_time),
            finish_time=str(result.finish_time),
        )
        if not spec.leave_container:
            remove_in_background(result.container_id)

    def adopt_earlier_run(self, execution: dict) -> bool:
        """A redelivered message whose execution is not final: its worker died mid-way. If that
        worker's actor container exists, its outcome is this execution's (waited for if it still
        runs), so the execution never runs twice. False when there is nothing to adopt."""
        execution_id = execution["id"]
        max_run_time = conf().get_int("workers", "max_run_time", -1)
        result = docker_utils.adopt_actor_container(execution_id, self.quit_event, max_run_time)
        if result is None:
            return False
        log.warning("execution %s: adopting the container %s its lost worker started",
                    execution_id, (result.container_id or "")[:12])
        Worker.set_status(self.dbid, self.worker_id, WorkerStatus.BUSY)
        Logs.set(execution_id, result.logs)
        state = dict(result.final_state)
        state["AbacoMessage"] = "The worker running this execution was lost; another worker collected its outcome."
        notify.finalize_execution(
            self.dbid, execution_id, runtime=result.runtime, cpu=0, io=0, exit_code=result.exit_code,
            final_state=state, start_time=str(result.start_time), finish_time=str(result.finish_time),
            worker_id=self.worker_id,
            previous_attempts=Execution.with_lost_attempt(execution, (
                f"Worker {execution.get('worker_id')} was lost while the actor container ran; worker "
                f"{self.worker_id} collected the container's outcome instead of running it again.")),
        )
        if not conf().get_bool("workers", "leave_containers", False):
            docker_utils.remove_container(result.container_id)
        return True

    def final_state(self, result: docker_utils.RunResult, spec: docker_utils.RunSpec) -> dict:
        """Docker's State, plus why the container was stopped when it did not end by itself."""
        state = dict(result.final_state)
        reason = result.killed_reason
        if reason == "force_quit":
            reason = self.quit_reason
        if reason is None and state.get("OOMKilled"):
            reason = "mem_limit"
        if reason is None:
            return state
        messages = {
            "max_run_time": f"The execution ran longer than the maximum run time of {spec.max_run_time} "
                            "seconds ([workers] max_run_time) and was stopped.",
            "force_quit": "The execution was force-quit.",
            "worker_stop": "The execution was stopped because its worker was stopped.",
            "mem_limit": f"The container ran out of memory (limit {spec.mem_limit}) and was killed.",
        }
        state["AbacoStopReason"] = reason
        state["AbacoMessage"] = messages.get(reason, reason)
        return state

    def configuration_error(self, reason: str) -> bool:
        """Upstream put the actor in ERROR, nacked and died. We do the same, but stop cleanly: the
        message goes back to the inbox (not lost; its execution stays SUBMITTED)."""
        log.error("actor %s: %s", self.dbid, reason)
        try:
            notify.set_actor_status(self.dbid, ActorStatus.ERROR, reason)
        except Exception as e:
            log.error("could not put actor %s in ERROR: %s", self.dbid, e)
        # scheduled before the nack, so the message cannot come back to this worker
        self.consumer.threadsafe(lambda: self.request_stop(force_quit=False))
        return True

    def start_failed(self, execution: dict, error: DockerStartContainerError) -> bool:
        """The actor container of this message did not start. A container Docker refuses because of
        what the message put in it fails this execution only; any other cause may be the host's, so
        the message is tried once more, and only repeated failures of different messages put the
        actor in ERROR. Returns True when the message should go back to the queue."""
        execution_id = execution["id"]
        reason = f"The actor container could not be started: {error}"
        log.error("execution %s: %s", execution_id, reason)
        if error.caused_by_message:
            self.record_failure(execution_id, reason)
            return False
        self.consecutive_errors += 1
        if self.consecutive_errors > MAX_CONSECUTIVE_START_ERRORS:
            notify.set_actor_status(self.dbid, ActorStatus.ERROR, f"Error starting actor containers: {error}")
            self.record_failure(execution_id, reason)
            self.consumer.threadsafe(lambda: self.request_stop(force_quit=False))
            return False
        if Execution.record_start_failure(self.dbid, execution_id, reason) >= START_TRIES:
            self.record_failure(execution_id, f"{reason} (tried {START_TRIES} times)")
            return False
        time.sleep(min(5, self.consecutive_errors))
        return True

    def outcome_lost(self, execution_id: str, error: DockerOutcomeUnknown) -> bool:
        """The daemon stopped answering while the container ran (its host is going down): how the
        execution ended is unknown, so nothing is recorded as its outcome. The attempt is noted in
        ``previous_attempts``, the message goes back to the queue for a worker that can run it (one
        on this host adopts the container if the daemon kept it) and this worker, which cannot reach
        its daemon, stops. Returns True: requeue."""
        return self.give_back(execution_id, error, lambda: Execution.record_lost_attempt(self.dbid, execution_id, (
            f"Worker {self.worker_id} lost contact with its Docker daemon while the actor container ran "
            f"({error}); the message went back to the queue.")))

    def earlier_attempt_unknown(self, execution_id: str, error: DockerOutcomeUnknown) -> bool:
        """A redelivered message whose earlier attempt's container this worker cannot look for (its
        daemon does not answer): running it afresh could run it twice and failing it would invent an
        outcome, so it goes back to the queue and this worker, which cannot reach its daemon, stops.
        The earlier attempt gets one entry in ``previous_attempts``, however often this happens.
        Returns True: requeue."""
        return self.give_back(execution_id, error, lambda: Execution.account_latest_attempt(self.dbid, execution_id, (
            f"The worker of this attempt was lost; worker {self.worker_id} could not ask its Docker daemon "
            f"whether the attempt's container exists ({error}); the message went back to the queue.")))

    def give_back(self, execution_id: str, error: DockerOutcomeUnknown, note: Callable[[], Any]) -> bool:
        """Put the message back (True: requeue) after ``note`` wrote what happened to the attempt,
        and stop this worker, which cannot reach its daemon."""
        log.error("execution %s: %s; the message goes back to the queue", execution_id, error)
        try:
            note()
        except Exception as e:  # noqa: BLE001 - the redelivery says the attempt was lost anyway
            log.error("could not note the lost attempt of execution %s: %s", execution_id, e)
        self.consumer.threadsafe(lambda: self.request_stop(force_quit=False))
        return True

    def run_spec(self, actor: dict, msg: dict) -> docker_utils.RunSpec:
        c = conf()
        mem_limit = actor.get("mem_limit") or c.get("workers", "mem_limit", "-1")
        max_cpus = actor.get("max_cpus") or c.get_int("workers", "max_cpus", -1)
        return docker_utils.RunSpec(
            image=actor["image"],
            environment=environment.build(actor, msg, self.worker_id),
            labels={
                docker_utils.ACTOR_LABEL: self.dbid,
                docker_utils.WORKER_LABEL: self.worker_id,
                docker_utils.EXECUTION_LABEL: msg.get("_abaco_execution_id", ""),
            },
            mounts=list(actor.get("mounts") or []),
            user=container_user(actor),
            mem_limit=str(mem_limit),
            max_cpus=int(max_cpus),
            privileged=actor.get("privileged") is True,
            network=c.get("workers", "actor_network", ""),
            max_run_time=c.get_int("workers", "max_run_time", -1),
            leave_container=c.get_bool("workers", "leave_containers", False),
            # cpu (ns) and io (bytes) are read exactly from this parent's cgroup counters
            cgroup_parent=f"/abaco/{self.worker_id}" if self.accounting.available() else None,
        )

def remove_in_background(container_id: str) -> None:
    """Remove a finished actor container while the next message starts: its outcome is recorded
    COMPLETE already, so if this worker dies before the removal, the health agent removes it as an
    orphan (it is no longer awaiting adoption)."""

    def remove() -> None:
        try:
            docker_utils.remove_container(container_id)
        except DockerError as e:
            log.warning("could not remove actor container %s: %s", container_id[:12], e)

    threading.Thread(target=remove, name="remove-container", daemon=True).start()


def container_user(actor: dict) -> str | None:
    if actor.get("use_container_uid") or not actor.get("uid"):
        return None
    return f"{actor['uid']}:{actor['gid']}" if actor.get("gid") else str(actor["uid"])


def wait_for_assignment(standby_id: str) -> tuple[dict, channels.Consumer]:
    """A standby's wait (actors/standby.py): everything a worker needs before it knows its actor is
    done first (imports, both RabbitMQ connections), then the assignment is read from the standby's
    queue. Returns the assignment and the connected consumer, for the worker to go on with."""
    docker_utils.begin()
    channels.open_thread_connection()
    consumer = channels.Consumer()
    assignment: dict = {}

    def on_assignment(value: dict, delivery) -> None:
        assignment.update(value)
        delivery.ack()

    standby = channels.StandbyChannel(standby_id)
    consumer.subscribe(standby, on_assignment, prefetch=1)
    log.info("standby %s waiting for its worker", standby_id)
    consumer.run(until=lambda: bool(assignment))
    consumer.cancel(standby.name)
    return assignment, consumer


def main() -> None:
    logs.setup("worker")
    environ, consumer = dict(conf().environ), None
    if environ.get("standby_id"):
        assignment, consumer = wait_for_assignment(environ["standby_id"])
        environ.update(assignment)
    process = WorkerProcess(environ, consumer)
    signal.signal(signal.SIGTERM, process.on_signal)
    try:
        process.run()
    except Exception as e:
        log.exception("worker %s failed", process.worker_id)
        try:
            channels.SpawnerWorkerChannel(process.worker_id).put(f"{codes.HANDSHAKE_ERROR_PREFIX}{e}")
        except Exception:
            pass
        raise


if __name__ == "__main__":
    main()
