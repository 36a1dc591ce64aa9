"""Fixtures for functional tests: they talk HTTP to the stack `make up` started."""
from __future__ import annotations

import os
import time
import uuid
from typing import Any, Callable

import docker
import pytest
import requests

BASE_URL = os.environ.get("ABACO_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
TEST_IMAGE = os.environ.get("ABACO_TEST_IMAGE", "abacosamples/test")
TENANT = os.environ.get("ABACO_TEST_TENANT", "dev_staging")


def pytest_collection_modifyitems(items):
    for item in items:
        if "/functional/" in str(item.fspath):
            item.add_marker(pytest.mark.functional)


class Api:
    """A thin client that checks the response envelope on every call."""

    def __init__(self, base_url: str, headers: dict | None = None):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers.update(headers or {})

    def request(self, method: str, path: str, expect: int | None = 200, **kwargs) -> requests.Response:
        response = self.session.request(method, self.base_url + path, timeout=60, **kwargs)
        if expect is not None:
            assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response

    def call(self, method: str, path: str, expect: int = 200, **kwargs) -> dict:
        body = self.request(method, path, expect=expect, **kwargs).json()
        assert set(body) == {"result", "status", "message", "version"}, body
        assert body["status"] == ("success" if expect == 200 else "error"), body
        return body

    def result(self, method: str, path: str, **kwargs) -> Any:
        return self.call(method, path, **kwargs)["result"]


def wait_for(predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


@pytest.fixture(scope="session")
def api() -> Api:
    client = Api(BASE_URL)
    try:
        requests.get(BASE_URL + "/actors", timeout=5)
    except requests.ConnectionError:
        pytest.fail(f"The Abaco stack is not answering at {BASE_URL}; start it with `make up`.")
    return client


@pytest.fixture(scope="session")
def docker_client():
    return docker.DockerClient(base_url="unix://var/run/docker.sock", version="auto")


@pytest.fixture
def make_actor(api: Api):
    """Register actors for a test and delete whatever is left of them afterwards."""
    created: list[str] = []

    def make(**fields) -> dict:
        body = {"image": TEST_IMAGE, "name": f"test-{uuid.uuid4().hex[:8]}", **fields}
        actor = api.result("POST", "/actors", json=body)
        created.append(actor["id"])
        return actor

    yield make
    for actor_id in created:
        api.request("DELETE", f"/actors/{actor_id}", expect=None)


def wait_for_actor_status(api: Api, actor_id: str, status: str, timeout: float = 60) -> dict:
    return wait_for(
        lambda: (a := api.result("GET", f"/actors/{actor_id}")) and a["status"] == status and a,
        timeout=timeout,
        what=f"actor {actor_id} to be {status}",
    )


def wait_for_execution(api: Api, actor_id: str, execution_id: str, status: str = "COMPLETE", timeout: float = 60) -> dict:
    return wait_for(
        lambda: (e := api.result("GET", f"/actors/{actor_id}/executions/{execution_id}")) and e["status"] == status and e,
        timeout=timeout,
        what=f"execution {execution_id} to be {status}",
    )
