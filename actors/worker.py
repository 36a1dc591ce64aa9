"""The worker agent: runs inside a container of the core image, one per worker record, and executes
its actor's messages one at a time.

``python -m actors.worker`` reads its identity from the environment the spawner set (``worker_id``,
``actor_id`` = the actor's db id, ``tenant``, ``image``, ``api_server``). It consumes the actor's
inbox with prefetch 1 and acknowledges a message only after its execution reached a final status;
a worker that dies mid-execution leaves the message to be redelivered.

The consumer thread drives all AMQP I/O (so heartbeats keep flowing); each execution runs in its
own thread, and control commands (stop, force quit, status pings) arrive on ``worker_<id>``.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from actors import channels, codes, docker_utils, logs
from actors.config import conf
from actors.errors import DAOError, DockerError, DockerStartContainerError, NotFound, WorkerException
from actors.models import Actor, Execution, Logs, Worker, display_id, now_epoch

log = logging.getLogger("actors.worker")  # not __name__: run as __main__ by -m

MAX_CONSECUTIVE_START_ERRORS = 5


class WorkerProcess:
    def __init__(self, environ: dict[str, str]):
        self.worker_id = environ["worker_id"]
        self.dbid = environ["actor_id"]
        self.tenant = environ.get("tenant", "")
        self.image = environ.get("image", "")
        self.inbox = channels.actor_queue_name(self.dbid)
        self.control = channels.worker_queue_name(self.worker_id)
        self.quit_event = threading.Event()  # force-quit of the current execution
        self.stopping = threading.Event()  # no new messages; exit when idle
        self.terminate_requested = False
        self.current_execution: str | None = None
        self.busy = threading.Event()
        self.consecutive_errors = 0
        self.consumer: channels.Consumer | None = None
        self.accounting = docker_utils.CgroupAccounting(
            conf().get("workers", "cgroup_root", "/sys/fs/cgroup"), f"abaco/{self.worker_id}"
        )

    # -- start-up and the loop --------------------------------------------------------------
    def run(self) -> None:
        self.consumer = channels.Consumer()
        self.consumer.subscribe(channels.WorkerChannel(self.worker_id), self.on_control, prefetch=1)
        Worker.set_status(self.dbid, self.worker_id, codes.READY)
        self.consumer.subscribe(channels.ActorMsgChannel(self.dbid), self.on_message, prefetch=1)
        channels.SpawnerWorkerChannel(self.worker_id).put("ready")
        log.info("worker %s of %s ready", self.worker_id, self.dbid)
        self.consumer.run(until=self.finished)
        self.shutdown()

    def shutdown(self) -> None:
        try:
            Worker.set_status(self.dbid, self.worker_id, codes.SHUTTING_DOWN)
        except WorkerException:
            pass
        Worker.delete(self.dbid, self.worker_id)
        self.accounting.remove()
        self.consumer.close()
        channels.delete_queue(self.control)
        log.info("worker %s of %s stopped", self.worker_id, self.dbid)

    def request_stop(self, force_quit: bool) -> None:
        """Stop taking messages; with ``force_quit`` also kill the running execution."""
        if not self.stopping.is_set():
            self.stopping.set()
            self.consumer.cancel(self.inbox)
        if force_quit:
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
            self.quit_event.set()
        elif isinstance(value, dict) and value.get("command") == codes.FORCE_QUIT:
            if value.get("execution_id") == self.current_execution:
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
        self.current_execution = msg.get("_abaco_execution_id")
        threading.Thread(target=self.execute, args=(msg, delivery), name="execution", daemon=True).start()

    def execute(self, msg: dict, delivery) -> None:
        requeue = False
        try:
            requeue = self.run_execution(msg)
        except Exception:
            log.exception("unexpected error running a message of %s", self.dbid)
        finally:
            if requeue:
                delivery.nack(requeue=True)
            else:
                delivery.ack()
            self.set_idle()

    def set_idle(self) -> None:
        try:
            Worker.set_status(self.dbid, self.worker_id, codes.READY, last_execution_time=now_epoch())
        except WorkerException:
            pass
        self.busy.clear()

    def run_execution(self, msg: dict) -> bool:
        """Run one message; returns True when it should go back to the queue."""
        execution_id = msg.get("_abaco_execution_id")
        try:
            execution = Execution.get(self.dbid, execution_id)
            actor = Actor.get(self.dbid)
        except (DAOError, NotFound) as e:
            log.error("dropping message %s: %s", execution_id, e)
            return False
        if execution["status"] in codes.FINAL_EXECUTION_STATUSES:
            log.info("execution %s is already %s; not running it again", execution_id, execution["status"])
            return False
        Worker.set_status(self.dbid, self.worker_id, codes.BUSY)
        Execution.update_fields(self.dbid, execution_id, worker_id=self.worker_id)
        spec = self.run_spec(actor, msg)

        def on_start(start: float) -> None:
            Execution.set_status(self.dbid, execution_id, codes.RUNNING, start_time=str(start), worker_id=self.worker_id)

        before = self.accounting.read()
        self.accounting.reset_memory_peak()
        try:
            result = docker_utils.run_actor_container(
                spec, on_start, self.quit_event, on_logs=lambda text: Logs.set(execution_id, text)
            )
        except DockerStartContainerError as e:
            return self.start_failed(execution_id, e)
        except DockerError as e:
            log.error("execution %s failed: %s", execution_id, e)
            Execution.set_status(self.dbid, execution_id, codes.COMPLETE, exit_code="undetermined",
                                 final_state={"unavailable": True, "Error": str(e)})
            return False
        self.consecutive_errors = 0
        usage = self.accounting.usage_since(before) if spec.cgroup_parent else docker_utils.Usage()
        Logs.set(execution_id, result.logs)
        Execution.set_status(
            self.dbid, execution_id, codes.COMPLETE,
            runtime=result.runtime, cpu=usage.cpu, io=usage.io, exit_code=result.exit_code,
            final_state=result.final_state, start_time=str(result.start_time),
            finish_time=str(result.finish_time),
        )
        return False

    def start_failed(self, execution_id: str, error: Exception) -> bool:
        self.consecutive_errors += 1
        log.error("execution %s could not start (%d in a row): %s", execution_id, self.consecutive_errors, error)
        if self.consecutive_errors > MAX_CONSECUTIVE_START_ERRORS:
            Actor.set_status(self.dbid, codes.ERROR, f"Error starting actor containers: {error}")
            Execution.set_status(self.dbid, execution_id, codes.COMPLETE, exit_code="undetermined",
                                 final_state={"unavailable": True, "Error": str(error)})
            self.consumer.threadsafe(lambda: self.request_stop(force_quit=False))
            return False
        time.sleep(min(5, self.consecutive_errors))
        return True

    def run_spec(self, actor: dict, msg: dict) -> docker_utils.RunSpec:
        c = conf()
        message = msg.get("message", "")
        mem_limit = actor.get("mem_limit") or c.get("workers", "mem_limit", "-1")
        max_cpus = actor.get("max_cpus") or c.get_int("workers", "max_cpus", -1)
        return docker_utils.RunSpec(
            image=actor["image"],
            environment=self.environment(actor, msg, message),
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

    def environment(self, actor: dict, msg: dict, message: Any) -> dict:
        """The actor's environment in upstream's precedence (API ref §7.1), later wins."""
        env: dict[str, Any] = dict(actor.get("default_environment") or {})
        env.update({k: v for k, v in msg.items() if k != "message"})
        env.update(
            _abaco_access_token="",
            _abaco_actor_dbid=self.dbid,
            _abaco_actor_id=display_id(self.dbid),
            _abaco_worker_id=self.worker_id,
            _abaco_container_repo=actor["image"],
            _abaco_actor_state=actor.get("state", {}),
            _abaco_actor_name=actor.get("name"),
        )
        if env["_abaco_actor_name"] is None:
            env["_abaco_actor_name"] = "None"
        if msg.get("_abaco_Content_Type") != codes.CONTENT_BINARY:
            env["MSG"] = message
        return {k: (None if v is None else str(v)) for k, v in env.items()}


def container_user(actor: dict) -> str | None:
    if actor.get("use_container_uid") or not actor.get("uid"):
        return None
    return f"{actor['uid']}:{actor['gid']}" if actor.get("gid") else str(actor["uid"])


def main() -> None:
    logs.setup("worker")
    process = WorkerProcess(dict(conf().environ))
    signal.signal(signal.SIGTERM, process.on_signal)
    try:
        process.run()
    except Exception as e:
        log.exception("worker %s failed", process.worker_id)
        try:
            channels.SpawnerWorkerChannel(process.worker_id).put(f"error: {e}")
        except Exception:
            pass
        raise


if __name__ == "__main__":
    main()
