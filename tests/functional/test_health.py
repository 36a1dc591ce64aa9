"""The health agent against the running stack: one pass run in this process finds and repairs what
the test broke on purpose."""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("ABACO_CONF", str(ROOT / "local-dev.conf"))

from actors import channels, docker_utils  # noqa: E402
from actors.config import conf, host_id  # noqa: E402
from actors.health import HealthAgent  # noqa: E402
from actors.lifecycle import WorkerStatus  # noqa: E402
from actors.models import Worker, now_epoch  # noqa: E402
from tests.functional.conftest import TENANT, f, wait_for, wait_for_actor_status, wait_for_execution  # noqa: E402


def only_worker(api, actor_id: str) -> dict:
    workers = api.result("GET", f"/actors/{actor_id}/workers")
    assert len(workers) == 1, workers
    return workers[0]


def test_a_killed_worker_is_noticed_at_once_and_replaced(api, make_actor, docker_client):
    """The stack's health agent follows Docker's events: a worker container that dies is removed and
    replaced long before the next pass ([health] interval is 30 s in local-dev)."""
    actor = make_actor()
    wait_for_actor_status(api, actor["id"], "READY")
    dead = only_worker(api, actor["id"])
    killed = time.monotonic()
    docker_client.containers.get(dead["cid"]).kill()
    workers = wait_for(lambda: (ws := api.result("GET", f"/actors/{actor['id']}/workers"))
                       and dead["id"] not in {w["id"] for w in ws} and ws,
                       timeout=15, interval=0.05, what="the dead worker to be replaced")
    noticed = time.monotonic() - killed
    print(f"\ndead worker noticed and replaced in {noticed * 1000:.0f} ms")
    assert len(workers) == 1
    execution_id = api.result("POST", f"/actors/{actor['id']}/messages", data={"message": "after death"})[f("execution_id")]
    execution = wait_for_execution(api, actor["id"], execution_id)
    assert execution[f("worker_id")] != dead["id"]
    assert execution[f("exit_code")] == 0


def test_a_pass_removes_and_replaces_a_worker_whose_container_is_gone(api, make_actor):
    """Without an event (the agent was down when the worker died), the periodic pass finds it."""
    actor = make_actor()
    wait_for_actor_status(api, actor["id"], "READY")
    dbid = f"{TENANT}_{actor['id']}"
    ghost = Worker.request(dbid, TENANT)
    Worker.update_fields(dbid, ghost, cid="0" * 64, host_id=host_id())
    for status in (WorkerStatus.SPAWNER_SETUP, WorkerStatus.PULLING_IMAGE, WorkerStatus.CREATING_CONTAINER, WorkerStatus.READY):
        Worker.set_status(dbid, ghost, status)

    report = HealthAgent().check_once()

    assert ghost in report.removed
    assert len(report.replaced) == 1, report
    wait_for(lambda: sum(w["status"] == "READY" for w in api.result("GET", f"/actors/{actor['id']}/workers")) == 2,
             timeout=30, what="the replacement to be READY next to the first worker")


def test_worker_stuck_starting_is_removed(api, make_actor):
    actor = make_actor()
    wait_for_actor_status(api, actor["id"], "READY")
    dbid = f"{TENANT}_{actor['id']}"
    stuck = Worker.request(dbid, TENANT)  # a request no spawner ever took up
    Worker.update_fields(dbid, stuck, create_time=str(time.time() - 3600))
    report = HealthAgent().check_once()
    assert stuck in report.removed
    assert stuck not in Worker.get_workers(dbid)
    assert len(Worker.get_workers(dbid)) == 1  # the real worker is untouched


def test_idle_worker_past_ttl_is_stopped(api, make_actor):
    actor = make_actor()
    wait_for_actor_status(api, actor["id"], "READY")
    worker = only_worker(api, actor["id"])
    dbid = f"{TENANT}_{actor['id']}"
    Worker.update_fields(dbid, worker["id"], last_execution_time=str(time.time() - 120))
    agent = HealthAgent()
    agent.ttl = 60
    report = agent.check_once()
    assert worker["id"] in report.stopped_idle
    wait_for(lambda: not api.result("GET", f"/actors/{actor['id']}/workers"), timeout=30,
             what="the idle worker to stop")


def orphan_labels(host: str) -> dict:
    return {"org.abaco.role": "actor", "org.abaco.host_id": host, "org.abaco.actor": "gone_actor",
            "org.abaco.worker": "goneworker"}


def test_orphaned_container_is_removed(docker_client):
    container = docker_client.containers.create("abacosamples/test", labels=orphan_labels(host_id()))
    report = HealthAgent().check_once()
    assert container.id[:12] in report.containers_removed
    assert not docker_client.containers.list(ignore_removed=True, all=True, filters={"id": container.id})


def test_an_orphaned_worker_container_goes_with_its_queue(docker_client):
    worker_id = f"gone{uuid.uuid4().hex[:8]}"
    queue = channels.WorkerChannel(worker_id)
    channels.Channel(queue.name).put("status")  # the queue a worker removed before it stopped leaves
    assert queue.message_count() == 1
    container = docker_client.containers.create("abacosamples/test", labels={
        **orphan_labels(host_id()), "org.abaco.role": "worker", "org.abaco.worker": worker_id})
    report = HealthAgent().check_once()
    assert container.id[:12] in report.containers_removed
    assert queue.message_count() == 0  # the queue is gone (a missing queue counts 0)


def test_containers_of_another_host_are_left_alone(docker_client):
    """Another stack on the same daemon (the compose stack, host id ``compose``) keeps records this
    health agent cannot see: its containers are not orphans here."""
    other = docker_client.containers.create("abacosamples/test", labels=orphan_labels(f"other-{uuid.uuid4().hex[:6]}"))
    try:
        assert other.id[:12] not in HealthAgent().check_once().containers_removed
        assert docker_client.containers.list(ignore_removed=True, all=True, filters={"id": other.id})
    finally:
        other.remove(force=True)


def test_the_event_watch_sees_only_this_hosts_containers(docker_client):
    agent = HealthAgent()
    events = docker_utils.container_events("actor", ["destroy"], agent.host_id)
    try:
        for host in (f"other-{uuid.uuid4().hex[:6]}", agent.host_id):  # the other host's goes first
            docker_client.containers.create("abacosamples/test", labels=orphan_labels(host)).remove()
        assert next(iter(events))["Actor"]["Attributes"]["org.abaco.host_id"] == agent.host_id
    finally:
        events.close()


def test_ipc_folders_of_gone_workers_are_removed():
    root = conf().get("workers", "socket_host_path_dir", "")
    if not root:
        pytest.skip("no socket_host_path_dir configured")
    stale = Path(root) / f"gone{uuid.uuid4().hex[:8]}"
    stale.mkdir(parents=True)
    (stale / "x.sock").write_text("")
    report = HealthAgent().check_once()
    assert stale.name in report.dirs_removed
    assert not stale.exists()


def test_worker_in_error_is_removed():
    dbid = f"{TENANT}_{'health' + uuid.uuid4().hex[:6]}"
    worker_id = Worker.request(dbid, TENANT)
    Worker.set_status(dbid, worker_id, WorkerStatus.ERROR, health_check=now_epoch())
    try:
        assert Worker.get(dbid, worker_id)["status"] == "ERROR (PREVIOUS REQUESTED)"
        report = HealthAgent().check_once()
        assert worker_id in report.removed
    finally:
        Worker.delete(dbid, worker_id)


def test_the_empty_worker_map_of_a_deleted_actor_is_dropped():
    from actors import stores

    dbid = f"{TENANT}_gone{uuid.uuid4().hex[:8]}"
    stores.workers_store[dbid] = {}  # what the last worker of a deleted actor leaves behind
    report = HealthAgent().check_once()
    assert dbid in report.forgotten
    assert dbid not in stores.workers_store
