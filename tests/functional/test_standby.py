"""Standby workers (``[spawner] standby_workers``, actors/standby.py) against the running stack: a
spawner with a pool keeps standby containers waiting, a new worker is one of them, and the stack's
health agent looks after them as after any worker."""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("ABACO_CONF", str(ROOT / "local-dev.conf"))

from actors import channels  # noqa: E402
from actors.config import host_id  # noqa: E402
from actors.health import HealthAgent  # noqa: E402
from tests.functional.conftest import (  # noqa: E402
    TEST_IMAGE,
    Api,
    f,
    wait_for,
    wait_for_actor_status,
    wait_for_execution,
)
from tests.functional.stacks import Spawner  # noqa: E402


def standbys(docker_client, pool: str) -> list:
    return docker_client.containers.list(ignore_removed=True, all=True, filters={
        "label": ["org.abaco.role=standby", f"org.abaco.pool={pool}", f"org.abaco.host_id={host_id()}"]})


def running_standbys(docker_client, pool: str) -> list:
    return [c for c in standbys(docker_client, pool) if c.status == "running"]


def waiting_standbys(stack: "StandbyStack", docker_client) -> list:
    """Running standbys that no worker took: one that became a worker keeps its labels."""
    taken = {w["cid"] for actor_id in stack.created
             for w in stack.api.result("GET", f"/actors/{actor_id}/workers")}
    return [c for c in running_standbys(docker_client, stack.queue) if c.id not in taken]


def queues_of(pool: str) -> str:
    return f"default, special, {pool}"


class StandbyStack:
    def __init__(self, api: Api, queue: str, spawner: Spawner):
        self.api, self.queue, self.spawner = api, queue, spawner
        self.created: list[str] = []

    def make_actor(self) -> dict:
        actor = self.api.result("POST", "/actors", json={"image": TEST_IMAGE, "queue": self.queue,
                                                         "name": f"standby-{uuid.uuid4().hex[:6]}"})
        self.created.append(actor["id"])
        return actor


@pytest.fixture(scope="module")
def standby_stack(api, docker_client):
    """A standby spawner on queue "special", which the stack knows (its web apps accept actors on
    it, its health agent sends their replacement commands there) but gives no spawner of its own:
    while this module runs, those actors' workers come from the pool."""
    queue = "special"
    for container in standbys(docker_client, queue):  # what a killed run of this module left
        container.remove(force=True)
    spawner = Spawner(queue, {"spawner_standby_workers": "1"})
    stack = StandbyStack(api, queue, spawner)
    try:
        yield stack
        for actor_id in stack.created:
            api.request("DELETE", f"/actors/{actor_id}", expect=None)
    finally:
        spawner.stop()
        for container in standbys(docker_client, queue):
            container.remove(force=True)
        channels.close_thread_connection()


def test_a_new_worker_is_the_standby_that_was_waiting(standby_stack, docker_client):
    api = standby_stack.api
    [waiting] = wait_for(lambda: waiting_standbys(standby_stack, docker_client), timeout=60,
                         what="the pool's standby to run")
    actor = standby_stack.make_actor()
    wait_for_actor_status(api, actor["id"], "READY")
    [worker] = api.result("GET", f"/actors/{actor['id']}/workers")
    assert worker["cid"] == waiting.id  # no container was created for it

    execution_id = api.result("POST", f"/actors/{actor['id']}/messages", data={"message": "warm"})[f("execution_id")]
    execution = wait_for_execution(api, actor["id"], execution_id)
    assert execution[f("exit_code")] == 0
    assert execution[f("worker_id")] == worker["id"]

    # a fresh standby takes the place of the one that became a worker
    fresh = wait_for(lambda: waiting_standbys(standby_stack, docker_client), timeout=60, what="a fresh standby")
    assert len(fresh) == 1


def test_a_worker_that_was_a_standby_is_replaced_when_it_dies(standby_stack, docker_client):
    """The stack's health agent follows the deaths of standby containers too: their labels say
    nothing of the worker they became, so it finds the worker by its container."""
    api = standby_stack.api
    actor = standby_stack.make_actor()
    wait_for_actor_status(api, actor["id"], "READY")
    [dead] = api.result("GET", f"/actors/{actor['id']}/workers")
    assert docker_client.containers.get(dead["cid"]).labels["org.abaco.role"] == "standby"
    docker_client.containers.get(dead["cid"]).kill()
    [replacement] = wait_for(lambda: (ws := api.result("GET", f"/actors/{actor['id']}/workers"))
                             and dead["id"] not in {w["id"] for w in ws} and ws,
                             timeout=20, interval=0.1, what="the dead worker to be replaced")
    wait_for(lambda: api.result("GET", f"/actors/{actor['id']}/workers")[0]["status"] == "READY", timeout=60,
             what="the replacement to be READY")
    execution_id = api.result("POST", f"/actors/{actor['id']}/messages", data={"message": "after"})[f("execution_id")]
    assert wait_for_execution(api, actor["id"], execution_id)[f("worker_id")] == replacement["id"]


def test_health_removes_an_orphaned_standby_and_keeps_a_waiting_one(standby_stack, docker_client):
    [waiting] = wait_for(lambda: waiting_standbys(standby_stack, docker_client), timeout=60,
                         what="the pool's standby to run")
    orphan = docker_client.containers.create(TEST_IMAGE, labels={
        "org.abaco.role": "standby", "org.abaco.host_id": host_id(), "org.abaco.pool": "gone",
        "org.abaco.standby": f"gone{uuid.uuid4().hex[:8]}"})
    agent = HealthAgent()
    agent.start_timeout = 0  # the orphan is not "still starting"
    report = agent.check_once()
    assert orphan.id[:12] in report.containers_removed
    assert waiting.id[:12] not in report.containers_removed  # it consumes its queue
    assert docker_client.containers.get(waiting.id).status == "running"


def test_a_spawner_removes_its_standbys_when_it_stops_and_those_an_earlier_one_left(docker_client):
    queue = f"standbyx{uuid.uuid4().hex[:6]}"
    overrides = {"spawner_host_queues": queues_of(queue), "spawner_standby_workers": "2"}
    first = Spawner(queue, overrides)
    second = None
    try:
        left = wait_for(lambda: len(c := running_standbys(docker_client, queue)) == 2 and c, timeout=60,
                        what="two standbys")
        first.process.kill()  # no chance to clean up
        first.process.wait(timeout=10)
        assert {c.id for c in running_standbys(docker_client, queue)} == {c.id for c in left}

        second = Spawner(queue, overrides)
        wait_for(lambda: (ids := {c.id for c in running_standbys(docker_client, queue)})
                 and len(ids) == 2 and not ids & {c.id for c in left}, timeout=60,
                 what="the left standbys to be replaced by the new spawner's")
        second.stop()
        started = time.monotonic()
        wait_for(lambda: not standbys(docker_client, queue), timeout=30, what="the standbys to go with the spawner")
        print(f"\nstandbys removed {time.monotonic() - started:.1f}s after the spawner stopped")
    finally:
        for spawner in (first, second):
            if spawner is not None and spawner.process.poll() is None:
                spawner.stop()
        for container in standbys(docker_client, queue):
            container.remove(force=True)
        channels.delete_queue(channels.command_queue_name(queue))
        channels.close_thread_connection()
