"""Paging of the lists and the execution totals kept as counters (docs/architecture.md, "Store
layout"): pages concatenate to the whole list, totals equal the sum of the records, survive the
actor's deletion in the all-time figures, and read the same from a freshly started web server."""
from __future__ import annotations

import os

import pytest

from tests.functional.conftest import CASE, f, wait_for, wait_for_actor_status, wait_for_execution

pytestmark = pytest.mark.functional

MESSAGES = 7
FRESH_PORT = int(os.environ.get("ABACO_TEST_FRESH_PORT", "8046"))


@pytest.fixture(scope="module")
def busy_actor(api):
    """An actor with MESSAGES COMPLETE executions, sent one after another (arrival order known)."""
    actor = api.result("POST", "/actors", json={"image": "abacosamples/test", "name": "paging-and-totals"})
    wait_for_actor_status(api, actor["id"], "READY")
    ids = []
    for n in range(MESSAGES):
        sent = api.result("POST", f"/actors/{actor['id']}/messages", data={"message": f"message {n}"})
        ids.append(sent[f("execution_id")])
    for execution_id in ids:
        wait_for_execution(api, actor["id"], execution_id)
    yield actor, ids
    api.request("DELETE", f"/actors/{actor['id']}", expect=None)


def executions_path(actor: dict, query: str = "") -> str:
    return f"/actors/{actor['id']}/executions{query}"


def test_without_paging_parameters_the_list_is_whole_and_in_arrival_order(api, busy_actor):
    actor, ids = busy_actor
    summary = api.result("GET", executions_path(actor))
    assert [e["id"] for e in summary["executions"]] == ids


@pytest.mark.parametrize("query, wanted", [
    ("?limit=3", slice(0, 3)),
    ("?limit=3&skip=3", slice(3, 6)),
    ("?limit=3&offset=6", slice(6, 9)),
    ("?skip=5", slice(5, None)),
    ("?limit=0", slice(0, 0)),
    ("?skip=100", slice(100, None)),
])
def test_executions_pages(api, busy_actor, query, wanted):
    actor, ids = busy_actor
    summary = api.result("GET", executions_path(actor, query))
    assert [e["id"] for e in summary["executions"]] == ids[wanted]
    assert summary[f("total_executions")] == MESSAGES  # totals are the actor's, not the page's


def test_pages_concatenate_to_the_whole_list(api, busy_actor):
    actor, ids = busy_actor
    pages = [api.result("GET", executions_path(actor, f"?limit=2&skip={skip}"))["executions"]
             for skip in range(0, MESSAGES, 2)]
    assert [e["id"] for page in pages for e in page] == ids


@pytest.mark.parametrize("query, name", [("?limit=-1", "limit"), ("?limit=ten", "limit"), ("?skip=x", "skip"),
                                         ("?limit=10000000000000000000", "limit"), ("?skip=1000000001", "skip"),
                                         ("?offset=-5", "offset")])
def test_a_bad_paging_parameter_is_a_400_that_names_it(api, busy_actor, query, name):
    actor, _ = busy_actor
    message = api.call("GET", executions_path(actor, query), expect=400)["message"]
    assert name in message


def record_sums(api, actor: dict, ids: list[str]) -> dict:
    records = [api.result("GET", executions_path(actor, f"/{i}")) for i in ids]
    return {name: sum(int(r[name]) for r in records) for name in ("cpu", "io", "runtime")}


def test_totals_equal_the_sum_of_the_records(api, busy_actor):
    actor, ids = busy_actor
    summary = api.result("GET", executions_path(actor))
    sums = record_sums(api, actor, ids)
    assert summary[f("total_executions")] == MESSAGES
    assert (summary[f("total_cpu")], summary[f("total_io")], summary[f("total_runtime")]) == \
        (sums["cpu"], sums["io"], sums["runtime"])
    assert sums["cpu"] > 0  # real containers ran: the totals are not trivially 0 (runtime is whole seconds)


def test_a_freshly_started_web_server_reads_the_same_totals_and_pages(api, busy_actor):
    from tests.functional.stacks import WebServer

    actor, ids = busy_actor
    before = api.result("GET", executions_path(actor))
    server = WebServer(FRESH_PORT, {"web_case": CASE})
    try:
        from tests.functional.conftest import Api

        fresh = Api(server.base_url)
        after = fresh.result("GET", executions_path(actor))
        page = fresh.result("GET", executions_path(actor, "?limit=2&skip=1"))["executions"]
    finally:
        server.stop()
    totals = [f(k) for k in ("total_executions", "total_cpu", "total_io", "total_runtime")]
    assert [after[k] for k in totals] == [before[k] for k in totals]
    assert [e["id"] for e in page] == ids[1:3]


def test_actor_lists_page_in_creation_order(api, make_actor):
    made = [make_actor()["id"] for _ in range(4)]
    whole = [a["id"] for a in api.result("GET", "/actors")]
    assert [i for i in whole if i in made] == made
    pages = [api.result("GET", f"/actors?limit=3&skip={skip}") for skip in range(0, len(whole), 3)]
    assert all(len(p) <= 3 for p in pages)
    assert [a["id"] for p in pages for a in p] == whole


def test_nonce_and_worker_lists_page(api, make_actor):
    actor = make_actor()
    wait_for_actor_status(api, actor["id"], "READY")
    path = f"/actors/{actor['id']}"
    made = [api.result("POST", f"{path}/nonces", json={f("max_uses"): 5})["id"] for _ in range(3)]
    whole = [n["id"] for n in api.result("GET", f"{path}/nonces")]
    assert sorted(whole) == sorted(made)
    pages = [api.result("GET", f"{path}/nonces?limit=2&skip={skip}") for skip in (0, 2)]
    assert [len(p) for p in pages] == [2, 1]
    assert [n["id"] for p in pages for n in p] == whole
    workers = api.result("GET", f"{path}/workers")
    assert len(workers) >= 1
    assert api.result("GET", f"{path}/workers?limit=0") == []
    assert api.result("GET", f"{path}/workers?skip={len(workers)}") == []


def admin_line(api, actor_id: str) -> dict | None:
    lines = api.result("GET", "/actors/admin/executions")["actors"]
    return next((line for line in lines if line[f("actor_id")] == actor_id), None)


def test_admin_totals_keep_a_deleted_actors_executions_in_the_all_time_figures(api, make_actor):
    actor = make_actor()
    wait_for_actor_status(api, actor["id"], "READY")
    sent = [api.result("POST", f"/actors/{actor['id']}/messages", data={"message": str(n)})[f("execution_id")]
            for n in range(3)]
    for execution_id in sent:
        wait_for_execution(api, actor["id"], execution_id)
    line = admin_line(api, actor["id"])
    assert line is not None and line[f("total_executions")] == 3
    assert line[f("total_execution_runtime")] == record_sums(api, actor, sent)["runtime"]
    before = api.result("GET", "/actors/admin/executions")["summary"]

    api.request("DELETE", f"/actors/{actor['id']}")
    wait_for(lambda: admin_line(api, actor["id"]) is None, timeout=10, what="the deleted actor to leave the admin lines")
    after = api.result("GET", "/actors/admin/executions")["summary"]
    assert after[f("total_executions_all")] >= before[f("total_executions_all")]
    # no message is sent meanwhile (tests run one at a time): existing totals lose the actor's three
    assert after[f("total_executions_existing")] <= before[f("total_executions_existing")] - 3


def test_admin_actor_list_pages(api, make_actor):
    for _ in range(2):
        make_actor()
    whole = [a["id"] for a in api.result("GET", "/actors/admin")]
    first = api.result("GET", "/actors/admin?limit=1")
    rest = api.result("GET", "/actors/admin?skip=1")
    assert [a["id"] for a in first + rest] == whole
