"""Schemathesis fuzzes every operation of docs/openapi.yaml on the running server: no 5xx, ever.

Bad input gets a clear 4xx in the envelope; a 5xx is a bug. Schemathesis runs its three phases on
every operation, with valid and invalid data: the document's examples and random fuzzing, at most
``ABACO_FUZZ_EXAMPLES`` cases each (default 8), and coverage, a fixed set of boundary and invalid
values per parameter and body field (most of the requests; unsupported methods included). About
1,400 requests and a minute with the default. Most cases are aimed at real objects made for the run
(an actor, a stateful actor, an alias, a nonce, an execution, a worker) so that bodies reach the
handlers instead of stopping at a 404; the rest keep the generated identifiers.

The run works in a tenant of its own (the ``tenant`` header of ``access_control: none``), so that
it neither sees nor touches what other tests make meanwhile; everything it created there (actors,
with their workers and nonces, and aliases) is deleted at the end.
"""
from __future__ import annotations

import collections
import os
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.functional.conftest import CASE, TEST_IMAGE, Api, f, wait_for
from tests.functional.openapi_doc import for_case, load_document

pytestmark = [pytest.mark.functional, pytest.mark.fuzz, pytest.mark.slow]

FUZZ_EXAMPLES = int(os.environ.get("ABACO_FUZZ_EXAMPLES", "8"))
REQUEST_TIMEOUT = 30
TENANT = f"fuzz-{uuid.uuid4().hex[:8]}"
HEADERS = {"tenant": TENANT}

# operations whose path stays as generated: deleting the run's actor would end the aiming
KEEP_GENERATED = {("DELETE", "/actors/{actor_id}"), ("DELETE", "/actors/aliases/{alias}")}
# operations aimed at the stateful actor: its state routes, and POST workers, where a stateful actor
# caps ``num`` at one worker (a generated num of millions would otherwise start millions of workers)
STATEFUL = {("GET", "/actors/{actor_id}/state"), ("POST", "/actors/{actor_id}/state"),
            ("POST", "/actors/{actor_id}/workers")}

STATS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


def ids(api, path: str) -> set[str]:
    return {item.get("id") or item.get("alias") for item in api.result("GET", path)}


@pytest.fixture(scope="module")
def tenant_api(api) -> Api:
    """A client of the suite's server in the run's own tenant."""
    return Api(api.base_url, HEADERS)


@pytest.fixture(scope="module")
def cleanup(tenant_api):
    """Delete every actor and alias of the run's tenant that was not there before (none should be)."""
    api = tenant_api
    actors_before, aliases_before = ids(api, "/actors"), ids(api, "/actors/aliases")
    yield
    for alias in ids(api, "/actors/aliases") - aliases_before:
        api.request("DELETE", f"/actors/aliases/{alias}", expect=None)
    new_actors = ids(api, "/actors") - actors_before
    with ThreadPoolExecutor(max_workers=8) as pool:  # each delete waits for the actor's workers to stop
        list(pool.map(lambda a: api.request("DELETE", f"/actors/{a}", expect=None), new_actors))
    left = ids(api, "/actors") - actors_before
    assert not left, f"actors the fuzz run created are still there: {left}"
    total = sum(sum(c.values()) for c in STATS.values())
    print(f"\nschemathesis in tenant {TENANT}: {len(STATS)} operations and methods, {total} requests, "
          f"{len(new_actors)} actors created and deleted")
    for operation, counter in sorted(STATS.items()):
        print(f"  {operation}: {dict(sorted(counter.items()))}")


@pytest.fixture(scope="module")
def targets(tenant_api, cleanup) -> dict[str, str]:
    """Real objects for the cases to aim at."""
    api = tenant_api
    actor = api.result("POST", "/actors", json={"image": TEST_IMAGE, "name": f"fuzz-{uuid.uuid4().hex[:6]}"})
    stateful = api.result("POST", "/actors", json={"image": TEST_IMAGE, "name": "fuzz-stateful", "stateless": False})
    alias = f"fuzz-{uuid.uuid4().hex[:8]}"
    api.result("POST", "/actors/aliases", json={"alias": alias, f("actor_id"): actor["id"]})
    nonce = api.result("POST", f"/actors/{actor['id']}/nonces", json={})
    alias_nonce = api.result("POST", f"/actors/aliases/{alias}/nonces", json={})
    sent = api.result("POST", f"/actors/{actor['id']}/messages", data={"message": "fuzz"})
    workers = wait_for(lambda: api.result("GET", f"/actors/{actor['id']}/workers"), what="a worker")
    return {
        "actor_id": actor["id"], "stateful_id": stateful["id"], "alias": alias, "nonce_id": nonce["id"],
        "alias_nonce_id": alias_nonce["id"], "execution_id": sent[f("execution_id")], "worker_id": workers[0]["id"],
    }


@pytest.fixture
def fuzz_schema(api, targets):
    schema = schemathesis.openapi.from_dict(for_case(load_document(), CASE))
    schema.config.update(base_url=api.base_url)
    schema.config.generation.update(
        max_examples=FUZZ_EXAMPLES,
        modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    )
    return schema


schema = schemathesis.pytest.from_fixture("fuzz_schema")


def disarm(case) -> None:
    """Keep generated requests from reaching past this machine or from blocking: no ``webhook``
    (the events agent would POST every event of a generated actor to it) and no synchronous
    messages (they wait for their execution; test_openapi.py and the message tests cover them)."""
    if isinstance(case.body, dict):
        case.body.pop("webhook", None)
    if isinstance(case.query, dict):
        case.query.pop("webhook", None)
        case.query.pop("_abaco_synchronous", None)


def aim(case, targets: dict[str, str]) -> None:
    """Point three cases in four at the run's real objects (which ones is a hash of the case)."""
    method, path = case.method.upper(), case.operation.path
    params = case.path_parameters or {}
    if (method, path) in KEEP_GENERATED or not params:
        return
    if zlib.crc32(repr(sorted(params.items())).encode()) % 4 == 0:
        return
    on_alias = "alias" in params
    real = {
        "actor_id": targets["stateful_id"] if (method, path) in STATEFUL else targets["actor_id"],
        "alias": targets["alias"],
        "nonce_id": targets["alias_nonce_id"] if on_alias else targets["nonce_id"],
        "execution_id": targets["execution_id"],
        "worker_id": targets["worker_id"],
    }
    case.path_parameters = {name: real.get(name, value) for name, value in params.items()}


@schema.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_a_server_error(case, targets):
    disarm(case)
    aim(case, targets)
    try:
        response = case.call_and_validate(headers=HEADERS, checks=[not_a_server_error], timeout=REQUEST_TIMEOUT)
    except Exception:
        STATS[f"{case.method.upper()} {case.operation.path}"]["5xx or error"] += 1
        raise
    STATS[f"{case.method.upper()} {case.operation.path}"][response.status_code] += 1
