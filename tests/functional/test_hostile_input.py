"""Hostile input: each gets a clear 4xx in the envelope, never a 5xx, and nothing is written half."""
from __future__ import annotations

import http.client
import json
import urllib.parse
import uuid

import pytest
import requests

from tests.functional.conftest import f


def assert_client_error(response: requests.Response, *statuses: int) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if statuses:
        assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.json()
    assert body["status"] == "error" and body["result"] is None and body["message"], body
    return body


def actor_count(api) -> int:
    return len(api.result("GET", "/actors"))


@pytest.fixture(scope="module")
def actor(api):
    created = api.result("POST", "/actors", json={"image": "abacosamples/test", "name": "hostile"})
    yield created
    api.request("DELETE", f"/actors/{created['id']}", expect=None)


@pytest.mark.parametrize("body, content_type", [
    (b'{"image": "abacosamples/test",', "application/json"),  # truncated JSON
    (b'["abacosamples/test"]', "application/json"),  # JSON that is not an object
    (b'"just a string"', "application/json"),
    (b'{"image": "abacosamples/\xff\xfe"}', "application/json"),  # invalid UTF-8
    (b'image=abacosamples%2Ftest&stateless=maybe', "application/x-www-form-urlencoded"),
    (f"image=abacosamples/test&{f('max_workers')}=lots".encode(), "application/x-www-form-urlencoded"),
    (f'{{"image": "abacosamples/test", "{f("default_environment")}": "not an object"}}'.encode(), "application/json"),
    (b'{"image": null}', "application/json"),
    (b'{"image": ""}', "application/json"),
    (b'{"image": "bad image name!"}', "application/json"),
    (b'{"image": "UPPER CASE"}', "application/json"),
    (b'{"image": "a::b"}', "application/json"),
    (b'{"image": "' + b"x" * 400 + b'"}', "application/json"),
    (b'{"image": "abacosamples/test", "hints": ["{bad}"]}', "application/json"),
    (b'{"image": "abacosamples/test", "queue": "../../etc"}', "application/json"),
    # not JSON, though Python's parser takes them (each was a 500, found while fuzzing docs/openapi.yaml)
    (b'{"image": "abacosamples/test", "max_workers": Infinity}', "application/json"),
    (b'{"image": "abacosamples/test", "max_cpus": NaN}', "application/json"),
    (b'{"image": "abacosamples/test", "max_cpus": 1e400}', "application/json"),  # a float out of range
    (b'{"image": "abacosamples/test", "default_environment": {"k": -Infinity}}', "application/json"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "application/json", id="nested-too-deep"),
])
def test_bad_actor_bodies_are_refused_and_write_nothing(api, body, content_type):
    before = actor_count(api)
    response = api.request("POST", "/actors", expect=None, data=body, headers={"Content-Type": content_type})
    assert_client_error(response, 400)
    assert actor_count(api) == before


@pytest.mark.parametrize("identifier", [
    "nothere", "x" * 1000, "%00", "%2e%2e", "%F0%9F%92%A9", "Ω", "a b", "12345678901234567890",
])
def test_invalid_ids_are_not_found(api, identifier):
    response = api.request("GET", f"/actors/{identifier}", expect=None)
    assert_client_error(response, 400, 404)


def test_invalid_execution_and_worker_ids(api, actor):
    for path in (f"/actors/{actor['id']}/executions/nothere", f"/actors/{actor['id']}/executions/%00/logs",
                 f"/actors/{actor['id']}/workers/nothere", f"/actors/{actor['id']}/nonces/bogus_id"):
        assert_client_error(api.request("GET", path, expect=None), 400, 404)


@pytest.mark.parametrize("body, headers", [
    (b"{not json", {"Content-Type": "application/json"}),
    (b"\xff\xfe\xfd", {"Content-Type": "text/plain"}),
    (b"", {"Content-Type": "application/json"}),
    (b'{"x": NaN}', {"Content-Type": "application/json"}),
    (b"[Infinity]", {"Content-Type": "text/plain"}),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, {"Content-Type": "application/json"}, id="nested-too-deep-json"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, {"Content-Type": "text/plain"}, id="nested-too-deep-text"),
])
def test_bad_message_bodies(api, actor, body, headers):
    before = api.result("GET", f"/actors/{actor['id']}/executions")[f("total_executions")]
    response = api.request("POST", f"/actors/{actor['id']}/messages", expect=None, data=body, headers=headers)
    assert_client_error(response, 400)
    assert api.result("GET", f"/actors/{actor['id']}/executions")[f("total_executions")] == before


@pytest.mark.parametrize("body", [
    b'{"num": Infinity}', b'{"max_uses": NaN}', b'{"count": 1e999}', b'{"user": "bob", "level": NaN}',
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-too-deep"),
])
def test_non_standard_json_is_a_client_error_everywhere(api, body):
    """Found by fuzzing (500s): NaN/Infinity, floats out of range and too deep nesting are refused as
    invalid JSON on every endpoint that reads a JSON body, and nothing of them is stored."""
    stateful = api.result("POST", "/actors", json={"image": "abacosamples/test", "stateless": False})
    try:
        for suffix in ("workers", "nonces", "state", "permissions", "executions"):
            response = api.request("POST", f"/actors/{stateful['id']}/{suffix}", expect=None, data=body,
                                   headers={"Content-Type": "application/json"})
            assert "not valid JSON" in assert_client_error(response, 400)["message"], suffix
        assert api.result("GET", f"/actors/{stateful['id']}/state") == {"state": {}}
        assert api.result("GET", f"/actors/{stateful['id']}/nonces") == []
    finally:
        api.request("DELETE", f"/actors/{stateful['id']}", expect=None)


def raw_post(api, path: str, headers: dict, body: bytes) -> tuple[int, dict]:
    """A POST whose headers are sent exactly as given (requests would fix Content-Length)."""
    url = urllib.parse.urlsplit(api.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    connection.putrequest("POST", path)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    connection.send(body)
    response = connection.getresponse()
    status, payload = response.status, json.loads(response.read() or b"null")
    connection.close()
    return status, payload


def test_binary_message_without_a_valid_length_is_refused(api, actor):
    status, body = raw_post(api, f"/actors/{actor['id']}/messages",
                            {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"}, b"0\r\n\r\n")
    assert status == 400 and body["status"] == "error", body


def test_binary_message_over_the_limit_is_refused_before_reading_it(api, actor):
    # a Content-Length above max_content_length (500 MB in local-dev) is refused from the header alone
    status, body = raw_post(api, f"/actors/{actor['id']}/messages",
                            {"Content-Type": "application/octet-stream", "Content-Length": "600000000"}, b"x" * 10)
    assert status in (400, 413) and body["status"] == "error", body


def test_large_header_within_limits_works(api):
    response = api.request("GET", "/actors", expect=None, headers={"X-Padding": "p" * 16000})
    assert response.status_code == 200


def test_huge_header_is_a_client_error(api):
    response = requests.get(f"{api.base_url}/actors", headers={"X-Padding": "p" * 200_000}, timeout=30)
    assert 400 <= response.status_code < 500


def test_alias_with_path_characters_is_refused(api, actor):
    for alias in ("../etc", "a/b", "x?y", "semi;colon"):
        response = api.request("POST", "/actors/aliases", expect=None,
                               json={"alias": alias, f("actor_id"): actor["id"]})
        assert_client_error(response, 400)


def test_permission_body_with_bad_level_writes_nothing(api, actor):
    before = api.result("GET", f"/actors/{actor['id']}/permissions")
    response = api.request("POST", f"/actors/{actor['id']}/permissions", expect=None,
                           json={"user": f"u{uuid.uuid4().hex[:6]}", "level": "GOD"})
    assert_client_error(response, 400)
    assert api.result("GET", f"/actors/{actor['id']}/permissions") == before


def test_asking_for_more_workers_than_a_host_runs_is_refused(api, actor):
    before = len(api.result("GET", f"/actors/{actor['id']}/workers"))
    response = api.request("POST", f"/actors/{actor['id']}/workers", expect=None, json={"num": 1_000_000})
    assert_client_error(response, 400)
    assert len(api.result("GET", f"/actors/{actor['id']}/workers")) == before
