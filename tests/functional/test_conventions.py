"""Conventions every endpoint shares: envelope, 404s and 405s, CORS and OPTIONS
without credentials, double slashes, case, and ``show_traceback``."""
from __future__ import annotations

import uuid

import pytest

from tests.functional.conftest import CASE, TEST_IMAGE, f, wait_for_actor_status

INVALID = "Invalid endpoint or method combination."
ORIGIN = "http://client.example.org"


@pytest.fixture(scope="module")
def actor(api):
    record = api.result("POST", "/actors", json={"image": TEST_IMAGE, "name": f"conventions-{uuid.uuid4().hex[:6]}"})
    yield record
    api.request("DELETE", f"/actors/{record['id']}", expect=None)


def every_route(actor_id: str) -> list[tuple[str, str]]:
    """(method, path) of every route of the 2019 surface that this engineer's apps serve."""
    a, e, w = f"/actors/{actor_id}", "NolBaJ5y6714M", "NolBaJ5y6714M"
    return [
        ("GET", "/actors"), ("POST", "/actors"), ("GET", "/actors/utilization"),
        ("GET", a), ("PUT", a), ("DELETE", a), ("GET", f"{a}/state"), ("POST", f"{a}/state"),
        ("GET", f"{a}/messages"), ("POST", f"{a}/messages"), ("DELETE", f"{a}/messages"),
        ("GET", f"{a}/executions"), ("POST", f"{a}/executions"), ("GET", f"{a}/executions/{e}"),
        ("DELETE", f"{a}/executions/{e}"), ("GET", f"{a}/executions/{e}/logs"),
        ("GET", f"{a}/executions/{e}/results"), ("GET", f"{a}/workers"), ("POST", f"{a}/workers"),
        ("GET", f"{a}/workers/{w}"), ("DELETE", f"{a}/workers/{w}"), ("GET", "/actors/admin"),
        ("GET", "/actors/admin/workers"), ("GET", "/actors/admin/executions"), ("GET", "/admin/dashboard"),
    ]


def test_error_envelope(api):
    body = api.call("GET", "/actors/NolBaJ5y6714M", expect=404)
    assert body["result"] is None and body["status"] == "error" and isinstance(body["version"], str)


@pytest.mark.parametrize("method, suffix", [
    ("PATCH", ""), ("PUT", ""), ("DELETE", ""),  # on /actors
    ("POST", "/{id}"), ("PATCH", "/{id}"), ("DELETE", "/{id}/state"), ("PUT", "/{id}/messages"),
    ("POST", "/{id}/executions/x/logs"), ("PUT", "/{id}/workers"), ("POST", "/utilization"),
])
def test_wrong_methods_are_405(api, actor, method, suffix):
    path = "/actors" + suffix.replace("{id}", actor["id"])
    assert api.call(method, path, expect=405)["message"] == INVALID


@pytest.mark.parametrize("suffix", [
    "/{id}/nothing", "/{id}/executions/x/logs/more", "/{id}/messages/extra", "/admin/nothing", "/{id}/workers/x/y",
])
def test_unknown_paths_are_404_envelopes(api, actor, suffix):
    """Upstream answered 405 for a path no route serves, as if only the method were wrong."""
    body = api.call("GET", "/actors" + suffix.replace("{id}", actor["id"]), expect=404)
    assert body["result"] is None and "Invalid endpoint" in body["message"]
    assert api.call("GET", "/nothing/here", expect=404)["status"] == "error"


def test_unknown_paths_are_404_even_without_credentials(no_credentials, actor):
    assert no_credentials.call("GET", f"/actors/{actor['id']}/nothing", expect=404)["status"] == "error"
    assert no_credentials.call("PATCH", "/actors", expect=405)["message"] == INVALID


def test_metrics_are_not_served_on_the_public_port(api):
    """/metrics names every actor and tenant without authentication: only its own listener serves it
    ([web] metrics_address), which Prometheus scrapes directly (item 9)."""
    import os

    import requests

    assert api.call("GET", "/metrics", expect=404)["status"] == "error"
    address = os.environ.get("ABACO_METRICS_ADDRESS", "127.0.0.1:5004")
    response = requests.get(f"http://{address}/metrics", timeout=30)
    assert response.status_code == 200 and "abaco_actor_messages" in response.text


def test_a_json_body_without_its_content_type_is_explained(api):
    """curl -d '{...}' sends a form: say that the body was not read as JSON, not that image is missing."""
    for content_type in ("application/x-www-form-urlencoded", "text/plain", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = api.request("POST", "/actors", expect=None, data=b'{"image": "abacosamples/test"}', headers=headers)
        body = response.json()
        assert response.status_code == 400 and "Content-Type" in body["message"], body
        assert "Missing required field" not in body["message"]


def test_options_answers_200_without_credentials_on_every_route(no_credentials, actor):
    for method, path in every_route(actor["id"]):
        response = no_credentials.request("OPTIONS", path, expect=200, headers={"Origin": ORIGIN})
        assert response.headers.get("Access-Control-Allow-Origin") in (ORIGIN, "*"), path
        assert method in response.headers.get("Allow", ""), (method, path)
    no_credentials.call("GET", "/actors", expect=400)  # the same routes need credentials otherwise


def test_cors_preflight_allows_the_method_and_headers(no_credentials, actor):
    response = no_credentials.request("OPTIONS", f"/actors/{actor['id']}", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "X-Jwt-Assertion-Sd2e, Content-Type",
    })
    assert response.headers["Access-Control-Allow-Origin"] in (ORIGIN, "*")
    assert "PUT" in response.headers["Access-Control-Allow-Methods"]
    assert "x-jwt-assertion-sd2e" in response.headers["Access-Control-Allow-Headers"].lower()


def test_cors_headers_on_success_and_error_responses(api, actor):
    for path, expect in ((f"/actors/{actor['id']}", 200), ("/actors/NolBaJ5y6714M", 404), ("/actors/x/y/z", 404)):
        response = api.request("GET", path, expect=expect, headers={"Origin": ORIGIN})
        assert response.headers.get("Access-Control-Allow-Origin") in (ORIGIN, "*"), path


def test_double_slashes_route_like_single_ones(api, actor):
    assert api.result("GET", f"//actors/{actor['id']}")["id"] == actor["id"]
    assert isinstance(api.result("GET", "//actors"), list)
    assert api.result("GET", f"//actors//{actor['id']}//messages")["messages"] >= 0
    assert isinstance(api.result("GET", f"//actors/{actor['id']}//workers"), list)


def test_trailing_slash_is_accepted(api, actor):
    assert api.result("GET", f"/actors/{actor['id']}/")["id"] == actor["id"]


def test_output_keys_follow_the_case_setting(api, actor):
    ready = wait_for_actor_status(api, actor["id"], "READY")
    multi_word = ("default_environment", "status_message", "create_time", "last_update_time", "use_container_uid")
    for name in multi_word:
        assert f(name) in ready
    other = {"snake": "defaultEnvironment", "camel": "default_environment"}[CASE]
    assert other not in ready
    assert "_links" in ready  # never converted


# -- show_traceback (an app built like the service's, in this process) ---------------------------
@pytest.fixture
def failing_app(monkeypatch):
    from actors.responses import new_app

    app = new_app("failing")

    @app.route("/boom")
    def boom():
        raise RuntimeError("boom")

    return app


def test_unexpected_errors_are_500_envelopes(failing_app, monkeypatch):
    monkeypatch.setenv("web_show_traceback", "false")
    response = failing_app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.json["message"] == "Unrecognized exception type: RuntimeError. Exception: boom"
    assert response.json["status"] == "error"


def test_show_traceback_answers_with_the_traceback(failing_app, monkeypatch):
    monkeypatch.setenv("web_show_traceback", "true")
    response = failing_app.test_client().get("/boom")
    assert response.status_code == 500 and response.mimetype == "text/plain"
    assert "Traceback" in response.text and "RuntimeError: boom" in response.text
