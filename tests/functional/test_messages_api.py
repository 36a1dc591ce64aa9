"""Messages: count, purge, and how a POST body becomes a message or a 400."""
from __future__ import annotations

import http.client
import json
import uuid
from urllib.parse import urlsplit

import pytest

from tests.functional.conftest import BEHIND_NGINX, TEST_IMAGE, f, wait_for, wait_for_actor_status, wait_for_execution


@pytest.fixture(scope="module")
def actor(api):
    """A READY actor whose executions sleep a little, so that messages can queue up behind one."""
    record = api.result("POST", "/actors", json={
        "image": TEST_IMAGE, "name": f"messages-{uuid.uuid4().hex[:6]}",
        f("default_environment"): {"ABACO_TEST_SLEEP": "0"},
    })
    wait_for_actor_status(api, record["id"], "READY")
    yield record
    api.request("DELETE", f"/actors/{record['id']}", expect=None)


def messages_path(actor: dict) -> str:
    return f"/actors/{actor['id']}/messages"


def post_error(api, actor: dict, **kwargs) -> str:
    return api.call("POST", messages_path(actor), expect=400, **kwargs)["message"]


def raw_post(api, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
    """POST with exactly these headers (requests would fix up Content-Length)."""
    url = urlsplit(api.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.putrequest("POST", path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        text = response.read()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, {"raw": text}
    finally:
        connection.close()


def logs_of(api, actor: dict, execution_id: str) -> str:
    wait_for_execution(api, actor["id"], execution_id)
    return api.result("GET", f"/actors/{actor['id']}/executions/{execution_id}/logs")["logs"]


# -- count and purge ----------------------------------------------------------------------------
def test_count_purge_and_purged_executions_complete(api, make_actor):
    slow = make_actor(**{f("default_environment"): {"ABACO_TEST_SLEEP": "4"}})
    path = messages_path(slow)
    count = api.result("GET", path)
    assert count["messages"] == 0 and count["_links"]["self"].endswith(f"/actors/v2/{slow['id']}/messages")
    running = api.result("POST", path, json={"message": "first"})[f("execution_id")]
    wait_for_execution(api, slow["id"], running, status="RUNNING")
    queued = [api.result("POST", path, json={"message": f"queued {i}"})[f("execution_id")] for i in range(2)]
    assert api.result("GET", path)["messages"] == 2

    purged = api.result("DELETE", path)
    assert purged["msg"] == "Actor mailbox purged."
    assert set(purged["_links"]) == {"self", "owner"}
    assert api.result("GET", path)["messages"] == 0
    # upstream left these SUBMITTED forever; ours are finalized and say why
    for execution_id in queued:
        execution = api.result("GET", f"/actors/{slow['id']}/executions/{execution_id}")
        assert execution["status"] == "COMPLETE"
        assert execution[f("final_state")]["Status"] == "purged"
    # the message a worker was already running is not purged
    finished = wait_for_execution(api, slow["id"], running, timeout=30)
    assert finished[f("exit_code")] == 0


def test_purging_an_empty_mailbox(api, actor):
    assert api.result("DELETE", messages_path(actor))["msg"] == "Actor mailbox purged."


def test_messages_of_unknown_actor_is_404(api):
    api.call("GET", "/actors/NolBaJ5y6714M/messages", expect=404)
    api.call("DELETE", "/actors/NolBaJ5y6714M/messages", expect=404)
    api.call("POST", "/actors/NolBaJ5y6714M/messages", expect=404, data={"message": "x"})


# -- what a POST body becomes -------------------------------------------------------------------
def test_message_field_from_query_string(api, actor):
    result = api.result("POST", messages_path(actor) + "?message=from-query&extra=1")
    assert result["msg"] == "from-query"
    logs = logs_of(api, actor, result[f("execution_id")])
    assert "Contents of MSG: from-query" in logs and "extra=1" in logs


def test_json_body_is_a_json_message(api, actor):
    result = api.result("POST", messages_path(actor), json={"key": "value", "n": 1})
    assert result["msg"] == {"key": "value", "n": 1}
    logs = logs_of(api, actor, result[f("execution_id")])
    assert "_abaco_Content_Type=application/json" in logs
    assert "Contents of MSG: {'key': 'value', 'n': 1}" in logs


def test_json_list_body_is_a_message_too(api, actor):
    assert api.result("POST", messages_path(actor), json=[1, 2])["msg"] == [1, 2]


def test_binary_message(api, actor):
    result = api.result("POST", messages_path(actor), data=b"\x00\x01binary",
                        headers={"Content-Type": "application/octet-stream"})
    assert result["msg"] == "binary - omitted"
    logs = logs_of(api, actor, result[f("execution_id")])
    assert "_abaco_Content_Type=application/octet-stream" in logs
    assert "\nMSG=" not in logs


@pytest.mark.parametrize("kwargs", [
    {},  # no body at all
    {"data": {"other": "field"}},  # a form without a message field
    {"data": "just text", "headers": {"Content-Type": "text/plain"}},
    {"data": "{broken json", "headers": {"Content-Type": "application/json"}},
    {"data": b"\xff\xfe", "headers": {"Content-Type": "application/json"}},
])
def test_bodies_that_are_no_message_are_400(api, actor, kwargs):
    assert post_error(api, actor, **kwargs)


@pytest.mark.skipif(BEHIND_NGINX, reason="nginx buffers a chunked body and hands it on with a Content-Length")
def test_binary_message_needs_content_length(api, actor):
    chunks = iter([b"chunked ", b"body"])  # requests sends a generator chunked, without Content-Length
    message = post_error(api, actor, data=chunks, headers={"Content-Type": "application/octet-stream"})
    assert "Content-Length" in message


def test_binary_message_over_the_size_limit(api, actor):
    status, body = raw_post(api, messages_path(actor),
                            {"Content-Type": "application/octet-stream", "Content-Length": "600000000"}, b"small")
    assert status == 413 and "limit" in body["message"]


def test_binary_message_with_a_bad_content_length(api, actor):
    status, _ = raw_post(api, messages_path(actor),
                         {"Content-Type": "application/octet-stream", "Content-Length": "ten"}, b"0123456789")
    assert status == 400  # gunicorn itself refuses the request before the app sees it


def test_executions_are_created_by_message_posts(api, actor):
    before = api.result("GET", f"/actors/{actor['id']}/executions")[f("total_executions")]
    api.result("POST", messages_path(actor), data={"message": "count me"})
    wait_for(lambda: api.result("GET", f"/actors/{actor['id']}/executions")[f("total_executions")] == before + 1,
             timeout=10, what="one more execution")
