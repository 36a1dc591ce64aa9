"""The sample actor images end to end (images/README.md): word count, sleep loop (live logs and
force-quit) and the function executor, whose result comes back through the results socket."""
from __future__ import annotations

import time

import cloudpickle
import docker
import pytest

from tests.functional.conftest import f, wait_for, wait_for_execution

SAMPLES = ["abacosamples/wc", "abacosamples/sleep_loop", "abacosamples/py3_func"]


@pytest.fixture(scope="module", autouse=True)
def sample_images(docker_client):
    missing = []
    for image in SAMPLES:
        try:
            docker_client.images.get(image)
        except docker.errors.ImageNotFound:
            missing.append(image)
    if missing:
        pytest.fail(f"sample images missing: {missing}; build them with images/samples.sh (make up does)")


def send(api, actor: dict, **kwargs) -> str:
    return api.result("POST", f"/actors/{actor['id']}/messages", **kwargs)[f("execution_id")]


def logs_of(api, actor: dict, execution_id: str) -> str:
    return api.result("GET", f"/actors/{actor['id']}/executions/{execution_id}/logs")["logs"]


def next_result(api, actor: dict, execution_id: str, after_finish: float = 5, timeout: float = 90) -> bytes:
    """Poll the results endpoint until a result comes; fail, with the execution and its logs, when
    none has come ``after_finish`` seconds after the execution finished."""
    path = f"/actors/{actor['id']}/executions/{execution_id}"
    deadline, finished_at = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        data = api.request("GET", path + "/results").content
        if data:
            return data
        execution = api.result("GET", path)
        if execution["status"] in ("COMPLETE", "ERROR") and finished_at is None:
            finished_at = time.monotonic()
        if finished_at is not None and time.monotonic() - finished_at > after_finish:
            pytest.fail(f"no result {after_finish:g} s after the execution finished: exit code "
                        f"{execution.get(f('exit_code'))}; logs:\n{logs_of(api, actor, execution_id)}")
        time.sleep(0.2)
    pytest.fail(f"no result within {timeout:g} s")


# -- word count --------------------------------------------------------------------------------
def test_word_count(api, make_actor):
    actor = make_actor(image="abacosamples/wc")
    execution_id = send(api, actor, data={"message": "the quick brown fox  jumps"})
    execution = wait_for_execution(api, actor["id"], execution_id, timeout=90)
    assert execution[f("exit_code")] == 0
    assert "Number of words is: 5" in logs_of(api, actor, execution_id)


def test_word_count_of_a_json_message(api, make_actor):
    """A JSON message reaches the actor as the Python str() of the value: "{'text': 'a b'}"."""
    actor = make_actor(image="abacosamples/wc")
    execution_id = send(api, actor, json={"text": "a b"})
    wait_for_execution(api, actor["id"], execution_id, timeout=90)
    assert "Number of words is: 3" in logs_of(api, actor, execution_id)


def test_word_count_result(api, make_actor):
    actor = make_actor(image="abacosamples/wc")
    execution_id = send(api, actor, data={"message": "one two three"})
    assert next_result(api, actor, execution_id) == b"3"


# -- sleep loop ----------------------------------------------------------------------------------
def test_sleep_loop_logs_every_iteration(api, make_actor):
    actor = make_actor(image="abacosamples/sleep_loop", **{f("default_environment"): {"SLEEP_LOOP_SECONDS": "0.1"}})
    execution_id = send(api, actor, data={"message": "3"})
    execution = wait_for_execution(api, actor["id"], execution_id, timeout=90)
    assert execution[f("exit_code")] == 0
    logs = logs_of(api, actor, execution_id)
    for line in ("3 iterations of 0.1 s", "iteration 1 of 3", "iteration 3 of 3", "sleep_loop: done"):
        assert line in logs, logs


def test_sleep_loop_live_logs_then_force_quit(api, make_actor):
    """Logs can be read while the execution runs; a force-quit stops it at once (the sample exits
    on SIGTERM, with 143)."""
    actor = make_actor(image="abacosamples/sleep_loop", **{f("default_environment"): {"SLEEP_LOOP_SECONDS": "0.5"}})
    execution_id = send(api, actor, data={"message": "600"})
    wait_for_execution(api, actor["id"], execution_id, status="RUNNING", timeout=90)
    wait_for(lambda: "iteration 2 of 600" in logs_of(api, actor, execution_id), timeout=30,
             what="live logs of the running execution")
    assert api.result("GET", f"/actors/{actor['id']}/executions/{execution_id}")["status"] == "RUNNING"
    api.call("DELETE", f"/actors/{actor['id']}/executions/{execution_id}")
    execution = wait_for_execution(api, actor["id"], execution_id, timeout=30)
    assert execution[f("exit_code")] == 143
    assert execution["runtime"] < 60
    logs = logs_of(api, actor, execution_id)
    assert "sleep_loop: SIGTERM, exiting" in logs and "sleep_loop: done" not in logs


# -- function executor ---------------------------------------------------------------------------
def test_function_executor_round_trip(api, make_actor):
    offset = 1000  # a closure: cloudpickle sends the function and what it captures by value

    def compute(n, *, power=2):
        import math

        return {"sum": offset + sum(i ** power for i in range(n)), "pi": round(math.pi, 3), "n": n}

    actor = make_actor(image="abacosamples/py3_func")
    payload = cloudpickle.dumps((compute, (10,), {"power": 3}))
    execution_id = send(api, actor, data=payload, headers={"Content-Type": "application/octet-stream"})
    result = cloudpickle.loads(next_result(api, actor, execution_id))
    assert result == {"sum": 1000 + 2025, "pi": 3.142, "n": 10}
    execution = wait_for_execution(api, actor["id"], execution_id, timeout=30)
    assert execution[f("exit_code")] == 0
    assert "py3_func: execution" in logs_of(api, actor, execution_id)


def test_function_executor_updates_state_through_the_sdk(api, make_actor):
    """A function run in the container calls the SDK: update_state() reaches the API on 127.0.0.1."""

    def bump():
        import abaco_sdk

        context = abaco_sdk.get_context()
        count = (context.state or {}).get("count", 0) + 1
        abaco_sdk.update_state({"count": count, "by": context.execution_id})
        return count

    actor = make_actor(image="abacosamples/py3_func", stateless=False)
    execution_id = send(api, actor, data=cloudpickle.dumps((bump, (), {})),
                        headers={"Content-Type": "application/octet-stream"})
    assert cloudpickle.loads(next_result(api, actor, execution_id)) == 1
    state = api.result("GET", f"/actors/{actor['id']}/state")["state"]
    assert state == {"count": 1, "by": execution_id}
