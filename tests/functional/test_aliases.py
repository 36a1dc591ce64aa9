"""Aliases: CRUD, validation in upstream's order, use in place of actor ids, access rules."""
from __future__ import annotations

import uuid

import pytest

from tests.functional.conftest import f


def new_alias() -> str:
    return f"alias-{uuid.uuid4().hex[:10]}"


def post_alias(client, alias, actor_id, expect: int = 200) -> dict:
    return client.call("POST", "/actors/aliases", json={"alias": alias, f("actor_id"): actor_id}, expect=expect)


def test_alias_create_get_list_delete(alice, jwt_actor):
    actor = jwt_actor(alice)
    alias = new_alias()
    created = post_alias(alice, alias, actor["id"])["result"]
    assert created["alias"] == alias and created[f("actor_id")] == actor["id"] and created["owner"] == alice.user
    assert created["_links"]["self"].endswith(f"/actors/v2/aliases/{alias}")
    assert created["_links"]["actor"].endswith(f"/actors/v2/{actor['id']}")
    assert created["_links"]["owner"].endswith(f"/profiles/v2/{alice.user}")
    assert not {"alias_id", "aliasId", "db_id", "dbId", "tenant", "api_server", "apiServer"} & set(created)
    try:
        assert alice.result("GET", f"/actors/aliases/{alias}") == created
        assert created in alice.result("GET", "/actors/aliases")
        assert alice.result("GET", f"/actors/aliases/{alias}/permissions") == {alice.user: "UPDATE"}
    finally:
        deleted = alice.call("DELETE", f"/actors/aliases/{alias}")
    assert deleted["result"] is None and alias in deleted["message"]
    assert alice.call("GET", f"/actors/aliases/{alias}", expect=404)["status"] == "error"
    assert created not in alice.result("GET", "/actors/aliases")


def test_alias_from_form_fields(alice, jwt_actor):
    actor = jwt_actor(alice)
    alias = new_alias()
    created = alice.result("POST", "/actors/aliases", data={"alias": alias, f("actor_id"): actor["id"]})
    assert created["alias"] == alias
    alice.call("DELETE", f"/actors/aliases/{alias}")


@pytest.mark.parametrize("body", [{"alias": "only-alias"}, {"actor_id": "NolBaJ5y6714M"}, {}])
def test_alias_missing_field(alice, body):
    body = {f(k): v for k, v in body.items()}
    response = alice.call("POST", "/actors/aliases", json=body, expect=400)
    assert "Missing required field" in response["message"]


def test_alias_validation_order(alice, jwt_actor):
    actor = jwt_actor(alice)
    missing_actor = "NolBaJ5y6714M"
    # 1. a valid hashid is refused before the actor is looked up
    assert "actor id" in post_alias(alice, "NolBaJ5y6714M", missing_actor, expect=400)["message"]
    # 2. the actor must exist (404), before reserved words and characters are checked
    assert "No actor found" in post_alias(alice, "executions", missing_actor, expect=404)["message"]
    assert "No actor found" in post_alias(alice, new_alias(), "not-an-actor", expect=404)["message"]
    # 3. reserved words, 4. forbidden characters
    for word in ("executions", "nonces", "logs", "messages", "adapters", "admin", "utilization"):
        assert "reserved" in post_alias(alice, word, actor["id"], expect=400)["message"], word
    for ch in ":/?#[]@!$&'()*+,;=":
        message = post_alias(alice, f"bad{ch}alias", actor["id"], expect=400)["message"]
        assert "forbidden" in message, ch
    assert all(a[f("actor_id")] != actor["id"] for a in alice.result("GET", "/actors/aliases"))


def test_alias_must_be_unique_in_the_tenant(alice, bob, jwt_actor, jwt_alias):
    actor = jwt_actor(alice)
    other = jwt_actor(bob)
    alias = jwt_alias(alice, actor["id"])["alias"]
    assert "already exists" in post_alias(alice, alias, actor["id"], expect=400)["message"]
    assert "already exists" in post_alias(bob, alias, other["id"], expect=400)["message"]
    assert alice.result("GET", f"/actors/aliases/{alias}")[f("actor_id")] == actor["id"]


def test_several_aliases_may_point_at_one_actor(alice, jwt_actor, jwt_alias):
    actor = jwt_actor(alice)
    first, second = jwt_alias(alice, actor["id"]), jwt_alias(alice, actor["id"])
    assert alice.result("GET", f"/actors/{first['alias']}")["id"] == actor["id"]
    assert alice.result("GET", f"/actors/{second['alias']}")["id"] == actor["id"]


def test_alias_stands_for_the_actor_on_actor_routes(alice, jwt_actor, jwt_alias):
    actor = jwt_actor(alice)
    alias = jwt_alias(alice, actor["id"])["alias"]
    assert alice.result("GET", f"/actors/{alias}")["id"] == actor["id"]
    assert alice.result("GET", f"/actors/{alias}/executions")[f("actor_id")] == actor["id"]
    assert "messages" in alice.result("GET", f"/actors/{alias}/messages")
    assert alice.result("GET", f"/actors/{alias}/permissions") == {alice.user: "UPDATE"}
    nonce = alice.result("POST", f"/actors/{alias}/nonces")
    assert nonce[f("actor_id")] == actor["id"]  # an actor nonce: the alias only named the actor
    assert [n["id"] for n in alice.result("GET", f"/actors/{actor['id']}/nonces")] == [nonce["id"]]


def test_unknown_identifier_is_404_for_everyone(alice, admin):
    for client in (alice, admin):
        response = client.call("GET", "/actors/no-such-alias-x/executions", expect=404)
        assert "Actor with identifier 'no-such-alias-x' not found" in response["message"]
        client.call("GET", "/actors/no-such-alias-x/permissions", expect=404)
    # a well-formed hashid without an actor: no permission record for users, 404 for admins
    assert "does not exist" in alice.call("GET", "/actors/NolBaJ5y6714M", expect=400)["message"]
    admin.call("GET", "/actors/NolBaJ5y6714M", expect=404)


def test_alias_permission_does_not_grant_the_actor(alice, bob, jwt_actor, jwt_alias):
    actor = jwt_actor(alice)
    alias = jwt_alias(alice, actor["id"])["alias"]
    alice.result("POST", f"/actors/aliases/{alias}/permissions", json={"user": bob.user, "level": "UPDATE"})
    assert bob.result("GET", f"/actors/aliases/{alias}")["alias"] == alias
    for path in (f"/actors/{alias}", f"/actors/{actor['id']}", f"/actors/{alias}/permissions"):
        response = bob.call("GET", path, expect=400)
        assert "do not have access to this actor" in response["message"], path


def test_alias_access_needs_alias_permission(alice, bob, jwt_actor, jwt_alias):
    actor = jwt_actor(alice)
    alias = jwt_alias(alice, actor["id"])["alias"]
    denied = "do not have access to this alias"
    assert denied in bob.call("GET", f"/actors/aliases/{alias}", expect=400)["message"]
    assert denied in bob.call("DELETE", f"/actors/aliases/{alias}", expect=400)["message"]
    assert any(a["alias"] == alias for a in bob.result("GET", "/actors/aliases"))  # the list is not filtered
    alice.result("POST", f"/actors/aliases/{alias}/permissions", json={"user": bob.user, "level": "READ"})
    bob.result("GET", f"/actors/aliases/{alias}")
    assert denied in bob.call("DELETE", f"/actors/aliases/{alias}", expect=400)["message"]
    # sharing the actor gives nothing on the alias either
    alice.result("POST", f"/actors/{actor['id']}/permissions", json={"user": bob.user, "level": "UPDATE"})
    assert denied in bob.call("DELETE", f"/actors/aliases/{alias}", expect=400)["message"]


def test_any_user_may_alias_any_actor_but_gains_no_access(alice, bob, jwt_actor, jwt_alias):
    actor = jwt_actor(alice)
    alias = jwt_alias(bob, actor["id"])["alias"]  # no permission on the target is required in 2019
    assert "do not have access to this actor" in bob.call("GET", f"/actors/{alias}", expect=400)["message"]
    assert alice.result("GET", f"/actors/{alias}")["id"] == actor["id"]
    assert "do not have access to this alias" in alice.call("DELETE", f"/actors/aliases/{alias}",
                                                            expect=400)["message"]


def test_unknown_alias_is_404(alice, admin):
    for client in (alice, admin):
        assert "No alias found" in client.call("GET", "/actors/aliases/no-such-alias-y", expect=404)["message"]
        client.call("DELETE", "/actors/aliases/no-such-alias-y", expect=404)


def test_aliases_are_per_tenant(jwt_api, user_name, jwt_actor, jwt_alias):
    name = user_name("dora")
    develop, sd2e = jwt_api(name, "user", "DEV-DEVELOP"), jwt_api(name, "user", "SD2E")
    actor = jwt_actor(develop)
    alias = jwt_alias(develop, actor["id"])["alias"]
    assert all(a["alias"] != alias for a in sd2e.result("GET", "/actors/aliases"))
    sd2e.call("GET", f"/actors/aliases/{alias}", expect=404)
    sd2e.call("GET", f"/actors/{alias}", expect=404)
    # the same alias text is free in the other tenant, but an actor id of another tenant is not found
    assert "No actor found" in post_alias(sd2e, alias, actor["id"], expect=404)["message"]
    other = jwt_actor(sd2e)
    jwt_alias(sd2e, other["id"], alias)
    assert sd2e.result("GET", f"/actors/{alias}")["id"] == other["id"]
    assert develop.result("GET", f"/actors/{alias}")["id"] == actor["id"]


def test_alias_post_with_malformed_or_non_object_json_is_400(alice):
    for body in ("{nope", "[1, 2]", '"text"'):
        alice.call("POST", "/actors/aliases", data=body, headers={"Content-Type": "application/json"}, expect=400)
