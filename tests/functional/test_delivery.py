"""Delivery guarantees seen from outside: attempts are counted, the execution record says what
happened to an attempt whose worker was lost, a lost worker's container is adopted rather than run
again, and a message whose worker keeps dying is recorded as failed instead of looping forever."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("ABACO_CONF", str(ROOT / "local-dev.conf"))

from actors.health import HealthAgent  # noqa: E402
from actors.models import Execution  # noqa: E402
from tests.functional.conftest import (  # noqa: E402
    TENANT,
    ContainerRuns,
    f,
    wait_for,
    wait_for_actor_status,
    wait_for_execution,
)


def test_each_pickup_is_counted(api, make_actor):
    actor = make_actor()
    execution_id = api.result("POST", f"/actors/{actor['id']}/messages", data={"message": "once"})[f("execution_id")]
    execution = wait_for_execution(api, actor["id"], execution_id)
    assert execution["attempts"] == 1
    assert execution[f("exit_code")] == 0
    assert f("previous_attempts") not in execution


def queued_message(api, make_actor, message: str) -> tuple[dict, str, str]:
    """An actor whose message waits in its inbox: queue "special" has no spawner in local-dev."""
    actor = make_actor(queue="special")
    execution_id = api.result("POST", f"/actors/{actor['id']}/messages", data={"message": message})[f("execution_id")]
    return actor, f"{TENANT}_{actor['id']}", execution_id


def lost_attempts(dbid: str, execution_id: str, **fields) -> None:
    """Write into the stored execution what workers that died running it would have left there."""
    from actors import stores

    stores.executions_store.update_fields(Execution.key(dbid, execution_id), fields)


def release(api, actor: dict) -> None:
    """Move the actor to a queue with a spawner: a worker starts and takes the waiting message."""
    api.result("PUT", f"/actors/{actor['id']}", json={"image": actor["image"], "queue": "default", "force": True})
    wait_for_actor_status(api, actor["id"], "READY")


def test_an_attempt_whose_worker_was_lost_is_recorded_and_the_message_runs_again(api, make_actor):
    actor, dbid, execution_id = queued_message(api, make_actor, "again")
    # as if worker lostworker1 had taken the message and died before its container started
    lost_attempts(dbid, execution_id, attempts=1, worker_id="lostworker1")
    release(api, actor)
    execution = wait_for_execution(api, actor["id"], execution_id)
    assert execution[f("exit_code")] == 0
    assert execution["attempts"] == 2
    [earlier] = execution[f("previous_attempts")]
    assert earlier["attempt"] == 1 and earlier["worker"] == "lostworker1"
    assert earlier["started"] is None and earlier["redelivered"] != "None"
    assert "ran the message again" in earlier["outcome"]
    assert execution[f("worker_id")] != "lostworker1"


def test_a_message_past_its_attempts_is_recorded_as_failed(api, make_actor):
    actor, dbid, execution_id = queued_message(api, make_actor, "doomed")
    lost_attempts(dbid, execution_id, attempts=3, worker_id="lostworker3")  # three workers died running it
    release(api, actor)
    execution = wait_for_execution(api, actor["id"], execution_id)
    assert execution[f("exit_code")] == "undetermined"
    assert "Gave up after 3 attempts" in execution[f("final_state")]["Error"]
    assert execution["attempts"] == 3
    [last] = execution[f("previous_attempts")]
    assert last["worker"] == "lostworker3" and "last of 3 attempts" in last["outcome"]


def test_a_worker_lost_mid_execution_has_its_container_adopted_not_run_again(api, make_actor, docker_client):
    actor = make_actor(image="abacosamples/sleep_loop")
    wait_for_actor_status(api, actor["id"], "READY")
    dbid = f"{TENANT}_{actor['id']}"
    runs = ContainerRuns(docker_client, dbid)
    try:
        execution_id = api.result("POST", f"/actors/{actor['id']}/messages", data={"message": "4"})[f("execution_id")]
        running = wait_for_execution(api, actor["id"], execution_id, status="RUNNING")
        lost_worker = running[f("worker_id")]
        [worker_container] = docker_client.containers.list(
            ignore_removed=True, filters={"label": [f"org.abaco.worker={lost_worker}", "org.abaco.role=worker"]})
        worker_container.kill()
        # the health agent removes the dead worker and, the message being back in the inbox, asks for another
        wait_for(lambda: lost_worker in HealthAgent().check_once().removed
                 or lost_worker not in {w["id"] for w in api.result("GET", f"/actors/{actor['id']}/workers")},
                 timeout=30, interval=0.5, what="the lost worker to be removed")
        HealthAgent().check_once()
        execution = wait_for_execution(api, actor["id"], execution_id, timeout=90)
    finally:
        runs.close()
    assert execution[f("exit_code")] == 0
    assert execution["attempts"] == 1
    [earlier] = execution[f("previous_attempts")]
    assert earlier["worker"] == lost_worker and earlier["started"] != "None"
    assert "collected the container's outcome" in earlier["outcome"]
    assert execution[f("worker_id")] != lost_worker
    assert runs.starts[execution_id] == 1
    logs = api.result("GET", f"/actors/{actor['id']}/executions/{execution_id}/logs")["logs"]
    assert "sleep_loop: iteration 1 of 4" in logs and "sleep_loop: done" in logs  # the adopted container's output
