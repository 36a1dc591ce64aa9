"""Nonces of actors and aliases: CRUD, validation, redemption as a credential."""
from __future__ import annotations

import threading

import pytest
import requests

from tests.functional.conftest import f

TENANT = "DEV-DEVELOP"


def make_nonce(client, path: str, **body) -> dict:
    return client.result("POST", f"{path}/nonces", json={f(k): v for k, v in body.items()})


def nonce_get(client, path: str, nonce_id: str, expect: int = 200):
    return client.call("GET", path, expect=expect, params={"x-nonce": nonce_id})


# -- actor nonces: CRUD and validation ----------------------------------------------------------
def test_empty_post_creates_unlimited_execute_nonce(alice, jwt_actor):
    actor = jwt_actor(alice)
    nonce = alice.result("POST", f"/actors/{actor['id']}/nonces")
    tenant, hashid = nonce["id"].rsplit("_", 1)
    assert tenant == TENANT and hashid.isalnum()  # a hashid: 13 characters in practice, sometimes fewer
    assert nonce["level"] == "EXECUTE"
    assert nonce[f("max_uses")] == -1 and nonce[f("remaining_uses")] == -1 and nonce[f("current_uses")] == 0
    assert nonce["description"] == ""
    assert nonce[f("actor_id")] == actor["id"]
    assert nonce["owner"] == actor["owner"]
    assert nonce["roles"] == ["Internal/abaco-user", "Internal/everyone"]
    assert nonce[f("create_time")] != "None"
    assert nonce.get(f("last_use_time")) is None  # null until first used (dropped in camel mode); was "None"
    assert nonce[f("api_server")]
    assert nonce["_links"]["self"].endswith(f"/actors/v2/{actor['id']}/nonces/{nonce['id']}")
    assert nonce["_links"]["actor"].endswith(f"/actors/v2/{actor['id']}")
    assert nonce["_links"]["owner"].endswith(f"/profiles/v2/{actor['owner']}")
    assert not {"db_id", "dbId", "tenant", "alias"} & set(nonce)


def test_nonce_list_get_delete(alice, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    assert alice.result("GET", f"{path}/nonces") == []
    nonce = make_nonce(alice, path, level="READ", max_uses=5, description="for the dashboard")
    assert (nonce["level"], nonce[f("max_uses")], nonce[f("remaining_uses")]) == ("READ", 5, 5)
    assert nonce["description"] == "for the dashboard"
    assert [n["id"] for n in alice.result("GET", f"{path}/nonces")] == [nonce["id"]]
    assert alice.result("GET", f"{path}/nonces/{nonce['id']}") == nonce
    assert alice.call("DELETE", f"{path}/nonces/{nonce['id']}")["result"] is None
    assert "Nonce not found" in alice.call("GET", f"{path}/nonces/{nonce['id']}", expect=400)["message"]
    assert alice.result("GET", f"{path}/nonces") == []


def test_nonce_fields_from_form_and_query(alice, jwt_actor):
    actor = jwt_actor(alice)
    nonce = alice.result("POST", f"/actors/{actor['id']}/nonces", data={"level": "UPDATE", f("max_uses"): "2"})
    assert (nonce["level"], nonce[f("max_uses")]) == ("UPDATE", 2)
    nonce = alice.result("POST", f"/actors/{actor['id']}/nonces", params={"level": "READ"})
    assert nonce["level"] == "READ"


@pytest.mark.parametrize("body, fragment", [
    ({"level": "ADMIN"}, "Invalid level"),
    ({"level": "read"}, "Invalid level"),
    ({"max_uses": 0}, "max_uses"),
    ({"max_uses": -2}, "max_uses"),
    ({"max_uses": "many"}, "max"),
])
def test_nonce_validation(alice, jwt_actor, body, fragment):
    actor = jwt_actor(alice)
    body = {f(k): v for k, v in body.items()}
    response = alice.call("POST", f"/actors/{actor['id']}/nonces", json=body, expect=400)
    assert fragment.lower() in response["message"].lower()
    assert alice.result("GET", f"/actors/{actor['id']}/nonces") == []


def test_nonce_post_with_malformed_json_is_400(alice, jwt_actor):
    actor = jwt_actor(alice)
    response = alice.call("POST", f"/actors/{actor['id']}/nonces", data="{not json",
                          headers={"Content-Type": "application/json"}, expect=400)
    assert "JSON" in response["message"]


def test_deleting_an_unknown_nonce_is_400_not_500(alice, jwt_actor):
    actor = jwt_actor(alice)
    response = alice.call("DELETE", f"/actors/{actor['id']}/nonces/{TENANT}_NolBaJ5y6714M", expect=400)
    assert "Nonce not found" in response["message"]


def test_nonce_routes_need_read_and_update(alice, bob, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    nonce = make_nonce(alice, path)
    for method, url in (("GET", f"{path}/nonces"), ("POST", f"{path}/nonces"),
                        ("GET", f"{path}/nonces/{nonce['id']}"), ("DELETE", f"{path}/nonces/{nonce['id']}")):
        assert "do not have access to this actor" in bob.call(method, url, expect=400)["message"]
    alice.result("POST", f"{path}/permissions", json={"user": bob.user, "level": "READ"})
    readable = make_nonce(alice, path, level="READ")
    # READ shows READ nonces only: the EXECUTE nonce's id would let bob send messages
    assert [n["id"] for n in bob.result("GET", f"{path}/nonces")] == [readable["id"]]
    assert bob.result("GET", f"{path}/nonces/{readable['id']}")["id"] == readable["id"]
    assert "not found" in bob.call("GET", f"{path}/nonces/{nonce['id']}", expect=400)["message"]
    bob.call("POST", f"{path}/nonces", expect=400)
    bob.call("DELETE", f"{path}/nonces/{nonce['id']}", expect=400)
    alice.result("POST", f"{path}/permissions", json={"user": bob.user, "level": "UPDATE"})
    mine = make_nonce(bob, path)
    assert mine["owner"] == bob.user
    bob.call("DELETE", f"{path}/nonces/{nonce['id']}")


def test_admin_manages_nonces_of_any_actor(alice, jwt_api, user_name, jwt_actor):
    admin = jwt_api(user_name("root"), "admin")
    actor = jwt_actor(alice)
    nonce = make_nonce(admin, f"/actors/{actor['id']}")
    assert nonce["roles"][0] == "Internal/abaco-admin"
    admin.call("DELETE", f"/actors/{actor['id']}/nonces/{nonce['id']}")
    assert admin.call("GET", "/actors/NolBaJ5y6714M/nonces", expect=404)["status"] == "error"


# -- redemption -----------------------------------------------------------------------------------
def test_limited_nonce_redeemed_to_exhaustion(alice, no_credentials, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    nonce = make_nonce(alice, path, level="READ", max_uses=3)
    for _ in range(3):
        assert nonce_get(no_credentials, path, nonce["id"])["result"]["id"] == actor["id"]
    assert "No remaining uses" in nonce_get(no_credentials, path, nonce["id"], expect=400)["message"]
    used = alice.result("GET", f"{path}/nonces/{nonce['id']}")
    assert (used[f("current_uses")], used[f("remaining_uses")]) == (3, 0)
    # fixed: upstream never updated last_use_time of limited nonces
    assert used[f("last_use_time")] not in (None, "None")


def test_unlimited_nonce_counts_uses(alice, no_credentials, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    nonce = make_nonce(alice, path, level="READ")
    for _ in range(4):
        nonce_get(no_credentials, f"{path}/executions", nonce["id"])
    used = alice.result("GET", f"{path}/nonces/{nonce['id']}")
    assert (used[f("current_uses")], used[f("remaining_uses")]) == (4, -1)
    assert used[f("last_use_time")] not in (None, "None")


def test_concurrent_redemptions_never_overspend(alice, no_credentials, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    nonce = make_nonce(alice, path, level="READ", max_uses=5)
    statuses: list[int] = []
    start = threading.Barrier(20)

    def redeem():
        start.wait()
        response = requests.get(no_credentials.base_url + path, params={"x-nonce": nonce["id"]}, timeout=60)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=redeem) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses) == [200] * 5 + [400] * 15
    used = alice.result("GET", f"{path}/nonces/{nonce['id']}")
    assert (used[f("current_uses")], used[f("remaining_uses")]) == (5, 0)


def test_nonce_level_is_checked_before_a_use_is_consumed(alice, no_credentials, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    nonce = make_nonce(alice, path, level="READ", max_uses=1)
    for method, url in (("POST", f"{path}/messages"), ("DELETE", f"{path}/nonces/{nonce['id']}"),
                        ("POST", f"{path}/nonces")):
        response = no_credentials.call(method, url, params={"x-nonce": nonce["id"]}, expect=400)
        assert "level" in response["message"]
    nonce_get(no_credentials, path, nonce["id"])
    assert alice.result("GET", f"{path}/nonces/{nonce['id']}")[f("remaining_uses")] == 0


def test_execute_nonce_sends_messages_as_the_owner(alice, no_credentials, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    nonce = make_nonce(alice, path, level="EXECUTE")
    sent = no_credentials.result("POST", f"{path}/messages", params={"x-nonce": nonce["id"]},
                                 data={"message": "via nonce"})
    execution = alice.result("GET", f"{path}/executions/{sent[f('execution_id')]}")
    assert execution["executor"] == actor["owner"]
    assert "level" in no_credentials.call("DELETE", path, params={"x-nonce": nonce["id"]}, expect=400)["message"]


def test_update_nonce_acts_with_the_owners_identity_and_roles(alice, no_credentials, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    nonce = make_nonce(alice, path, level="UPDATE")
    made = no_credentials.result("POST", f"{path}/nonces", params={"x-nonce": nonce["id"]})
    assert made["owner"] == actor["owner"] and made["roles"] == nonce["roles"]
    no_credentials.call("DELETE", f"{path}/nonces/{made['id']}", params={"x-nonce": nonce["id"]})


def test_a_use_is_consumed_even_when_authorization_then_fails(alice, bob, no_credentials, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    alice.result("POST", f"{path}/permissions", json={"user": bob.user, "level": "UPDATE"})
    nonce = make_nonce(bob, path, level="READ", max_uses=2)
    alice.result("POST", f"{path}/permissions", json={"user": bob.user, "level": "NONE"})
    response = nonce_get(no_credentials, path, nonce["id"], expect=400)
    assert "do not have access to this actor" in response["message"]
    assert alice.result("GET", f"{path}/nonces/{nonce['id']}")[f("remaining_uses")] == 1


def test_unknown_or_foreign_nonce_does_not_exist(alice, no_credentials, jwt_actor):
    actor = jwt_actor(alice)
    other = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    nonce = make_nonce(alice, f"/actors/{other['id']}", level="READ")
    for nonce_id in (f"{TENANT}_NolBaJ5y6714M", "SD2E_" + nonce["id"].rsplit("_", 1)[1], nonce["id"], "garbage"):
        response = nonce_get(no_credentials, path, nonce_id, expect=400)
        assert "Nonce does not exist" in response["message"], nonce_id


def test_nonce_is_ignored_when_a_jwt_is_present(alice, bob, jwt_actor):
    actor = jwt_actor(alice)
    nonce = make_nonce(alice, f"/actors/{actor['id']}", level="READ")
    response = nonce_get(bob, f"/actors/{actor['id']}", nonce["id"], expect=400)
    assert "do not have access" in response["message"]
    assert alice.result("GET", f"/actors/{actor['id']}/nonces/{nonce['id']}")[f("current_uses")] == 0


def test_nonce_on_a_collection_url_is_refused(alice, no_credentials, jwt_actor):
    actor = jwt_actor(alice)
    nonce = make_nonce(alice, f"/actors/{actor['id']}", level="READ")
    response = no_credentials.call("GET", "/actors", params={"x-nonce": nonce["id"]}, expect=400)
    assert "actor or alias" in response["message"]


def test_nonces_are_deleted_with_their_actor(alice, no_credentials):
    actor = alice.result("POST", "/actors", json={"image": "abacosamples/test"})
    path = f"/actors/{actor['id']}"
    nonce = make_nonce(alice, path, level="READ")
    alice.call("DELETE", path)
    assert "Nonce does not exist" in nonce_get(no_credentials, path, nonce["id"], expect=400)["message"]


# -- alias nonces -------------------------------------------------------------------------------
def test_alias_nonce_crud(alice, jwt_actor, jwt_alias):
    actor = jwt_actor(alice)
    alias = jwt_alias(alice, actor["id"])["alias"]
    path = f"/actors/aliases/{alias}"
    assert alice.result("GET", f"{path}/nonces") == []
    nonce = make_nonce(alice, path, level="UPDATE", max_uses=2)
    assert nonce["alias"] == alias
    assert nonce.get(f("actor_id")) is None  # null in snake mode, dropped in camel mode
    # fixed: upstream's links read /actors/v2/None/nonces/...
    assert nonce["_links"]["self"].endswith(f"/actors/v2/aliases/{alias}/nonces/{nonce['id']}")
    assert nonce["_links"]["actor"].endswith(f"/actors/v2/{actor['id']}")
    assert [n["id"] for n in alice.result("GET", f"{path}/nonces")] == [nonce["id"]]
    assert alice.result("GET", f"{path}/nonces/{nonce['id']}")["id"] == nonce["id"]
    alice.call("DELETE", f"{path}/nonces/{nonce['id']}")
    assert "Nonce not found" in alice.call("GET", f"{path}/nonces/{nonce['id']}", expect=400)["message"]
    assert "Nonce not found" in alice.call("DELETE", f"{path}/nonces/{nonce['id']}", expect=400)["message"]


def test_alias_nonce_of_unknown_alias_is_404(jwt_api, user_name):
    admin = jwt_api(user_name("root"), "admin")
    response = admin.call("POST", "/actors/aliases/no-such-alias-here/nonces", expect=404)
    assert "No alias found" in response["message"]


def test_alias_nonces_need_access_to_alias_and_actor(alice, bob, jwt_actor, jwt_alias):
    actor = jwt_actor(alice)
    alias = jwt_alias(alice, actor["id"])["alias"]
    path = f"/actors/aliases/{alias}/nonces"
    denied = "do not have access to this alias and actor"
    assert denied in bob.call("GET", path, expect=400)["message"]
    alice.result("POST", f"/actors/aliases/{alias}/permissions", json={"user": bob.user, "level": "UPDATE"})
    assert denied in bob.call("GET", path, expect=400)["message"]  # the alias alone is not enough
    alice.result("POST", f"/actors/{actor['id']}/permissions", json={"user": bob.user, "level": "READ"})
    assert bob.result("GET", path) == []
    assert denied in bob.call("POST", path, expect=400)["message"]  # READ on the actor is not UPDATE
    alice.result("POST", f"/actors/{actor['id']}/permissions", json={"user": bob.user, "level": "UPDATE"})
    bob.result("POST", path)


def test_alias_nonce_redeemed_through_alias_urls_only(alice, no_credentials, jwt_actor, jwt_alias):
    actor = jwt_actor(alice)
    alias = jwt_alias(alice, actor["id"])["alias"]
    alias_nonce = make_nonce(alice, f"/actors/aliases/{alias}", level="READ")
    actor_nonce = make_nonce(alice, f"/actors/{actor['id']}", level="READ")
    assert nonce_get(no_credentials, f"/actors/{alias}", alias_nonce["id"])["result"]["id"] == actor["id"]
    assert nonce_get(no_credentials, f"/actors/aliases/{alias}", alias_nonce["id"])["result"]["alias"] == alias
    assert "Nonce does not exist" in nonce_get(no_credentials, f"/actors/{actor['id']}", alias_nonce["id"],
                                               expect=400)["message"]
    assert "Nonce does not exist" in nonce_get(no_credentials, f"/actors/{alias}", actor_nonce["id"],
                                               expect=400)["message"]
    assert nonce_get(no_credentials, f"/actors/{actor['id']}", actor_nonce["id"])["result"]["id"] == actor["id"]


def test_alias_nonces_are_deleted_with_the_alias(alice, jwt_actor, jwt_alias):
    actor = jwt_actor(alice)
    alias = jwt_alias(alice, actor["id"])["alias"]
    make_nonce(alice, f"/actors/aliases/{alias}")
    alice.call("DELETE", f"/actors/aliases/{alias}")
    jwt_alias(alice, actor["id"], alias)
    # fixed: upstream kept them, so a new alias of the same name honoured the old alias's nonces
    assert alice.result("GET", f"/actors/aliases/{alias}/nonces") == []


# -- nonce ids are bearer secrets: shown only up to the caller's level (item 7) ---------
@pytest.fixture
def nonces_of_every_level(alice, jwt_actor):
    actor = jwt_actor(alice)
    path = f"/actors/{actor['id']}"
    made = {level: make_nonce(alice, path, level=level)["id"] for level in ("READ", "EXECUTE", "UPDATE")}
    return actor, path, made


@pytest.mark.parametrize("level, sees", [
    ("READ", {"READ"}), ("EXECUTE", {"READ", "EXECUTE"}), ("UPDATE", {"READ", "EXECUTE", "UPDATE"}),
])
def test_a_user_sees_nonces_up_to_their_own_level(alice, bob, nonces_of_every_level, level, sees):
    actor, path, made = nonces_of_every_level
    alice.result("POST", f"{path}/permissions", json={"user": bob.user, "level": level})
    listed = {n["id"] for n in bob.result("GET", f"{path}/nonces")}
    assert listed == {made[lvl] for lvl in sees}
    for lvl, nonce_id in made.items():
        response = bob.request("GET", f"{path}/nonces/{nonce_id}", expect=None)
        assert (response.status_code == 200) == (lvl in sees), (lvl, response.text)


def test_the_owner_and_admins_see_every_nonce(alice, jwt_api, user_name, nonces_of_every_level):
    _, path, made = nonces_of_every_level
    admin = jwt_api(user_name("root"), "admin")
    for client in (alice, admin):
        assert {n["id"] for n in client.result("GET", f"{path}/nonces")} == set(made.values())


def test_a_read_nonce_cannot_read_stronger_nonces(no_credentials, nonces_of_every_level):
    """A READ nonce authenticates as its owner, but counts at its own level only."""
    _, path, made = nonces_of_every_level
    listed = no_credentials.result("GET", f"{path}/nonces", params={"x-nonce": made["READ"]})
    assert {n["id"] for n in listed} == {made["READ"]}
    response = no_credentials.request("GET", f"{path}/nonces/{made['UPDATE']}", params={"x-nonce": made["READ"]},
                                      expect=None)
    assert response.status_code == 400 and "not found" in response.json()["message"]


def test_alias_nonces_are_filtered_the_same_way(alice, bob, jwt_actor, jwt_alias):
    actor = jwt_actor(alice)
    alias = jwt_alias(alice, actor["id"])["alias"]
    made = {level: make_nonce(alice, f"/actors/aliases/{alias}", level=level)["id"] for level in ("READ", "UPDATE")}
    for key in (f"/actors/aliases/{alias}", f"/actors/{actor['id']}"):
        alice.result("POST", f"{key}/permissions", json={"user": bob.user, "level": "READ"})
    assert {n["id"] for n in bob.result("GET", f"/actors/aliases/{alias}/nonces")} == {made["READ"]}
