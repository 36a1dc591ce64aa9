"""Fixtures for functional tests: they talk HTTP to the stack `make up` started."""
from __future__ import annotations

import collections
import inspect
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import docker
import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

ROOT = Path(__file__).resolve().parents[2]
# `base_url` and `case` are the names upstream's testsuite image reads (Dockerfile-test)
BASE_URL = (os.environ.get("ABACO_BASE_URL") or os.environ.get("base_url") or "http://127.0.0.1:8000").rstrip("/")
TEST_IMAGE = os.environ.get("ABACO_TEST_IMAGE", "abacosamples/test")
TENANT = os.environ.get("ABACO_TEST_TENANT", "dev_staging")
# The case the stack at BASE_URL serves: `case` says so (upstream: the stack was configured for it).
STACK_CASE = os.environ.get("case") or os.environ.get("ABACO_TEST_STACK_CASE", "snake")
# The suite runs once per case: ABACO_TEST_CASE=camel against a snake stack starts a camel-case server.
CASE = os.environ.get("ABACO_TEST_CASE") or STACK_CASE
# The stack's configuration, for the tests that start servers or agents of their own beside it or
# read its stores: $ABACO_CONF, else the repository's local-dev.conf, else /etc/service.conf (where
# the testsuite image gets it mounted). None: only the tests that talk HTTP to BASE_URL run.
STACK_CONF = next((p for p in (os.environ.get("ABACO_CONF"), str(ROOT / "local-dev.conf"), "/etc/service.conf")
                   if p and os.path.isfile(p)), None)
NEEDS_STACK_FIXTURES = {"jwt_server", "docker_client"}
# BASE_URL is nginx (the testsuite image says so): /admin/dashboard, which nginx does not route (as
# upstream's did not), is asked of the admin app at ABACO_TEST_ADMIN_URL, or skipped without it.
ADMIN_URL = os.environ.get("ABACO_TEST_ADMIN_URL")
BEHIND_NGINX = bool(ADMIN_URL) or os.environ.get("ABACO_TEST_BEHIND_NGINX") == "1"
NO_STACK_CONF = "needs the stack's configuration (mount it at /etc/service.conf or set ABACO_CONF)"
# Ports of the extra servers the suite starts; set them when two test sessions share a machine.
JWT_PORT = int(os.environ.get("ABACO_TEST_JWT_PORT", "8011"))
CAMEL_PORT = int(os.environ.get("ABACO_TEST_CAMEL_PORT", "8012"))


def f(name: str) -> str:
    """A field name as the server under test spells it (``max_workers`` or ``maxWorkers``)."""
    if CASE != "camel" or name.startswith("_"):
        return name
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def pytest_collection_modifyitems(items):
    for item in items:
        if "/functional/" in str(item.fspath):
            item.add_marker(pytest.mark.functional)
            if STACK_CONF is None and needs_the_stack_host(item):
                item.add_marker(pytest.mark.skip(reason=NO_STACK_CONF))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Without the stack's configuration, a test that reached for it anyway (a fixture that starts a
    server, an import inside the test) is skipped, not failed."""
    outcome = yield
    report = outcome.get_result()
    if STACK_CONF is None and call.excinfo is not None and call.excinfo.typename == "ConfigError":
        report.outcome = "skipped"
        report.longrepr = (str(item.fspath), item.location[1], f"Skipped: {NO_STACK_CONF}")


def needs_the_stack_host(item) -> bool:
    """Whether a test starts servers or agents of its own, reads the stores or drives Docker: it
    uses such a fixture, or its module holds something of the actors package or of stacks.py."""
    if NEEDS_STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    names = vars(item.module).values() if getattr(item, "module", None) else ()
    return any((getattr(v, "__name__", "") if inspect.ismodule(v) else getattr(v, "__module__", "") or "")
               .startswith(("actors", "tests.functional.stacks")) for v in names)


class Api:
    """A thin client that checks the response envelope on every call."""

    def __init__(self, base_url: str, headers: dict | None = None):
        self.base_url = base_url
        self.user: str | None = None  # the user a JWT client authenticates as
        self.session = requests.Session()
        self.session.headers.update(headers or {})
        # a request sent on a kept-alive connection just as gunicorn closes it (its keep-alive is 2 s)
        # fails with RemoteDisconnected; idempotent methods are sent again, as clients do
        retry = Retry(total=2, connect=2, read=2, status=0, backoff_factor=0.1, raise_on_status=False)
        self.session.mount("http://", HTTPAdapter(max_retries=retry))

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
    try:
        requests.get(BASE_URL + "/actors", timeout=5)
    except requests.ConnectionError:
        pytest.fail(f"The Abaco stack is not answering at {BASE_URL}; start it with `make up`.")
    if CASE == STACK_CASE:
        yield Api(BASE_URL)
        return
    from tests.functional.stacks import WebServer

    server = WebServer(CAMEL_PORT, {"web_case": CASE})
    yield Api(server.base_url)
    server.stop()


@pytest.fixture(scope="session")
def jwt_signer():
    from tests.functional.stacks import JwtSigner

    return JwtSigner()


@pytest.fixture(scope="session")
def jwt_server(api, jwt_signer):
    """A web server with ``access_control: jwt`` verifying this session's key (port 8011), in the
    suite's case mode."""
    from tests.functional.stacks import WebServer

    server = WebServer(JWT_PORT, {
        "web_case": CASE,
        "web_access_control": "jwt",
        "web_apim_public_key": jwt_signer.public_key_b64,
        "web_user_role": "Internal/abaco-user",
        # as abaco.conf: webhooks may not call internal addresses (the main stack allows loopback)
        "events_webhook_allowed_networks": "",
    })
    yield server
    server.stop()


@pytest.fixture
def jwt_api(jwt_server, jwt_signer):
    """``jwt_api("alice", "user")`` -> an Api authenticated as alice with the given role."""

    def make(user: str, role: str = "user", tenant: str = "DEV-DEVELOP") -> Api:
        client = Api(jwt_server.base_url, jwt_signer.headers(user, role, tenant))
        client.user = user
        return client

    return make


@pytest.fixture(scope="session")
def docker_client():
    return docker.DockerClient(base_url=os.environ.get("DOCKER_HOST", "unix://var/run/docker.sock"), version="auto")


class ContainerRuns:
    """Counts, from Docker's own event stream, how often each execution's actor container started
    and exited successfully: the outside view of "no execution runs twice"."""

    def __init__(self, docker_client, dbid: str):
        self.starts: collections.Counter[str] = collections.Counter()
        self.successes: collections.Counter[str] = collections.Counter()
        self.stream = docker_client.events(decode=True, filters={
            "type": "container", "event": ["start", "die"], "label": f"org.abaco.actor={dbid}"})
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self) -> None:
        try:
            for event in self.stream:
                attributes = event.get("Actor", {}).get("Attributes", {})
                if attributes.get("org.abaco.role") != "actor":
                    continue
                execution_id = attributes.get("org.abaco.execution", "")
                if event.get("status") == "start" or event.get("Action") == "start":
                    self.starts[execution_id] += 1
                elif attributes.get("exitCode") == "0":
                    self.successes[execution_id] += 1
        except Exception:
            pass  # closed at the end of the test

    def close(self) -> None:
        self.stream.close()


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


@pytest.fixture
def user_name():
    """``user_name("alice")`` -> a user name no other test (or test session) uses, e.g. ``alice-3f9a1c``."""
    return lambda base: f"{base}-{uuid.uuid4().hex[:6]}"


# Users of the JWT server, each with a name of its own per test: owners, other users, an admin.
@pytest.fixture
def alice(jwt_api, user_name) -> Api:
    return jwt_api(user_name("alice"), "user")


@pytest.fixture
def bob(jwt_api, user_name) -> Api:
    return jwt_api(user_name("bob"), "user")


@pytest.fixture
def carol(jwt_api, user_name) -> Api:
    return jwt_api(user_name("carol"), "limited")


@pytest.fixture
def admin(jwt_api, user_name) -> Api:
    return jwt_api(user_name("root"), "admin")


@pytest.fixture
def no_credentials(jwt_server) -> Api:
    """A client of the JWT server that sends no JWT (for nonces and missing-credential checks)."""
    return Api(jwt_server.base_url)


@pytest.fixture
def jwt_actor():
    """``jwt_actor(owner_api, **fields)`` registers an actor as that client; deleted afterwards."""
    created: list[tuple[Api, str]] = []

    def make(owner: Api, **fields) -> dict:
        body = {"image": TEST_IMAGE, "name": f"test-{uuid.uuid4().hex[:8]}", **fields}
        actor = owner.result("POST", "/actors", json=body)
        created.append((owner, actor["id"]))
        return actor

    yield make
    for owner, actor_id in created:
        owner.request("DELETE", f"/actors/{actor_id}", expect=None)


@pytest.fixture
def jwt_alias():
    """``jwt_alias(owner_api, actor_id)`` creates a unique alias as that client; deleted afterwards."""
    created: list[tuple[Api, str]] = []

    def make(owner: Api, actor_id: str, alias: str | None = None) -> dict:
        alias = alias or f"alias-{uuid.uuid4().hex[:10]}"
        record = owner.result("POST", "/actors/aliases", json={"alias": alias, f("actor_id"): actor_id})
        created.append((owner, alias))
        return record

    yield make
    for owner, alias in created:
        owner.request("DELETE", f"/actors/aliases/{alias}", expect=None)
