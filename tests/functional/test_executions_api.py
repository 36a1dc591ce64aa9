"""Executions: summary, one execution, force-quit, logs, results and the
legacy POST."""
from __future__ import annotations

import datetime
import os
import uuid
from pathlib import Path

import pytest

from tests.functional.conftest import TENANT, TEST_IMAGE, f, wait_for_actor_status, wait_for_execution

ROOT = Path(__file__).resolve().parents[2]
UNKNOWN_EXECUTION = "NolBaJ5y6714M"


@pytest.fixture(scope="module")
def channels():
    """actors.channels, configured like the stack (``$ABACO_CONF``, else local-dev.conf), so the test
    can publish results itself."""
    from actors import channels as module
    from actors import config

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ABACO_CONF", os.environ.get("ABACO_CONF") or str(ROOT / "local-dev.conf"))
        config.load()
        yield module
        module.close_thread_connection()
    config.load()


@pytest.fixture(scope="module")
def actor(api):
    record = api.result("POST", "/actors", json={"image": TEST_IMAGE, "name": f"executions-{uuid.uuid4().hex[:6]}"})
    wait_for_actor_status(api, record["id"], "READY")
    yield record
    api.request("DELETE", f"/actors/{record['id']}", expect=None)


@pytest.fixture(scope="module")
def finished(api, actor) -> dict:
    """One COMPLETE execution of the module's actor."""
    result = api.result("POST", f"/actors/{actor['id']}/messages", data={"message": "done"})
    return wait_for_execution(api, actor["id"], result[f("execution_id")])


def path(actor: dict, *parts: str) -> str:
    return "/".join([f"/actors/{actor['id']}/executions", *parts])


def test_summary_has_totals_and_items(api, actor, finished):
    summary = api.result("GET", path(actor))
    assert summary[f("actor_id")] == actor["id"] and summary["owner"] == actor["owner"]
    assert summary[f("total_executions")] >= 1
    for key in ("total_cpu", "total_io", "total_runtime"):
        assert isinstance(summary[f(key)], int)
    [item] = [e for e in summary["executions"] if e["id"] == finished["id"]]
    # list items are never case-converted
    assert set(item) >= {"id", "status", "start_time", "message_received_time", "finish_time"}
    assert item["status"] == "COMPLETE"
    assert set(summary["_links"]) == {"self", "owner"}


def test_one_execution(api, actor, finished):
    execution = api.result("GET", path(actor, finished["id"]))
    assert execution["status"] == "COMPLETE" and execution[f("actor_id")] == actor["id"]
    assert execution["executor"] == "anonymous" and execution[f("worker_id")]
    for key in ("runtime", "cpu", "io"):
        assert isinstance(execution[key], int)
    assert execution[f("exit_code")] == 0 and execution[f("final_state")]["ExitCode"] == 0
    assert "tenant" not in execution
    # fixed: upstream's links carried the internal db id (<tenant>_<id>), which no URL accepts
    assert execution["_links"]["self"].endswith(f"/actors/v2/{actor['id']}/executions/{finished['id']}")
    assert execution["_links"]["logs"].endswith(f"/actors/v2/{actor['id']}/executions/{finished['id']}/logs")
    assert api.result("GET", "/actors" + execution["_links"]["self"].split("/actors/v2", 1)[1])["id"] == finished["id"]


def test_the_first_execution_starts_before_it_finishes(api, make_actor):
    """Upstream-shaped times come from Docker's own clock, so a short first run (cold image) does not
    finish before it started."""
    fresh = make_actor()
    execution_id = api.result("POST", f"/actors/{fresh['id']}/messages", data={"message": "first"})[f("execution_id")]
    execution = wait_for_execution(api, fresh["id"], execution_id)
    assert execution[f("exit_code")] == 0, execution
    started = datetime.datetime.fromisoformat(execution[f("start_time")])
    finished = datetime.datetime.fromisoformat(execution[f("final_state")]["FinishedAt"][:26].rstrip("Z"))
    # start_time is rounded to the microsecond, FinishedAt cut there
    assert started <= finished + datetime.timedelta(microseconds=1), execution
    item = api.result("GET", f"/actors/{fresh['id']}/executions")["executions"][0]
    assert item["start_time"] <= item["finish_time"], item  # nested objects keep snake case


def test_unknown_execution_is_400(api, actor):
    assert "Execution not found" in api.call("GET", path(actor, UNKNOWN_EXECUTION), expect=400)["message"]
    assert "Execution not found" in api.call("GET", path(actor, UNKNOWN_EXECUTION, "logs"), expect=400)["message"]
    assert "Execution not found" in api.call("DELETE", path(actor, UNKNOWN_EXECUTION), expect=400)["message"]


def test_executions_of_unknown_actor_are_404(api):
    api.call("GET", "/actors/NolBaJ5y6714M/executions", expect=404)


def test_logs(api, actor, finished):
    logs = api.result("GET", path(actor, finished["id"], "logs"))
    assert "Contents of MSG: done" in logs["logs"]
    assert set(logs["_links"]) == {"self", "owner", "execution"}


# -- force quit ---------------------------------------------------------------------------------
def test_force_quit_needs_a_running_execution(api, actor, finished):
    message = api.call("DELETE", path(actor, finished["id"]), expect=400)["message"]
    assert "RUNNING" in message and "COMPLETE" in message


def test_force_quit_stops_a_running_execution(api, make_actor):
    slow = make_actor(**{f("default_environment"): {"ABACO_TEST_SLEEP": "120"}})
    result = api.result("POST", f"/actors/{slow['id']}/messages", data={"message": "long"})
    execution_id = result[f("execution_id")]
    wait_for_execution(api, slow["id"], execution_id, status="RUNNING")
    body = api.call("DELETE", f"/actors/{slow['id']}/executions/{execution_id}")
    assert body["result"] is None
    assert "Issued force quit command for execution" in body["message"]
    execution = wait_for_execution(api, slow["id"], execution_id, timeout=40)
    assert execution["runtime"] < 60
    assert execution[f("exit_code")] != 0  # stopped, not finished


# -- results ------------------------------------------------------------------------------------
def test_results_are_raw_bytes_one_per_call(api, actor, channels, finished):
    execution_id = finished["id"]
    results = channels.ExecutionResultsChannel(f"{TENANT}_{actor['id']}", execution_id)
    try:
        results.put_result(b"\x00first")
        results.put_result(b"second")
        for expected in (b"\x00first", b"second", b""):
            response = api.request("GET", path(actor, execution_id, "results"))
            assert response.headers["Content-Type"] == "application/octet-stream"
            assert response.content == expected
    finally:
        results.delete()


# -- the legacy POST ----------------------------------------------------------------------------
def test_legacy_post_checks_its_fields_then_answers_400(api, actor):
    def error(body: dict) -> str:
        return api.call("POST", path(actor), expect=400, data=body)["message"]

    assert "runtime" in error({"cpu": "1", "io": "1"})
    assert "cpu" in error({"runtime": "1", "cpu": "lots", "io": "1"})
    # upstream's hook never worked: its model wanted an executor this path does not supply
    assert error({"runtime": "1", "cpu": "2", "io": "3"}) == "Required field executor missing."
