"""Standby workers (``[spawner] standby_workers``): worker containers a spawner starts before anyone
asks for a worker, so that starting one is a message to a running process instead of a container
start plus a Python start (docs/architecture.md, "Standby workers").

A standby runs ``python3 -m actors.worker`` with ``standby_id`` in its environment and no actor. It
imports everything, connects, and waits on its :class:`~actors.channels.StandbyChannel` for an
assignment: the worker id, actor, tenant, image and API server the spawner would otherwise have put
in a new container's environment. From then on it is that worker and only that: it never goes back
to the pool, so nothing of one actor can reach another. The spawner starts a fresh standby in its
place.

The pool belongs to one spawner (its command queue) on one host; its containers carry the role
``standby`` with the pool's name, so the spawner that comes next removes what an earlier one left,
and the health agent tells a waiting standby from an orphan (actors/health.py).
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Callable

from actors import channels, docker_utils
from actors.config import host_id
from actors.errors import DockerError

log = logging.getLogger(__name__)

RETRY_AFTER = 5.0  # seconds before the pool tries again after a failed start


@dataclass(frozen=True)
class Standby:
    standby_id: str
    cid: str


def discard(standby_id: str, cid: str) -> None:
    """Remove a standby's container and its queue (either may be gone already)."""
    try:
        docker_utils.remove_container(cid)
    except DockerError as e:
        log.error("could not remove standby container %s: %s", cid[:12], e)
    channels.StandbyChannel(standby_id).delete()


class StandbyPool:
    """Keeps ``size`` standby containers started for the spawner of command queue ``pool``.
    ``environment()`` gives what every worker container of the host gets (configuration overrides,
    host id, secret); the assignment adds the rest."""

    def __init__(self, size: int, pool: str, environment: Callable[[], dict]):
        self.size = size
        self.pool = pool
        self.environment = environment
        self._waiting: deque[Standby] = deque()
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.remove_left_behind()
        self._thread = threading.Thread(target=self._keep_full, name=f"standby pool {self.pool}", daemon=True)
        self._thread.start()
        self._wanted.set()

    def take(self) -> Standby | None:
        """The oldest waiting standby that still runs, or None when there is none (the caller
        starts a container as without a pool). A fresh standby is started in its place."""
        while True:
            with self._lock:
                standby = self._waiting.popleft() if self._waiting else None
            self._wanted.set()
            if standby is None:
                return None
            if docker_utils.container_running_or_unknown(standby.cid):
                return standby
            log.warning("standby %s (container %s) is gone; trying the next", standby.standby_id, standby.cid[:12])
            discard(standby.standby_id, standby.cid)

    def waiting(self) -> list[Standby]:
        with self._lock:
            return list(self._waiting)

    def close(self) -> None:
        """Stop filling and remove the standbys nobody took."""
        self._stopping.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        with self._lock:
            left, self._waiting = list(self._waiting), deque()
        for standby in left:
            discard(standby.standby_id, standby.cid)
        channels.close_thread_connection()

    def remove_left_behind(self) -> None:
        """Standbys of this pool and host that an earlier spawner left (it was killed)."""
        for container in docker_utils.list_containers(**{
                docker_utils.ROLE_LABEL: "standby", docker_utils.HOST_LABEL: host_id(),
                docker_utils.POOL_LABEL: self.pool}):
            standby_id = (container.get("Labels") or {}).get(docker_utils.STANDBY_LABEL, "")
            log.info("removing standby %s left by an earlier spawner", standby_id)
            discard(standby_id, container["Id"])

    # -- the filling thread -------------------------------------------------------------------
    def _keep_full(self) -> None:
        while not self._stopping.is_set():
            self._wanted.wait()
            self._wanted.clear()
            while not self._stopping.is_set() and len(self.waiting()) < self.size:
                try:
                    standby = self._start_one()
                except Exception as e:  # noqa: BLE001 - Docker or RabbitMQ away: the pool waits, starts keep working
                    log.error("could not start a standby worker for pool %s: %s", self.pool, e)
                    self._stopping.wait(RETRY_AFTER)
                    continue
                with self._lock:
                    self._waiting.append(standby)
        channels.close_thread_connection()

    def _start_one(self) -> Standby:
        standby_id = uuid.uuid4().hex[:16]
        channels.StandbyChannel(standby_id).declare()  # an assignment sent before it consumes waits
        env = {**self.environment(), "standby_id": standby_id}
        cid = docker_utils.create_standby_container(standby_id, self.pool, env)
        try:
            docker_utils.start_container(cid)
        except DockerError:
            discard(standby_id, cid)
            raise
        log.info("standby %s started (container %s)", standby_id, cid[:12])
        return Standby(standby_id, cid)
