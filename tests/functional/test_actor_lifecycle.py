"""The walking skeleton, end to end: register, message, execution, logs, delete."""
from __future__ import annotations

import datetime
import re
import uuid

from tests.functional.conftest import TENANT, f, wait_for, wait_for_actor_status, wait_for_execution


def docker_time(text: str) -> datetime.datetime:
    """Docker's RFC3339Nano UTC time, cut to microseconds."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", text)
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    return datetime.datetime.fromisoformat(f"{match.group(1)}.{fraction}")


def send(api, actor_id: str, text: str) -> str:
    result = api.result("POST", f"/actors/{actor_id}/messages", data={"message": text})
    assert result["msg"] == text
    return result[f("execution_id")]


def test_registered_actor_becomes_ready(api, make_actor):
    actor = make_actor()
    assert actor["status"] == "SUBMITTED"
    # upstream's ids are hashids of 64 bits: 13 characters almost always, occasionally fewer
    assert 10 <= len(actor["id"]) <= 13 and actor["id"].isalnum()
    assert actor["owner"] == "anonymous"
    ready = wait_for_actor_status(api, actor["id"], "READY")
    assert ready[f("status_message")] == " "
    workers = api.result("GET", f"/actors/{actor['id']}")
    assert workers["image"] == actor["image"]


def test_message_runs_to_complete_with_logs(api, make_actor):
    actor = make_actor()
    text = f"hello-{uuid.uuid4().hex[:6]}"
    execution_id = send(api, actor["id"], text)
    execution = wait_for_execution(api, actor["id"], execution_id)
    assert execution[f("exit_code")] == 0
    assert isinstance(execution["runtime"], int) and execution["runtime"] >= 0
    assert execution[f("start_time")] != "None"
    assert execution[f("final_state")]["ExitCode"] == 0
    assert execution[f("actor_id")] == actor["id"]
    assert execution[f("worker_id")]
    logs = api.result("GET", f"/actors/{actor['id']}/executions/{execution_id}/logs")
    assert text in logs["logs"]
    assert f"_abaco_execution_id={execution_id}" in logs["logs"]
    assert "_abaco_Content_Type=str" in logs["logs"]


def test_two_messages_run_in_order(api, make_actor):
    actor = make_actor()
    first, second = send(api, actor["id"], "first"), send(api, actor["id"], "second")
    one = wait_for_execution(api, actor["id"], first)
    two = wait_for_execution(api, actor["id"], second)
    assert one[f("exit_code")] == two[f("exit_code")] == 0
    summary = api.result("GET", f"/actors/{actor['id']}/executions")
    assert [e["id"] for e in summary["executions"]] == [first, second]
    assert summary[f("total_executions")] == 2
    # one worker runs them one after the other: the second container starts after the first exited
    assert docker_time(one[f("final_state")]["FinishedAt"]) <= docker_time(two[f("final_state")]["StartedAt"])


def test_delete_removes_workers_and_containers(api, make_actor, docker_client):
    actor = make_actor()
    wait_for_actor_status(api, actor["id"], "READY")
    execution_id = send(api, actor["id"], "before delete")
    wait_for_execution(api, actor["id"], execution_id)
    dbid = f"{TENANT}_{actor['id']}"
    assert docker_client.containers.list(ignore_removed=True, filters={"label": f"org.abaco.actor={dbid}"})
    body = api.call("DELETE", f"/actors/{actor['id']}")
    assert body["result"] is None
    wait_for(
        lambda: not docker_client.containers.list(ignore_removed=True, all=True, filters={"label": f"org.abaco.actor={dbid}"}),
        timeout=30,
        what="the actor's containers to be removed",
    )
    api.call("GET", f"/actors/{actor['id']}", expect=404)


def test_bad_image_puts_actor_in_error(api, make_actor):
    actor = make_actor(image=f"abacosamples/does-not-exist-{uuid.uuid4().hex[:6]}")
    errored = wait_for_actor_status(api, actor["id"], "ERROR", timeout=30)
    assert "does-not-exist" in errored[f("status_message")]
    assert "not available" in errored[f("status_message")] or "pull" in errored[f("status_message")].lower()
