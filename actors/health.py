"""The health agent: finds workers that died, hang, never finished starting or sat idle too long,
containers and IPC folders nobody owns any more, cleans them up, and makes sure an actor that
needs a worker gets one again.

``python -m actors.health`` runs one pass every ``[health] interval`` seconds (default 30; upstream
ran every 10 minutes). Between passes it follows Docker's events: the moment a worker container dies
while its record says it is alive, that worker is removed and replaced (``[health] watch_events``,
default on), so a lost worker is noticed in well under a second rather than at the next pass. Every
action is logged and, where a record survives, written into it (``health_message`` on the worker,
``status_message`` on the actor).

Fixes over upstream: workers that never got a host are timed out too; a worker
removed after a failed ping does not abort the pass; ``worker_ttl < 0`` no longer skips the other
workers; errored workers are recognised in their stored ``ERROR (PREVIOUS …)`` form; orphaned
containers and IPC folders are removed; lost workers are replaced.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field

from actors import channels, codes, docker_utils, lifecycle, logs, migrations, standby
from actors.commands import discard_worker, ensure_one_worker, queued_messages, replace_worker, stop_worker
from actors.config import conf, host_id
from actors.errors import ActorNotFound, DockerError, ExecutionNotFound, WorkerException
from actors.lifecycle import EXECUTION, WORKER, ActorStatus, WorkerStatus
from actors.models import Actor, Execution, Host, Worker, mailbox, now_epoch

log = logging.getLogger("actors.health")  # not __name__: run as __main__ by -m

LIVE, STOPPING, STARTING = WORKER.group("live"), WORKER.group("stopping"), WORKER.group("starting")


@dataclass
class Report:
    """What one pass did; the tests and the log read it."""

    checked: int = 0
    removed: list[str] = field(default_factory=list)
    stopped_idle: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    containers_removed: list[str] = field(default_factory=list)
    dirs_removed: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)  # empty worker maps of deleted actors
    hosts_taken_over: list[str] = field(default_factory=list)  # lost compute hosts whose workers went


FULL_SWEEP_EVERY = 10  # passes between two reads of every actor's queue (5 minutes at the default interval)


class HealthAgent:
    def __init__(self):
        c = conf()
        self.host_id = host_id()
        self.interval = c.get_float("health", "interval", 30.0)
        self.ping_timeout = c.get_float("health", "ping_timeout", 5.0)
        self.start_timeout = c.get_float("health", "worker_start_timeout", 300.0)
        self.ttl = c.get_int("workers", "worker_ttl", -1)
        self.watch_events = c.get_bool("health", "watch_events", True)
        self.host_timeout = c.get_float("health", "host_timeout", 120.0)
        self.passes = 0
        self.stopping = threading.Event()
        self.lock = threading.Lock()  # a pass and a death seen in the events don't interleave
        self._events = None

    def run(self) -> None:
        log.info("health agent on host %s: a pass every %gs", self.host_id, self.interval)
        threading.Thread(target=self.beat, name="heartbeat", daemon=True).start()
        if self.watch_events:
            threading.Thread(target=self.watch_worker_deaths, name="docker-events", daemon=True).start()
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                with self.lock:
                    report = self.check_once()
                log.info("health pass: %d workers checked, removed %s, idle-stopped %s, replaced %s, "
                         "containers removed %s, dirs removed %s (%.2fs)", report.checked, report.removed,
                         report.stopped_idle, report.replaced, report.containers_removed, report.dirs_removed,
                         time.monotonic() - started)
            except Exception:
                log.exception("health pass failed; trying again next interval")
            self.stopping.wait(self.interval)

    def stop(self, *_args) -> None:
        self.stopping.set()
        if self._events is not None:
            self._events.close()

    # -- deaths seen as they happen ---------------------------------------------------------
    def watch_worker_deaths(self) -> None:
        """Follow Docker's ``die`` events of worker containers, reconnecting with backoff."""
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                self._events = docker_utils.container_events("", ["die"], self.host_id)
                backoff = 1.0
                for event in self._events:
                    labels = (event.get("Actor") or {}).get("Attributes") or {}
                    role = labels.get(docker_utils.ROLE_LABEL)
                    if role == "worker":
                        self.on_worker_died(labels.get(docker_utils.ACTOR_LABEL), labels.get(docker_utils.WORKER_LABEL))
                    elif role == "standby":  # its labels predate its worker: found by container id
                        self.on_worker_died(*self.worker_of_container(event.get("id", "")))
            except Exception as e:  # noqa: BLE001 - the daemon restarted, the store hiccuped: keep watching
                if self.stopping.is_set():
                    return
                log.warning("following Docker's events failed (%s); again in %gs", e, backoff)
            self.stopping.wait(backoff)
            backoff = min(30.0, backoff * 2)

    def on_worker_died(self, dbid: str | None, worker_id: str | None) -> Report:
        """A worker container exited. One that stopped normally deleted its record first; one whose
        record still says it runs was lost: remove it and give its actor a worker again. A worker
        still starting is the spawner's to clean up."""
        report = Report()
        if not dbid or not worker_id:
            return report
        with self.lock:
            workers = Worker.get_workers(dbid)
            worker = workers.get(worker_id)
            if not worker or worker.get("status") not in LIVE | STOPPING:
                return report
            self.remove_worker(dbid, worker_id, worker, f"its container died while it was {worker.get('status')}", report)
            try:
                actor = Actor.get(dbid)
            except ActorNotFound:
                return report
            if worker.get("status") in LIVE:
                self.replace(actor, len(workers), report)
        return report

    def replace(self, actor: dict, had: int, report: Report) -> None:
        """A READY or BUSY worker was lost (not stopped on purpose): the actor gets it back."""
        worker_id = replace_worker(actor, had)
        if worker_id:
            log.info("actor %s lost a worker; requested worker %s to replace it", actor["db_id"], worker_id)
            report.replaced.append(worker_id)

    # -- compute hosts -----------------------------------------------------------------------
    def beat(self) -> None:
        """Say this host is alive every few seconds (well within ``[health] host_timeout``), and take
        over the hosts that stopped saying so."""
        period = max(1.0, min(10.0, self.host_timeout / 6))
        while not self.stopping.is_set():
            try:
                Host.heartbeat(self.host_id, docker=docker_utils.daemon_url())
                if Host.lost(self.host_timeout):
                    with self.lock:
                        report = Report()
                        self.take_over_lost_hosts(report)
                    if report.hosts_taken_over:
                        log.warning("took over host(s) %s: removed workers %s, replaced %s",
                                    report.hosts_taken_over, report.removed, report.replaced)
            except Exception:  # noqa: BLE001 - the store may be away for a moment; beat again soon
                log.warning("heartbeat of host %s failed", self.host_id, exc_info=True)
            self.stopping.wait(period)

    def take_over_lost_hosts(self, report: Report) -> None:
        """A host silent for ``[health] host_timeout`` is lost (its daemon and agents are gone): its
        worker records go and the actors get their workers back on the hosts that remain. Their
        messages come back from the broker when the lost workers' connections drop, and run again.
        The host cleans up its own containers when it returns."""
        for host in Host.lost(self.host_timeout):
            lost = host["host_id"]
            if lost == self.host_id or not Host.claim(lost, self.host_id, self.host_timeout):
                continue
            log.warning("host %s has been silent for more than %gs: taking over its workers", lost, self.host_timeout)
            report.hosts_taken_over.append(lost)
            actors = {a["db_id"]: a for a in Actor.list_all()}
            for dbid, workers in Worker.all_by_actor().items():
                gone = {wid: w for wid, w in workers.items() if w.get("host_id") == lost}
                for worker_id in gone:
                    discard_worker(dbid, worker_id)
                    report.removed.append(worker_id)
                actor = actors.get(dbid)
                wanted = [w for w in gone.values() if not WORKER.in_group(w.get("status"), "stopping")]
                for _ in wanted if actor is not None else ():
                    self.replace(actor, len(workers), report)

    # -- one pass ---------------------------------------------------------------------------
    def check_once(self) -> Report:
        report = Report()
        migrations.resume_if_needed()
        self.take_over_lost_hosts(report)
        actors = {a["db_id"]: a for a in Actor.list_all()}
        for dbid, workers in Worker.all_by_actor().items():
            actor = actors.get(dbid)
            if not workers and actor is None and Worker.forget_actor(dbid):
                report.forgotten.append(dbid)
            for worker_id, worker in workers.items():
                if worker.get("host_id") not in (None, self.host_id):
                    continue
                report.checked += 1
                self.check_worker(actor, dbid, worker_id, worker, report)
                if actor is not None and worker_id in report.removed and worker.get("status") in LIVE:
                    self.replace(actor, len(workers), report)
        Actor.reconcile_indexes(list(actors.values()))
        queued = self.queued_messages(actors)
        for actor in actors.values():
            self.replace_lost_workers(actor, queued.get(actor["db_id"], 0), report)
        self.remove_orphan_containers(report)
        self.clean_ipc_dirs(report)
        return report

    def check_worker(self, actor: dict | None, dbid: str, worker_id: str, worker: dict, report: Report) -> None:
        status = worker.get("status", "")
        if actor is None:
            self.remove_worker(dbid, worker_id, worker, "its actor no longer exists", report)
        elif lifecycle.is_worker_error(status):
            self.remove_worker(dbid, worker_id, worker, f"it is in {status}", report)
        elif status in STARTING:
            if self.age(worker, "create_time") > self.start_timeout:
                self.remove_worker(dbid, worker_id, worker, f"it was still {status} after {self.start_timeout:g}s", report)
        elif status in STOPPING:
            # a stopping worker may be finishing a long execution: only a dead one is removed
            if not self.container_alive(worker):
                self.remove_worker(dbid, worker_id, worker, f"it was {status} and its container is gone", report)
            elif not self.answers_ping(worker_id):
                self.remove_worker(dbid, worker_id, worker, f"it was {status} and stopped answering", report)
        elif status in LIVE:
            self.check_running_worker(dbid, worker_id, worker, report)

    def check_running_worker(self, dbid: str, worker_id: str, worker: dict, report: Report) -> None:
        if not self.container_alive(worker):
            self.remove_worker(dbid, worker_id, worker, "its container is gone", report)
            return
        if not self.answers_ping(worker_id):
            self.remove_worker(dbid, worker_id, worker, f"it did not answer a ping within {self.ping_timeout:g}s", report)
            return
        try:
            Worker.update_fields(dbid, worker_id, last_health_check_time=now_epoch())
        except WorkerException:
            return  # it stopped meanwhile
        if worker.get("status") == WorkerStatus.READY and self.ttl > 0:
            idle_since = float(worker.get("last_execution_time") or 0) or float(worker.get("create_time") or 0)
            if idle_since and time.time() - idle_since > self.ttl:
                log.info("worker %s of %s idle for more than worker_ttl=%ss; stopping it", worker_id, dbid, self.ttl)
                Worker.update_fields(dbid, worker_id, health_message=f"stopped: idle longer than worker_ttl ({self.ttl}s)")
                if stop_worker(dbid, worker_id, worker, codes.STOP_NO_DELETE):
                    report.stopped_idle.append(worker_id)

    def queued_messages(self, actors: dict[str, dict]) -> dict[str, int]:
        """Ready messages of the actors that may have some (the mailbox index). The first pass and
        every ``FULL_SWEEP_EVERY``-th also ask every other actor's queue, so messages queued by a
        process that died before noting them (or before an upgrade) are found too."""
        with_workers = {dbid for dbid, workers in Worker.all_by_actor().items() if workers}
        if self.passes % FULL_SWEEP_EVERY == 0:
            for dbid in sorted(set(actors) - with_workers - set(mailbox.noted())):
                if channels.ActorMsgChannel(dbid).message_count():
                    mailbox.note(dbid)
        self.passes += 1
        return queued_messages(with_workers)

    def replace_lost_workers(self, actor: dict, queued: int, report: Report) -> None:
        """An actor keeps the worker it should have: one when it has queued messages or is stateful."""
        if actor.get("status") == ActorStatus.SHUTTING_DOWN or Worker.get_workers(actor["db_id"]):
            return
        if queued == 0 and actor.get("stateless", True):
            return
        worker_id = ensure_one_worker(actor)
        if worker_id:
            log.info("actor %s had no worker and %d queued message(s); requested worker %s",
                     actor["db_id"], queued, worker_id)
            report.replaced.append(worker_id)

    # -- clean-up ---------------------------------------------------------------------------
    def remove_worker(self, dbid: str, worker_id: str, worker: dict, reason: str, report: Report) -> None:
        log.warning("removing worker %s of %s: %s", worker_id, dbid, reason)
        if worker.get("cid"):
            try:
                docker_utils.remove_container(worker["cid"])
            except DockerError as e:
                log.error("could not remove container of worker %s: %s", worker_id, e)
        discard_worker(dbid, worker_id)
        report.removed.append(worker_id)

    def worker_of_container(self, cid: str) -> tuple[str | None, str | None]:
        """``(actor, worker)`` of this host's worker whose record names container ``cid``."""
        for dbid, workers in Worker.all_by_actor().items():
            for worker_id, worker in workers.items():
                if cid and worker.get("cid") == cid and worker.get("host_id") in (None, self.host_id):
                    return dbid, worker_id
        return None, None

    def remove_orphan_containers(self, report: Report) -> None:
        """Worker and actor containers of this host whose actor or worker record is gone (another
        host's containers belong to records this host may not see)."""
        containers = docker_utils.list_containers(**{docker_utils.ROLE_LABEL: "", docker_utils.HOST_LABEL: self.host_id})
        # records read again after the listing: a container is made after its records, so this read
        # sees the records of every container listed (the pass's earlier snapshot may predate them)
        actors = {a["db_id"]: a for a in Actor.list_all()}
        workers = Worker.all_by_actor()
        worker_cids = {w.get("cid") for ws in workers.values() for w in ws.values()}
        for container in containers:
            labels = container.get("Labels") or {}
            dbid, worker_id = labels.get(docker_utils.ACTOR_LABEL), labels.get(docker_utils.WORKER_LABEL)
            if dbid in actors and worker_id in workers.get(dbid, {}):
                continue
            if self.awaits_adoption(actors, dbid, labels):
                continue
            if labels.get(docker_utils.ROLE_LABEL) == "standby":
                if container["Id"] in worker_cids or self.standby_waiting(container):
                    continue
                standby.discard(labels.get(docker_utils.STANDBY_LABEL, ""), container["Id"])
                report.containers_removed.append(container["Id"][:12])
                log.warning("removed orphaned standby container %s", container["Id"][:12])
                continue
            try:
                docker_utils.remove_container(container["Id"])
                if labels.get(docker_utils.ROLE_LABEL) == "worker" and worker_id:
                    # a worker removed before it stopped leaves its control queue behind
                    channels.WorkerChannel(worker_id).delete()
                report.containers_removed.append(container["Id"][:12])
                log.warning("removed orphaned %s container %s (actor %s, worker %s)",
                            labels.get(docker_utils.ROLE_LABEL), container["Id"][:12], dbid, worker_id)
            except DockerError as e:
                log.error("could not remove orphaned container %s: %s", container["Id"][:12], e)

    def standby_waiting(self, container: dict) -> bool:
        """A standby not assigned yet: it consumes its queue, or is still starting (younger than
        ``[spawner] worker_start_timeout``). One that took an assignment and whose worker record
        is gone is an orphan."""
        if time.time() - float(container.get("Created") or 0) < self.start_timeout:
            return True
        standby_id = (container.get("Labels") or {}).get(docker_utils.STANDBY_LABEL, "")
        return bool(standby_id) and channels.StandbyChannel(standby_id).counts()[1] > 0

    @staticmethod
    def awaits_adoption(actors: dict, dbid: str | None, labels: dict) -> bool:
        """The actor container of an execution whose worker died: its message comes back to another
        worker, which collects the outcome from this container rather than running it twice."""
        execution_id = labels.get(docker_utils.EXECUTION_LABEL)
        if labels.get(docker_utils.ROLE_LABEL) != "actor" or dbid not in actors or not execution_id:
            return False
        try:
            return Execution.get(dbid, execution_id).get("status") not in EXECUTION.group("final")
        except ExecutionNotFound:
            return False

    def clean_ipc_dirs(self, report: Report) -> None:
        """Results-socket and FIFO folders are named after their worker; drop those of gone workers."""
        for option in ("socket_host_path_dir", "fifo_host_path_dir"):
            root = conf().get("workers", option, "")
            if not root or not os.path.isdir(root):
                continue
            names = os.listdir(root)
            # as for containers: a folder is made after its worker's record, so read the records after listing
            worker_ids = {wid for workers in Worker.all_by_actor().values() for wid in workers}
            for name in names:
                if name not in worker_ids:
                    shutil.rmtree(os.path.join(root, name), ignore_errors=True)
                    report.dirs_removed.append(name)

    # -- probes -----------------------------------------------------------------------------
    @staticmethod
    def age(worker: dict, time_field: str) -> float:
        try:
            return time.time() - float(worker.get(time_field) or 0)
        except (TypeError, ValueError):
            return float("inf")

    @staticmethod
    def container_alive(worker: dict) -> bool:
        cid = worker.get("cid")
        return bool(cid) and docker_utils.container_running_or_unknown(cid)

    def answers_ping(self, worker_id: str) -> bool:
        try:
            return channels.WorkerChannel(worker_id).put_sync(codes.STATUS_PING, timeout=self.ping_timeout) == "ok"
        except (channels.ChannelTimeoutError, channels.ChannelUnroutableError):  # no answer, or no queue
            return False


def main() -> None:
    logs.setup("health")
    migrations.ensure_current()
    migrations.start_execution_index()
    agent = HealthAgent()
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    agent.run()


if __name__ == "__main__":
    main()
