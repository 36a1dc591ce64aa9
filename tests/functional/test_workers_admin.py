"""Workers of an actor and the admin views."""
from __future__ import annotations

import uuid

import pytest

from tests.functional.conftest import (
    ADMIN_URL,
    BASE_URL,
    BEHIND_NGINX,
    TENANT,
    TEST_IMAGE,
    Api,
    f,
    wait_for,
    wait_for_actor_status,
    wait_for_execution,
)

UNKNOWN_WORKER = "NolBaJ5y6714M"


@pytest.fixture(scope="module")
def actor(api):
    record = api.result("POST", "/actors", json={"image": TEST_IMAGE, "name": f"workers-{uuid.uuid4().hex[:6]}"})
    wait_for_actor_status(api, record["id"], "READY")
    yield record
    api.request("DELETE", f"/actors/{record['id']}", expect=None)


def workers_of(api, actor: dict) -> list[dict]:
    return api.result("GET", f"/actors/{actor['id']}/workers")


def wait_for_ready_workers(api, actor: dict, count: int) -> list[dict]:
    return wait_for(
        lambda: (ws := workers_of(api, actor)) and len(ws) == count and all(w["status"] == "READY" for w in ws) and ws,
        timeout=60, what=f"{count} READY worker(s)",
    )


def test_list_and_get_workers(api, actor):
    [worker] = wait_for_ready_workers(api, actor, 1)
    for key in ("id", "tenant", "status", "image", "location", "cid", "ch_name", "host_id", "host_ip",
                "create_time", "last_execution_time", "last_health_check_time"):
        assert f(key) in worker, key
    assert worker["tenant"] == TENANT and worker[f("ch_name")] == f"worker_{worker['id']}"
    assert api.result("GET", f"/actors/{actor['id']}/workers/{worker['id']}") == worker


def test_unknown_worker_is_404(api, actor):
    assert "Worker not found" in api.call("GET", f"/actors/{actor['id']}/workers/{UNKNOWN_WORKER}",
                                          expect=404)["message"]
    api.call("DELETE", f"/actors/{actor['id']}/workers/{UNKNOWN_WORKER}", expect=404)
    api.call("GET", "/actors/NolBaJ5y6714M/workers", expect=404)


def test_add_then_delete_a_worker(api, actor):
    wait_for_ready_workers(api, actor, 1)
    message = api.call("POST", f"/actors/{actor['id']}/workers", json={"num": 2})["message"]
    assert "Scheduled 1 new worker" in message
    workers = wait_for_ready_workers(api, actor, 2)
    assert "already had" in api.call("POST", f"/actors/{actor['id']}/workers", data={"num": "2"})["message"]
    assert "already had" in api.call("POST", f"/actors/{actor['id']}/workers", json={"num": 0})["message"]

    gone = workers[-1]["id"]
    body = api.call("DELETE", f"/actors/{actor['id']}/workers/{gone}")
    assert body["result"] is None and body["message"] == "Worker scheduled to be stopped."
    wait_for(lambda: gone not in {w["id"] for w in workers_of(api, actor)}, timeout=30, what="the worker to stop")
    assert len(workers_of(api, actor)) == 1
    # the inbox is kept: the remaining worker still runs messages
    execution_id = api.result("POST", f"/actors/{actor['id']}/messages", data={"message": "after"})[f("execution_id")]
    wait_for_execution(api, actor["id"], execution_id)


def test_add_workers_validates_num(api, actor):
    assert "num" in api.call("POST", f"/actors/{actor['id']}/workers", expect=400, json={"num": "many"})["message"]


def test_an_admin_may_give_a_stateful_actor_several_workers(api, make_actor):
    """As upstream, the admin's number is honoured; the answer says what it means (item 15)."""
    stateful = make_actor(stateless=False)
    message = api.call("POST", f"/actors/{stateful['id']}/workers", json={"num": 3})["message"]
    assert "concurrently" in message
    wait_for(lambda: len(workers_of(api, stateful)) == 3, timeout=60, what="three workers")


def test_deleting_a_busy_worker_lets_it_finish_its_execution(api, make_actor):
    """Upstream's worker exited at once and abandoned the execution (left RUNNING); ours finishes it."""
    slow = make_actor(**{f("default_environment"): {"ABACO_TEST_SLEEP": "3"}})
    execution_id = api.result("POST", f"/actors/{slow['id']}/messages", data={"message": "busy"})[f("execution_id")]
    running = wait_for_execution(api, slow["id"], execution_id, status="RUNNING")
    api.call("DELETE", f"/actors/{slow['id']}/workers/{running[f('worker_id')]}")
    execution = wait_for_execution(api, slow["id"], execution_id, timeout=30)
    assert execution[f("exit_code")] == 0
    wait_for(lambda: not workers_of(api, slow), timeout=30, what="the worker to be gone")


# -- admin views --------------------------------------------------------------------------------
def test_admin_actors_are_raw_records_with_counts(api, actor):
    listed = {a["id"]: a for a in api.result("GET", "/actors/admin")}
    record = listed[actor["id"]]
    assert record[f("db_id")] == f"{TENANT}_{actor['id']}" and record["tenant"] == TENANT
    assert float(record[f("create_time")]) > 0  # stored epoch strings, not display times
    assert isinstance(record["workers"], dict) and record["workers"]
    for key in ("messages", "executions", "runtime"):
        assert isinstance(record[key], int), key


def test_admin_workers(api, actor):
    result = api.result("GET", "/actors/admin/workers")
    summary = result["summary"]
    for key in ("total_workers", "ready_workers", "requested_workers", "error_workers", "busy_workers",
                "actors_no_workers"):
        assert isinstance(summary[f(key)], int), key
    mine = [w for w in result["workers"] if w[f("actor_id")] == actor["id"]]
    assert mine and mine[0][f("actor_dbid")] == f"{TENANT}_{actor['id']}"
    assert summary[f("total_workers")] >= len(mine)


def test_admin_executions(api, actor):
    execution_id = api.result("POST", f"/actors/{actor['id']}/messages", data={"message": "count"})[f("execution_id")]
    wait_for_execution(api, actor["id"], execution_id)
    result = api.result("GET", "/actors/admin/executions")
    summary = result["summary"]
    for scope in ("all", "existing"):
        for key in ("total_actors", "total_executions", "total_execution_runtime", "total_execution_cpu",
                    "total_execution_io"):
            assert isinstance(summary[f(f"{key}_{scope}")], int)
    assert summary[f("total_executions_all")] >= summary[f("total_executions_existing")] >= 1
    [line] = [a for a in result["actors"] if a[f("actor_id")] == actor["id"]]
    assert line["owner"] == actor["owner"] and line["image"] == actor["image"]
    assert line[f("total_executions")] >= 1


def test_admin_dashboard_is_html(api, actor):
    client = api
    if api.base_url == BASE_URL and BEHIND_NGINX:  # nginx does not route it
        if not ADMIN_URL:
            pytest.skip("nginx does not route /admin/dashboard; ABACO_TEST_ADMIN_URL names the admin app")
        client = Api(ADMIN_URL)
    for method in ("GET", "POST"):
        response = client.request(method, "/admin/dashboard")
        assert response.headers["Content-Type"].startswith("text/html")
        assert actor["id"] in response.text


# -- with JWT users -----------------------------------------------------------------------------
def test_only_admins_add_workers_or_see_admin_views(jwt_api, jwt_actor, user_name):
    alice = jwt_api(user_name("alice"))
    owned = jwt_actor(alice)
    assert alice.result("GET", f"/actors/{owned['id']}/workers") is not None  # READ is enough to list
    assert alice.call("POST", f"/actors/{owned['id']}/workers", expect=400, json={"num": 2})
    for path in ("/actors/admin", "/actors/admin/workers", "/actors/admin/executions", "/admin/dashboard"):
        assert "Admin" in alice.call("GET", path, expect=400)["message"], path
    admin = jwt_api(user_name("root"), "admin")
    assert any(a["id"] == owned["id"] for a in admin.result("GET", "/actors/admin"))  # across tenants
