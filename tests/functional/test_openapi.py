"""docs/openapi.yaml is kept true: real responses of the main flows validate against it.

Each request below goes to the running server and its response is checked against the document's
schema for that path, method and status (tests/functional/openapi_doc.py): the status must be listed,
the content type documented, and the JSON body must match, with every documented object closed, so
an undocumented field fails as well as a missing or mistyped one.

In camel case (ABACO_TEST_CASE=camel) the same flows run against the camel-case server and are
validated against the document with camelised property names (the schemas marked ``x-abaco-case``;
``model`` objects then omit null fields, as the server does).
"""
from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from tests.functional.conftest import CASE, TENANT, TEST_IMAGE, f, wait_for, wait_for_execution
from tests.functional.openapi_doc import METHODS, ROOT, Contract, for_case, load_document

UNKNOWN_HASHID = "NolBaJ5y6714M"  # a well-formed actor id that no actor has


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract(for_case(load_document(), CASE))


class Checked:
    """Sends a request to a path template of the document and validates the response against it."""

    def __init__(self, api, contract: Contract):
        self.api = api
        self.contract = contract

    def __call__(self, method: str, template: str, expect: int = 200, params: dict | None = None,
                 query: dict | None = None, **kwargs) -> Any:
        response = self.api.request(method, template.format(**(params or {})), expect=expect, params=query, **kwargs)
        return self.contract.check(response, template, method)

    def result(self, method: str, template: str, **kwargs) -> Any:
        return self(method, template, **kwargs)["result"]


@pytest.fixture(scope="module")
def checked(api, contract) -> Checked:
    return Checked(api, contract)


@pytest.fixture(scope="module")
def created(api):
    """Actors and aliases the module made; deleted at the end."""
    things: dict[str, list[str]] = {"actors": [], "aliases": []}
    yield things
    for alias in things["aliases"]:
        api.request("DELETE", f"/actors/aliases/{alias}", expect=None)
    for actor_id in things["actors"]:
        api.request("DELETE", f"/actors/{actor_id}", expect=None)


@pytest.fixture(scope="module")
def actor(checked, created) -> dict:
    record = checked.result("POST", "/actors", json={
        "image": TEST_IMAGE, "name": f"openapi-{uuid.uuid4().hex[:6]}", f("default_environment"): {"k": "v"},
    })
    created["actors"].append(record["id"])
    return record


# -- the document ---------------------------------------------------------------------------------
def test_document_is_valid_openapi():
    document = load_document()  # raises unless it is a valid OpenAPI 3.0 document
    assert document["openapi"] == "3.0.3"
    schemes = document["components"]["securitySchemes"]
    assert schemes["jwt"] == {**schemes["jwt"], "type": "apiKey", "in": "header", "name": "X-Jwt-Assertion-DEV-DEVELOP"}
    assert schemes["nonce"] == {**schemes["nonce"], "type": "apiKey", "in": "query", "name": "x-nonce"}


def test_document_describes_every_route_and_only_them():
    """Every route the apps serve (but /metrics and /admin/dashboard) is documented, and nothing else."""
    os.environ.setdefault("ABACO_CONF", str(ROOT / "local-dev.conf"))
    from actors import admin_api, message_api, permissions_api, reg_api

    served = set()
    for app in (reg_api.app, message_api.app, admin_api.app, permissions_api.app):
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static" or rule.rule == "/admin/dashboard":
                continue
            path = rule.rule.replace("<", "{").replace(">", "}")
            served |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {
        (path, method) for path, item in load_document()["paths"].items() for method in item if method in METHODS
    }
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


# -- actors, messages, executions -----------------------------------------------------------------
def test_actor_lifecycle_responses_match(checked, api, actor, created):
    actor_id = actor["id"]
    ids = {"actor_id": actor_id}
    assert actor_id in [a["id"] for a in checked.result("GET", "/actors")]
    checked("GET", "/actors/{actor_id}", params=ids)
    updated = checked.result("PUT", "/actors/{actor_id}", params=ids, json={
        "image": TEST_IMAGE, "description": "updated", f("default_environment"): {"k": "v"},
    })
    assert updated["description"] == "updated"

    form_actor = checked.result("POST", "/actors", data={"image": TEST_IMAGE, "name": "openapi-form", "hints": ["a", "b"]})
    created["actors"].append(form_actor["id"])
    assert form_actor["hints"] == ["a", "b"]
    checked.result("PUT", "/actors/{actor_id}", params={"actor_id": form_actor["id"]},
                   data={"image": TEST_IMAGE, "force": "true"})
    checked("DELETE", "/actors/{actor_id}", params={"actor_id": form_actor["id"]})
    created["actors"].remove(form_actor["id"])


def test_message_and_execution_responses_match(checked, api, actor):
    ids = {"actor_id": actor["id"]}
    sent = checked.result("POST", "/actors/{actor_id}/messages", params=ids, data={"message": "hello openapi"})
    json_sent = checked.result("POST", "/actors/{actor_id}/messages", params=ids, json={"key": "value"})
    execution_id = sent[f("execution_id")]
    execution_ids = {**ids, "execution_id": execution_id}

    submitted = checked.result("GET", "/actors/{actor_id}/executions/{execution_id}",
                               params={**ids, "execution_id": json_sent[f("execution_id")]})
    assert submitted["status"] in ("SUBMITTED", "RUNNING", "COMPLETE")
    checked("GET", "/actors/{actor_id}/messages", params=ids)

    wait_for_execution(api, actor["id"], execution_id)
    wait_for_execution(api, actor["id"], json_sent[f("execution_id")])
    complete = checked.result("GET", "/actors/{actor_id}/executions/{execution_id}", params=execution_ids)
    assert complete["status"] == "COMPLETE" and complete[f("final_state")]
    logs = checked.result("GET", "/actors/{actor_id}/executions/{execution_id}/logs", params=execution_ids)
    assert "hello openapi" in logs["logs"]
    summary = checked.result("GET", "/actors/{actor_id}/executions", params=ids)
    assert {execution_id, json_sent[f("execution_id")]} <= {e["id"] for e in summary["executions"]}
    assert checked("GET", "/actors/{actor_id}/executions/{execution_id}/results", params=execution_ids) == b""
    purged = checked.result("DELETE", "/actors/{actor_id}/messages", params=ids)
    assert purged["msg"] == "Actor mailbox purged."

    # synchronous: no envelope; abacosamples/test sends no result, so the answer is its logs
    logs_text = checked("POST", "/actors/{actor_id}/messages", params=ids,
                        data={"message": "hello sync"}, query={"_abaco_synchronous": "true"})
    assert b"hello sync" in logs_text


def test_state_responses_match(checked, created):
    stateful = checked.result("POST", "/actors", json={"image": TEST_IMAGE, "stateless": False})
    created["actors"].append(stateful["id"])
    ids = {"actor_id": stateful["id"]}
    assert checked.result("GET", "/actors/{actor_id}/state", params=ids) == {"state": {}}
    assert checked.result("POST", "/actors/{actor_id}/state", params=ids, json={"count": 1})["state"] == {"count": 1}
    assert checked.result("GET", "/actors/{actor_id}/state", params=ids) == {"state": {"count": 1}}
    checked.result("POST", "/actors/{actor_id}/state", params=ids, json=["a", "list"])


# -- nonces, aliases, permissions -----------------------------------------------------------------
def test_nonce_alias_and_permission_responses_match(checked, actor, created):
    ids = {"actor_id": actor["id"]}
    nonce = checked.result("POST", "/actors/{actor_id}/nonces", params=ids,
                           json={"level": "READ", f("max_uses"): 3, "description": "openapi"})
    form_nonce = checked.result("POST", "/actors/{actor_id}/nonces", params=ids, data={"level": "EXECUTE"})
    assert {nonce["id"], form_nonce["id"]} <= {n["id"] for n in checked.result("GET", "/actors/{actor_id}/nonces", params=ids)}
    checked("GET", "/actors/{actor_id}/nonces/{nonce_id}", params={**ids, "nonce_id": nonce["id"]})
    checked("DELETE", "/actors/{actor_id}/nonces/{nonce_id}", params={**ids, "nonce_id": nonce["id"]})

    alias = f"openapi-{uuid.uuid4().hex[:8]}"
    record = checked.result("POST", "/actors/aliases", json={"alias": alias, f("actor_id"): actor["id"]})
    created["aliases"].append(alias)
    assert record["alias"] == alias
    assert alias in [a["alias"] for a in checked.result("GET", "/actors/aliases")]
    names = {"alias": alias}
    checked("GET", "/actors/aliases/{alias}", params=names)
    alias_nonce = checked.result("POST", "/actors/aliases/{alias}/nonces", params=names, json={})
    assert alias_nonce[f("actor_id")] is None if CASE != "camel" else f("actor_id") not in alias_nonce
    checked("GET", "/actors/aliases/{alias}/nonces", params=names)
    checked("GET", "/actors/aliases/{alias}/nonces/{nonce_id}", params={**names, "nonce_id": alias_nonce["id"]})
    checked("DELETE", "/actors/aliases/{alias}/nonces/{nonce_id}", params={**names, "nonce_id": alias_nonce["id"]})
    checked("GET", "/actors/{actor_id}", params={"actor_id": alias})  # an alias stands for the actor

    checked("GET", "/actors/{actor_id}/permissions", params=ids)
    granted = checked.result("POST", "/actors/{actor_id}/permissions", params=ids, json={"user": "bob", "level": "READ"})
    assert granted["bob"] == "READ"
    checked("GET", "/actors/aliases/{alias}/permissions", params=names)
    checked("POST", "/actors/aliases/{alias}/permissions", params=names, data={"user": "bob", "level": "READ"})
    checked("DELETE", "/actors/aliases/{alias}", params=names)
    created["aliases"].remove(alias)


# -- workers, admin, utilization ------------------------------------------------------------------
def test_worker_admin_and_utilization_responses_match(checked, api, actor):
    ids = {"actor_id": actor["id"]}
    workers = wait_for(lambda: checked.result("GET", "/actors/{actor_id}/workers", params=ids), what="a worker")
    checked("GET", "/actors/{actor_id}/workers/{worker_id}", params={**ids, "worker_id": workers[0]["id"]})
    checked("POST", "/actors/{actor_id}/workers", params=ids, json={"num": 1})
    checked("DELETE", "/actors/{actor_id}/workers/{worker_id}", params={**ids, "worker_id": workers[0]["id"]})

    assert actor["id"] in [a["id"] for a in checked.result("GET", "/actors/admin")]
    assert set(checked.result("GET", "/actors/admin/workers")) == {"summary", "workers"}
    assert set(checked.result("GET", "/actors/admin/executions")) == {"summary", "actors"}
    assert checked.result("GET", "/actors/utilization")["currentActors"] >= 1


# -- errors ---------------------------------------------------------------------------------------
def test_error_responses_match(checked, actor):
    ids = {"actor_id": actor["id"]}
    unknown_execution = {**ids, "execution_id": UNKNOWN_HASHID}
    checked("POST", "/actors", expect=400, json={"name": "no image"})
    checked("POST", "/actors", expect=400, data=b"{not json", headers={"Content-Type": "application/json"})
    checked("GET", "/actors/{actor_id}", expect=404, params={"actor_id": f"no-such-alias-{uuid.uuid4().hex[:6]}"})
    checked("GET", "/actors/{actor_id}", expect=404, params={"actor_id": UNKNOWN_HASHID})
    checked("GET", "/actors/{actor_id}/executions/{execution_id}", expect=400, params=unknown_execution)
    checked("GET", "/actors/{actor_id}/executions/{execution_id}/logs", expect=400, params=unknown_execution)
    checked("DELETE", "/actors/{actor_id}/executions/{execution_id}", expect=400, params=unknown_execution)
    checked("POST", "/actors/{actor_id}/executions", expect=400, params=ids, json={"runtime": 1, "cpu": 1, "io": 1})
    checked("POST", "/actors/{actor_id}/state", expect=404, params=ids, json={"a": 1})  # stateless
    checked("POST", "/actors/{actor_id}/messages", expect=400, params=ids, data=b"not json",
            headers={"Content-Type": "text/plain"})
    checked("POST", "/actors/{actor_id}/nonces", expect=400, params=ids, json={"level": "BOGUS"})
    checked("GET", "/actors/{actor_id}/nonces/{nonce_id}", expect=400, params={**ids, "nonce_id": "dev_nonce"})
    checked("GET", "/actors/{actor_id}/workers/{worker_id}", expect=404, params={**ids, "worker_id": UNKNOWN_HASHID})
    checked("POST", "/actors/{actor_id}/permissions", expect=400, params=ids, json={"user": "bob", "level": "ALL"})
    checked("GET", "/actors/aliases/{alias}", expect=404, params={"alias": f"no-such-{uuid.uuid4().hex[:6]}"})
    checked("POST", "/actors/aliases", expect=400, json={"alias": "x"})
    # methods no route serves: the document's 405 response
    checked("PATCH", "/actors", expect=405)
    checked("DELETE", "/actors/{actor_id}/state", expect=405, params=ids)
    checked("PUT", "/actors/{actor_id}/messages", expect=405, params=ids)


def test_every_operation_was_validated(contract, request):
    """Runs last: every operation of the document has been validated against a real response."""
    others = [item for item in request.session.items
              if item.module is request.module and item.name != request.node.name]
    if len(others) != len([n for n in dir(request.module) if n.startswith("test_")]) - 1:
        pytest.skip("only part of this module ran")
    operations = {
        (path, method) for path, item in contract.document["paths"].items() for method in item if method in METHODS
    }
    validated = {(path, method) for path, method, _ in contract.checked}
    assert operations - validated == set(), "operations never validated against a real response"


def test_an_execution_with_a_lost_attempt_matches(checked, api, created):
    # the message waits in queue "special" (no spawner in local-dev) while we record a lost attempt
    os.environ.setdefault("ABACO_CONF", str(ROOT / "local-dev.conf"))
    from actors import stores
    from actors.models import Execution

    waiting = checked.result("POST", "/actors", json={"image": TEST_IMAGE, "queue": "special"})
    created["actors"].append(waiting["id"])
    ids = {"actor_id": waiting["id"]}
    execution_id = checked.result("POST", "/actors/{actor_id}/messages", params=ids,
                                  data={"message": "again"})[f("execution_id")]
    stores.executions_store.update_fields(Execution.key(f"{TENANT}_{waiting['id']}", execution_id),
                                          {"attempts": 1, "worker_id": "lostworker1"})  # a worker died with it
    api.result("PUT", f"/actors/{waiting['id']}", json={"image": TEST_IMAGE, "queue": "default", "force": True})
    wait_for_execution(api, waiting["id"], execution_id)
    execution = checked.result("GET", "/actors/{actor_id}/executions/{execution_id}",
                               params={**ids, "execution_id": execution_id})
    assert execution[f("previous_attempts")][0]["worker"] == "lostworker1"
