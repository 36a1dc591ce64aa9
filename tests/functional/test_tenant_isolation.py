"""Tenants whose names share a prefix stay apart (item 5).

Tenant ``DEV`` (header ``X-Jwt-Assertion-DEV``) and tenant ``DEV_STAGING`` (the ``Assertion``
header, as upstream maps it) once shared store keys: records were keyed ``<tenant>_<name>`` and an
alias may contain ``_``, so DEV's alias ``STAGING_<id>`` was stored under the db id of DEV_STAGING's
actor ``<id>``, and DEV's alias ``STAGING_x`` under DEV_STAGING's alias ``x``.
"""
from __future__ import annotations

import uuid

import pytest

from tests.functional.conftest import TEST_IMAGE, Api, f, wait_for
from tests.functional.stacks import ROLES


def client_of(jwt_server, jwt_signer, user: str, header: str) -> Api:
    client = Api(jwt_server.base_url, {header: jwt_signer.token(user, ROLES["user"])})
    client.user = user
    return client


@pytest.fixture
def mallory(jwt_server, jwt_signer, user_name) -> Api:
    return client_of(jwt_server, jwt_signer, user_name("mallory"), "X-Jwt-Assertion-DEV")  # tenant DEV


@pytest.fixture
def victim(jwt_server, jwt_signer, user_name) -> Api:
    return client_of(jwt_server, jwt_signer, user_name("victim"), "Assertion")  # tenant DEV_STAGING


@pytest.fixture
def cleanup():
    done: list[tuple[Api, str]] = []
    yield lambda client, path: done.append((client, path))
    for client, path in reversed(done):
        client.request("DELETE", path, expect=None)


def register(client: Api, cleanup, **fields) -> dict:
    actor = client.result("POST", "/actors", json={"image": TEST_IMAGE, **fields})
    cleanup(client, f"/actors/{actor['id']}")
    return actor


def alias(client: Api, cleanup, name: str, actor_id: str) -> dict:
    record = client.result("POST", "/actors/aliases", json={"alias": name, f("actor_id"): actor_id})
    cleanup(client, f"/actors/aliases/{name}")
    return record


def test_an_alias_cannot_take_over_another_tenants_actor(mallory, victim, cleanup):
    target = register(victim, cleanup)
    own = register(mallory, cleanup)
    alias(mallory, cleanup, f"STAGING_{target['id']}", own["id"])
    victim_nonce = victim.result("POST", f"/actors/{target['id']}/nonces", json={"level": "READ"})

    # the victim's actor keeps exactly its own permissions and nonces
    assert victim.result("GET", f"/actors/{target['id']}/permissions") == {victim.user: "UPDATE"}
    assert [n["id"] for n in victim.result("GET", f"/actors/{target['id']}/nonces")] == [victim_nonce["id"]]
    # and nothing of it is reachable from DEV
    for method, path in (("GET", ""), ("PUT", ""), ("DELETE", ""), ("GET", "/permissions"), ("GET", "/nonces")):
        response = mallory.request(method, f"/actors/{target['id']}{path}", json={"image": TEST_IMAGE}, expect=None)
        assert response.status_code in (400, 404) and "does not exist" in response.json()["message"], response.text
    # mallory's alias stands for her own actor, in her tenant only
    assert mallory.result("GET", f"/actors/STAGING_{target['id']}")["id"] == own["id"]
    assert victim.result("GET", f"/actors/{target['id']}")["owner"] == victim.user
    victim.call("PUT", f"/actors/{target['id']}", json={"image": TEST_IMAGE, "description": "still mine"})


def test_an_alias_cannot_answer_for_another_tenants_alias(mallory, victim, cleanup, api):
    name = f"x{uuid.uuid4().hex[:8]}"
    trap = register(mallory, cleanup)
    alias(mallory, cleanup, f"STAGING_{name}", trap["id"])  # first, as an attacker would
    target = register(victim, cleanup)
    created = alias(victim, cleanup, name, target["id"])  # refused before: "already exists"
    assert created[f("actor_id")] == target["id"]

    assert victim.result("GET", f"/actors/aliases/{name}")[f("actor_id")] == target["id"]
    execution_id = victim.result("POST", f"/actors/{name}/messages", data={"message": "for the victim"})[
        f("execution_id")]
    # the message runs in the victim's actor, and nothing reaches mallory's
    wait_for(lambda: victim.result("GET", f"/actors/{target['id']}/executions/{execution_id}")["status"] == "COMPLETE",
             timeout=60, what="the victim's execution")
    assert mallory.result("GET", f"/actors/{trap['id']}/executions")[f("total_executions")] == 0
    assert [a["alias"] for a in mallory.result("GET", "/actors/aliases")] == [f"STAGING_{name}"]
    assert [a["alias"] for a in victim.result("GET", "/actors/aliases") if a["alias"] == name] == [name]
