"""Events of actors with a link or a webhook, delivered by the events
agent of the running stack (``python -m actors.events``, started by scripts/up.sh)."""
from __future__ import annotations

import ast
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.functional.conftest import TENANT, TEST_IMAGE, f, wait_for, wait_for_actor_status, wait_for_execution


class Webhook:
    """An HTTP server on 127.0.0.1 (a free port) that records the JSON bodies POSTed to it."""

    def __init__(self):
        self.received: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.received.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                      "body": json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, actor_id: str, event_type: str) -> list[dict]:
        return [r["body"] for r in self.received
                if r["body"].get("actor_id") == actor_id and r["body"].get("event_type") == event_type]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.stop()


def send(api, actor_id: str, text: str) -> str:
    return api.result("POST", f"/actors/{actor_id}/messages", data={"message": text})[f("execution_id")]


def msg_of(logs: str) -> str:
    for line in logs.splitlines():
        if line.startswith("MSG="):
            return line[len("MSG="):]
    raise AssertionError(f"no MSG in {logs!r}")


def execution_caused_by(api, actor_id: str, source_execution_id: str) -> dict | None:
    """The COMPLETE execution of ``actor_id`` whose message was the EXECUTION_COMPLETE event of
    ``source_execution_id``, with its logs; None while there is none."""
    for item in api.result("GET", f"/actors/{actor_id}/executions")["executions"]:
        if item["status"] != "COMPLETE":
            continue
        logs = api.result("GET", f"/actors/{actor_id}/executions/{item['id']}/logs")["logs"]
        if f"'execution_id': '{source_execution_id}'" in logs:
            execution = api.result("GET", f"/actors/{actor_id}/executions/{item['id']}")
            return {**execution, "logs": logs}
    return None


def test_webhook_receives_actor_ready_and_execution_complete(api, make_actor, webhook):
    actor = make_actor(webhook=webhook.url)
    wait_for_actor_status(api, actor["id"], "READY")
    [ready] = wait_for(lambda: webhook.events(actor["id"], "ACTOR_READY"), timeout=30, what="ACTOR_READY")
    assert ready["tenant_id"] == TENANT and ready["actor_dbid"] == f"{TENANT}_{actor['id']}"
    assert ready["status_message"] == " " and ready["_abaco_link"] == "" and ready["_abaco_webhook"] == webhook.url
    assert abs(float(ready["event_time_utc"]) - time.time()) < 120 and ready["event_time_display"]
    assert ready["_abaco_Content_Type"] == "application/json" and ready["_abaco_username"] == "Abaco Event"
    assert ready["_abaco_api_server"].startswith("http")
    assert "_abaco_execution_id" not in ready  # only when a link was processed too
    execution_id = send(api, actor["id"], "hooked")
    wait_for_execution(api, actor["id"], execution_id)
    [done] = wait_for(lambda: webhook.events(actor["id"], "EXECUTION_COMPLETE"), timeout=30, what="EXECUTION_COMPLETE")
    assert done["execution_id"] == execution_id and done["status"] == "COMPLETE" and done["exit_code"] == 0
    assert webhook.received[0]["path"] == "/hook" and webhook.received[0]["content_type"] == "application/json"


def test_actor_error_event(api, make_actor, webhook):
    actor = make_actor(image="abacosamples/does-not-exist-events", webhook=webhook.url)
    wait_for_actor_status(api, actor["id"], "ERROR", timeout=30)
    [error] = wait_for(lambda: webhook.events(actor["id"], "ACTOR_ERROR"), timeout=30, what="ACTOR_ERROR")
    assert "does-not-exist-events" in error["status_message"]


@pytest.mark.slow
def test_link_chain(api, make_actor, webhook):
    """a -> b -> c: a's execution feeds b, b's feeds c; each as a JSON message from 'Abaco Event'."""
    c = make_actor()
    b = make_actor(link=c["id"])
    a = make_actor(link=b["id"], webhook=webhook.url)
    for actor in (a, b, c):
        wait_for_actor_status(api, actor["id"], "READY")
    a_execution = send(api, a["id"], "start of the chain")
    wait_for_execution(api, a["id"], a_execution)

    from_a = wait_for(lambda: execution_caused_by(api, b["id"], a_execution), timeout=60, what="b's execution")
    assert from_a["executor"] == "Abaco Event"
    event = ast.literal_eval(msg_of(from_a["logs"]))  # MSG is the Python str() of the event
    assert event["event_type"] == "EXECUTION_COMPLETE" and event["actor_id"] == a["id"]
    assert event["_abaco_link"] == f"{TENANT}_{b['id']}" and event["_abaco_webhook"] == webhook.url
    assert "_abaco_username=Abaco Event" in from_a["logs"]
    assert "_abaco_Content_Type=application/json" in from_a["logs"]
    assert f"_abaco_execution_id={from_a['id']}" in from_a["logs"]

    from_b = wait_for(lambda: execution_caused_by(api, c["id"], from_a["id"]), timeout=60, what="c's execution")
    assert from_b["executor"] == "Abaco Event"
    assert ast.literal_eval(msg_of(from_b["logs"]))["actor_id"] == b["id"]

    # the webhook of a saw the same event, with the id of the execution the link created
    [hooked] = wait_for(lambda: [e for e in webhook.events(a["id"], "EXECUTION_COMPLETE")
                                 if e["execution_id"] == a_execution], timeout=30, what="a's webhook")
    assert hooked["_abaco_execution_id"] == from_a["id"]


def test_link_cycle_is_refused(api, make_actor):
    c = make_actor()
    b = make_actor(link=c["id"])
    a = make_actor(link=b["id"])
    body = {"image": c["image"], "link": a["id"]}
    message = api.call("PUT", f"/actors/{c['id']}", json=body, expect=400)["message"]
    assert "cycle" in message
    message = api.call("PUT", f"/actors/{a['id']}", json={"image": a["image"], "link": a["id"]}, expect=400)["message"]
    assert "itself" in message


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/actors", "http://localhost:5004/metrics", "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.1/hook", "http://[::1]/hook", "ftp://example.org/hook",
])
def test_webhooks_to_internal_addresses_are_refused(jwt_api, user_name, url):
    """The JWT server runs with abaco.conf's default (no internal networks allowed); the events agent
    checks the address again when it delivers (tests/unit/test_webhooks.py)."""
    client = jwt_api(user_name("hooker"), "user")
    response = client.call("POST", "/actors", json={"image": TEST_IMAGE, "webhook": url}, expect=400)
    assert "Invalid webhook" in response["message"]
