"""The spawner agent: turns REQUESTED worker records into running worker containers on its host.

``python -m actors.spawner`` consumes ``command_channel_<queue>`` (env ``queue``, default ``default``).
Unlike upstream, a command is acknowledged only after it was processed, so a spawner that dies
mid-way loses nothing (the broker hands the command to the next spawner), and the spawner waits for
the new worker to report ready, with a timeout, instead of the other way round.

Each compute host runs its own spawners against its own Docker daemon; spawners of several hosts
consume the same command queue, so new workers spread over the hosts. A host holds at most
``[spawner] max_workers_per_host`` workers: a spawner whose host is full puts the command back for
another host and stops consuming until one of its workers goes. A worker record is stamped with the
host (``host_id``) at the first step of its start.

With ``[spawner] standby_workers`` above 0 the spawner keeps that many worker containers started
and waiting (actors/standby.py); a start then hands one of them its worker instead of creating a
container, and a fresh standby is started in its place.
"""
from __future__ import annotations

import logging
import signal
import threading
import time

from actors import channels, codes, docker_utils, logs, notify
from actors.agent import PooledAgent, Requeue
from actors.commands import discard_worker, send_start_command
from actors.config import conf, host_id
from actors.errors import ActorNotFound, DockerError, IllegalTransition, WorkerException, WorkerNotFound
from actors.lifecycle import WORKER, ActorStatus, WorkerStatus
from actors.models import Actor, Worker, now_epoch
from actors.standby import StandbyPool

log = logging.getLogger("actors.spawner")  # not __name__: run as __main__ by -m


class WorkerStartError(Exception):
    """The worker could not be brought to READY."""


class WorkerLostWhileStarting(WorkerStartError):
    """The worker's container stopped before it reported ready without saying why (killed, out of
    memory, the daemon restarted): nothing says the next one would fail too, so another is started."""


class WorkerStartCancelled(WorkerStartError):
    """The worker was asked to stop while it was being started: not a failure of the actor."""


class Spawner(PooledAgent):
    log = log

    def __init__(self, queue: str = "default"):
        c = conf()
        super().__init__(c.get_int("spawner", "concurrency", 4), thread_name_prefix="spawn")
        self.queue = queue
        self.host_id = host_id()
        self.host_ip = c.get("spawner", "host_ip", "127.0.0.1")
        self.start_timeout = c.get_float("spawner", "worker_start_timeout", 60.0)
        self.lost_start_retries = c.get_int("spawner", "lost_start_retries", 2)
        self.max_workers = c.get_int("spawner", "max_workers_per_host", 20)
        self.capacity_lock = threading.Lock()  # a count and the record it lets through, together
        self.name = f"spawner for queue {queue} on host {self.host_id}"
        standby = c.get_int("spawner", "standby_workers", 0)
        self.standbys = StandbyPool(standby, queue, self.host_environment) if standby > 0 else None

    def run(self) -> None:
        if self.standbys:
            self.standbys.start()
        try:
            super().run()
        finally:
            if self.standbys:
                self.standbys.close()

    def channel(self) -> channels.Channel:
        return channels.CommandChannel(self.queue)

    def process(self, cmd: dict, delivery) -> None:
        self.process_command(cmd, redelivered=bool(delivery.redelivered))

    # -- this host's capacity ---------------------------------------------------------------
    def host_workers(self) -> int:
        """Worker records on this host, starting ones included."""
        return sum(1 for workers in Worker.all_by_actor().values() for w in workers.values()
                   if w.get("host_id") == self.host_id)

    def accepting(self) -> bool:
        return self.host_workers() < self.max_workers

    def claim_place(self, dbid: str, worker_id: str) -> None:
        """Take one of this host's places for the worker (its first start step, stamped with the
        host), or put the command back when the host is full."""
        with self.capacity_lock:
            count = self.host_workers()
            if count >= self.max_workers:
                raise Requeue(f"host {self.host_id} has {count} workers ([spawner] max_workers_per_host "
                              f"{self.max_workers})")
            self.advance(dbid, worker_id, WorkerStatus.SPAWNER_SETUP, host_id=self.host_id, host_ip=self.host_ip)

    # -- one command ------------------------------------------------------------------------
    def process_command(self, cmd: dict, redelivered: bool = False) -> None:
        dbid, worker_id = cmd["actor_id"], cmd["worker_id"]
        try:
            actor = Actor.get(dbid)
        except ActorNotFound:
            log.info("actor %s is gone; dropping the request for worker %s", dbid, worker_id)
            Worker.delete(dbid, worker_id)
            return
        try:
            worker = Worker.get(dbid, worker_id)
        except WorkerNotFound:
            log.info("worker %s of %s has no record; nothing to do", worker_id, dbid)
            return
        status = worker.get("status")
        if redelivered and WORKER.in_group(status, "spawning"):
            worker_id = self.restart_abandoned_start(actor, worker_id, worker)
            status = WorkerStatus.REQUESTED
        if status != WorkerStatus.REQUESTED:
            if WORKER.in_group(status, "stopping") or WORKER.in_group(status, "failed"):
                discard_worker(dbid, worker_id)
            else:
                log.warning("worker %s is %s, not REQUESTED; ignoring the command", worker_id, status)
            return
        worker_id = self.start_with_retries(actor, worker_id, command_worker=cmd["worker_id"])
        if worker_id is None:
            return
        if cmd.get("stop_existing"):
            self.stop_other_workers(dbid, worker_id)

    def start_with_retries(self, actor: dict, worker_id: str, command_worker: str | None = None) -> str | None:
        """Start the worker; one lost while starting is replaced by a fresh one up to
        ``[spawner] lost_start_retries`` times. Returns the id of the worker that became READY, or
        None when the start failed (the actor is then in ERROR) or was cancelled by a stop request."""
        dbid = actor["db_id"]
        command_worker = command_worker or worker_id
        for retry in range(self.lost_start_retries + 1):
            try:
                self.start_worker(actor, worker_id)
                return worker_id
            except Requeue:
                if worker_id == command_worker:
                    raise  # the command goes back to the queue as it is
                # a fresh worker this command made: it gets a command of its own, for any host
                send_start_command(actor, worker_id)
                return None
            except WorkerLostWhileStarting as e:
                if retry == self.lost_start_retries:
                    self.fail_worker(actor, worker_id, f"{e} (after {retry + 1} tries)")
                    return None
                log.warning("%s; starting a fresh worker for %s instead", e, dbid)
                discard_worker(dbid, worker_id)
                worker_id = Worker.request(dbid, actor["tenant"])
            except WorkerStartCancelled as e:
                log.info("start of worker %s of %s cancelled: %s", worker_id, dbid, e)
                discard_worker(dbid, worker_id)
                return None
            except WorkerStartError as e:
                self.fail_worker(actor, worker_id, str(e))
                return None
        return None

    def restart_abandoned_start(self, actor: dict, worker_id: str, worker: dict) -> str:
        """A command comes back only when the spawner that had it died; its worker was left half
        started. Throw that away and start a fresh worker in its place."""
        dbid = actor["db_id"]
        log.warning("worker %s of %s was left %s by a spawner that died; starting a fresh one",
                    worker_id, dbid, worker.get("status"))
        if worker.get("cid"):
            self.discard_container(worker["cid"])
        Worker.delete(dbid, worker_id)
        return Worker.request(dbid, actor["tenant"])

    @staticmethod
    def advance(dbid: str, worker_id: str, status: str, **fields) -> None:
        """The next step of a start, unless the worker was asked to stop meanwhile."""
        try:
            Worker.set_status(dbid, worker_id, status, **fields)
        except (IllegalTransition, WorkerNotFound) as e:
            raise WorkerStartCancelled(str(e)) from e

    def start_worker(self, actor: dict, worker_id: str) -> None:
        dbid = actor["db_id"]
        self.claim_place(dbid, worker_id)
        self.advance(dbid, worker_id, WorkerStatus.PULLING_IMAGE)
        try:
            docker_utils.ensure_image(actor["image"])
        except DockerError as e:
            raise WorkerStartError(str(e)) from e
        self.advance(dbid, worker_id, WorkerStatus.CREATING_CONTAINER)
        # the worker declares the handshake queue too when it publishes, so nothing is lost if it is first
        handshake = channels.SpawnerWorkerChannel(worker_id)
        standby = self.standbys.take() if self.standbys else None
        cid = standby.cid if standby else None
        try:
            if standby is None:
                cid = docker_utils.create_worker_container(dbid, worker_id, self.worker_environment(actor, worker_id))
            Worker.update_fields(
                dbid, worker_id,
                cid=cid, image=actor["image"], location=docker_utils.daemon_url(),
                ch_name=channels.WorkerChannel(worker_id).name,
                create_time=now_epoch(), last_execution_time=0, last_health_check_time=now_epoch(),
            )
            if standby is None:
                docker_utils.start_container(cid)
            else:
                channels.StandbyChannel(standby.standby_id).put(self.assignment(actor, worker_id))
            self.wait_until_ready(handshake, cid, dbid, worker_id)
        except WorkerStartError:
            if cid:
                self.discard_container(cid)
            raise
        except WorkerNotFound as e:  # its record went: it was stopped and forgotten meanwhile
            if cid:
                self.discard_container(cid)
            raise WorkerStartCancelled(str(e)) from e
        except (DockerError, WorkerException, channels.ChannelError) as e:
            if cid:
                self.discard_container(cid)
            raise WorkerStartError(str(e)) from e
        finally:
            handshake.delete()
            if standby is not None:
                channels.StandbyChannel(standby.standby_id).delete()
        # READY unless the status changed since this command was taken up: a new worker may already
        # have put the actor in ERROR (e.g. missing configuration) and that must stay visible
        try:
            notify.set_actor_status(dbid, ActorStatus.READY, " ",
                             unless_changed_from=(actor.get("status"), actor.get("status_message")))
        except (ActorNotFound, IllegalTransition):
            pass  # deleted, or being deleted

    def wait_until_ready(self, handshake, cid: str, dbid: str, worker_id: str) -> None:
        """Wait for the worker's "ready" (or its "error: ..."), watching that its container still runs
        so a worker lost while starting is noticed within a second, not at the timeout."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                reply = handshake.get(timeout=max(0.05, min(1.0, deadline - time.monotonic())))
                break
            except channels.ChannelTimeoutError:
                pass
            if not docker_utils.container_running_or_unknown(cid):
                try:  # a worker that failed reports why just before it exits
                    reply = handshake.get(timeout=0.5)
                    break
                except channels.ChannelTimeoutError:
                    if not self.still_wanted(dbid, worker_id):  # stopped on purpose, not lost
                        raise WorkerStartCancelled(f"worker {worker_id} was stopped while it started") from None
                    raise WorkerLostWhileStarting(
                        f"The container of worker {worker_id} stopped before the worker reported ready") from None
            if time.monotonic() >= deadline:
                tail = docker_utils.container_logs(cid, tail=20).strip()
                raise WorkerStartError(
                    f"Worker {worker_id} did not report ready within {self.start_timeout:g} s."
                    + (f" Its last output: {tail}" if tail else ""))
        if reply == codes.HANDSHAKE_STOPPED:
            raise WorkerStartCancelled(f"worker {worker_id} was asked to stop before it was ready")
        if reply != codes.HANDSHAKE_READY:
            raise WorkerStartError(f"Worker {worker_id} failed to start: {reply}")

    @staticmethod
    def still_wanted(dbid: str, worker_id: str) -> bool:
        """Whether the worker is still meant to start: its actor stays and nobody asked it to stop."""
        actor = Actor.find(dbid)
        if actor is None or actor.get("status") == ActorStatus.SHUTTING_DOWN:
            return False
        worker = Worker.get_workers(dbid).get(worker_id)
        return worker is not None and not WORKER.in_group(worker.get("status"), "stopping")

    def host_environment(self) -> dict:
        """What every worker container of this host gets, a standby's too."""
        env = dict(conf().env_overrides())
        env["SPAWNER_HOST_ID"] = self.host_id
        secret = conf().environ.get("_abaco_secret")
        if secret:
            env["_abaco_secret"] = secret
        return env

    @staticmethod
    def assignment(actor: dict, worker_id: str) -> dict:
        """What makes a worker container the worker ``worker_id`` of ``actor``."""
        return {"worker_id": worker_id, "actor_id": actor["db_id"], "tenant": actor["tenant"],
                "image": actor["image"], "api_server": actor["api_server"]}

    def worker_environment(self, actor: dict, worker_id: str) -> dict:
        return {**self.host_environment(), **self.assignment(actor, worker_id)}

    def discard_container(self, cid: str) -> None:
        try:
            docker_utils.remove_container(cid)
        except DockerError as e:
            log.error("could not remove worker container %s: %s", cid[:12], e)

    def fail_worker(self, actor: dict, worker_id: str, reason: str) -> None:
        """The actor goes to ERROR with the reason; the failed worker's record is removed so that the
        next message can request a fresh worker (upstream left it behind, blocking recovery)."""
        dbid = actor["db_id"]
        log.error("could not start worker %s for %s: %s", worker_id, dbid, reason)
        try:
            Worker.set_status(dbid, worker_id, WorkerStatus.ERROR)
        except (WorkerException, IllegalTransition):
            pass
        Worker.delete(dbid, worker_id)
        try:
            notify.set_actor_status(dbid, ActorStatus.ERROR, f"Error starting a worker: {reason}")
        except (ActorNotFound, IllegalTransition):
            pass  # deleted, or being deleted

    def stop_other_workers(self, dbid: str, keep_id: str) -> None:
        for worker_id in Worker.get_workers(dbid):
            if worker_id != keep_id:
                channels.WorkerChannel(worker_id).put(codes.STOP_NO_DELETE)


def main() -> None:
    logs.setup("spawner")
    queue = conf().environ.get("queue", "default")
    spawner = Spawner(queue)
    signal.signal(signal.SIGTERM, spawner.stop)
    signal.signal(signal.SIGINT, spawner.stop)
    spawner.run()


if __name__ == "__main__":
    main()
