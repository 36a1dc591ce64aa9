"""Permission maps of actors and aliases, and what each level allows."""
from __future__ import annotations

import pytest


def grant(owner, path: str, user: str, level: str) -> dict:
    return owner.result("POST", f"{path}/permissions", json={"user": user, "level": level})


def test_creator_holds_update_and_grants_are_returned_as_the_map(alice, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    body = alice.call("GET", f"{path}/permissions")
    assert body["result"] == {alice.user: "UPDATE"}
    assert grant(alice, path, "some_user", "READ") == {alice.user: "UPDATE", "some_user": "READ"}
    # overwriting keeps one entry per user; form fields work too
    result = alice.result("POST", f"{path}/permissions", data={"user": "some_user", "level": "EXECUTE"})
    assert result == {alice.user: "UPDATE", "some_user": "EXECUTE"}
    assert alice.result("GET", f"{path}/permissions") == result


@pytest.mark.parametrize("body, fragment", [
    ({"user": "x", "level": "ADMIN"}, "Invalid permission level"),
    ({"user": "x", "level": "read"}, "Invalid permission level"),
    ({"user": "x"}, "Missing required field"),
    ({"level": "READ"}, "Missing required field"),
])
def test_permission_validation(alice, jwt_actor, jwt_alias, body, fragment):
    actor = jwt_actor(alice)
    alias = jwt_alias(alice, actor["id"])["alias"]
    for path in (f"/actors/{actor['id']}", f"/actors/aliases/{alias}"):
        response = alice.call("POST", f"{path}/permissions", json=body, expect=400)
        assert fragment in response["message"], path
        assert len(alice.result("GET", f"{path}/permissions")) == 1


def test_permission_post_with_malformed_json_is_400(alice, jwt_actor):
    actor = jwt_actor(alice)
    for body in ("{nope", "[1]"):
        alice.call("POST", f"/actors/{actor['id']}/permissions", data=body,
                   headers={"Content-Type": "application/json"}, expect=400)


def test_permissions_routes_allow_only_get_and_post(alice, jwt_actor, jwt_alias):
    actor = jwt_actor(alice)
    alias = jwt_alias(alice, actor["id"])["alias"]
    for path in (f"/actors/{actor['id']}/permissions", f"/actors/aliases/{alias}/permissions"):
        assert alice.call("PUT", path, json={}, expect=405)["status"] == "error"
        assert alice.call("DELETE", path, expect=405)["status"] == "error"
        assert alice.request("OPTIONS", path).status_code == 200


def test_read_level(alice, bob, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    denied = "do not have access to this actor"
    assert denied in bob.call("GET", path, expect=400)["message"]
    assert denied in bob.call("GET", f"{path}/permissions", expect=400)["message"]
    assert all(a["id"] != actor["id"] for a in bob.result("GET", "/actors"))
    grant(alice, path, bob.user, "READ")
    assert bob.result("GET", path)["id"] == actor["id"]
    assert any(a["id"] == actor["id"] for a in bob.result("GET", "/actors"))
    for sub in ("/permissions", "/executions", "/messages", "/nonces"):
        bob.result("GET", path + sub)
    assert denied in bob.call("POST", f"{path}/messages", data={"message": "x"}, expect=400)["message"]
    assert denied in bob.call("POST", f"{path}/permissions", json={"user": bob.user, "level": "UPDATE"},
                              expect=400)["message"]
    assert denied in bob.call("DELETE", path, expect=400)["message"]


def test_execute_and_update_levels(alice, bob, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    grant(alice, path, bob.user, "EXECUTE")
    bob.result("GET", path)
    assert "do not have access" in bob.call("POST", f"{path}/nonces", expect=400)["message"]
    assert "do not have access" in bob.call("POST", f"{path}/permissions", json={"user": "x", "level": "READ"},
                                            expect=400)["message"]
    grant(alice, path, bob.user, "UPDATE")
    assert grant(bob, path, "x", "READ")["x"] == "READ"


def test_none_revokes(alice, bob, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    grant(alice, path, bob.user, "UPDATE")
    bob.result("GET", path)
    assert grant(alice, path, bob.user, "NONE")[bob.user] == "NONE"
    assert "do not have access" in bob.call("GET", path, expect=400)["message"]


def test_sharing_with_abaco_world(alice, bob, carol, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    grant(alice, path, "ABACO_WORLD", "READ")
    for other in (bob, carol):
        assert other.result("GET", path)["id"] == actor["id"]
        assert any(a["id"] == actor["id"] for a in other.result("GET", "/actors"))
        # fixed: upstream let ABACO_WORLD grant every level, whatever level was shared
        assert "do not have access" in other.call("DELETE", path, expect=400)["message"]
        assert "do not have access" in other.call("POST", f"{path}/messages", data={"message": "x"},
                                                  expect=400)["message"]
    grant(alice, path, "ABACO_WORLD", "UPDATE")
    assert grant(carol, path, "someone", "READ")["someone"] == "READ"


def test_world_sharing_stays_in_the_tenant(alice, jwt_api, jwt_actor):
    actor = jwt_actor(alice)
    grant(alice, f"/actors/{actor['id']}", "ABACO_WORLD", "READ")
    outsider = jwt_api(alice.user, "user", "SD2E")
    assert all(a["id"] != actor["id"] for a in outsider.result("GET", "/actors"))
    assert "does not exist" in outsider.call("GET", f"/actors/{actor['id']}", expect=400)["message"]


def test_alias_permissions(alice, bob, jwt_actor, jwt_alias):
    actor = jwt_actor(alice)
    alias = jwt_alias(alice, actor["id"])["alias"]
    path = f"/actors/aliases/{alias}"
    denied = "do not have access to this alias"
    assert denied in bob.call("GET", f"{path}/permissions", expect=400)["message"]
    assert grant(alice, path, bob.user, "READ") == {alice.user: "UPDATE", bob.user: "READ"}
    assert bob.result("GET", f"{path}/permissions")[bob.user] == "READ"
    assert denied in bob.call("POST", f"{path}/permissions", json={"user": "x", "level": "READ"},
                              expect=400)["message"]
    # alias permissions are their own map: the actor's is untouched and bob has no actor access
    assert alice.result("GET", f"/actors/{actor['id']}/permissions") == {alice.user: "UPDATE"}
    assert "do not have access to this actor" in bob.call("GET", f"/actors/{alias}", expect=400)["message"]
    grant(alice, path, "ABACO_WORLD", "UPDATE")
    assert grant(bob, path, "x", "READ")["x"] == "READ"


def test_alias_permissions_of_unknown_alias_are_404(alice, jwt_api, user_name):
    admin = jwt_api(user_name("root"), "admin")
    for client in (alice, admin):
        client.call("GET", "/actors/aliases/no-such-alias-z/permissions", expect=404)
        client.call("POST", "/actors/aliases/no-such-alias-z/permissions", json={"user": "x", "level": "READ"},
                    expect=404)


def test_permissions_of_unknown_actor(alice, jwt_api, user_name):
    admin = jwt_api(user_name("root"), "admin")
    assert "does not exist" in alice.call("GET", "/actors/NolBaJ5y6714M/permissions", expect=400)["message"]
    admin.call("GET", "/actors/NolBaJ5y6714M/permissions", expect=404)
    admin.call("POST", "/actors/NolBaJ5y6714M/permissions", json={"user": "x", "level": "READ"}, expect=404)


def test_admin_and_privileged_roles(alice, jwt_api, user_name, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    admin = jwt_api(user_name("root"), "admin")
    privileged = jwt_api(user_name("priv"), "privileged")
    assert admin.result("GET", f"{path}/permissions") == {alice.user: "UPDATE"}
    assert grant(admin, path, "x", "READ")["x"] == "READ"
    assert "do not have access" in privileged.call("GET", f"{path}/permissions", expect=400)["message"]


def test_limited_role_is_a_normal_user(carol, bob, jwt_actor):
    actor = jwt_actor(carol)
    assert actor["owner"] == carol.user
    grant(carol, f"/actors/{actor['id']}", bob.user, "READ")
    bob.result("GET", f"/actors/{actor['id']}")


def test_guard_applies_to_permission_posts(alice, jwt_actor):
    actor = jwt_actor(alice)
    response = alice.call("POST", f"/actors/{actor['id']}/permissions",
                          json={"user": "x", "level": "READ", "privileged": True}, expect=400)
    assert "privileged" in response["message"]
