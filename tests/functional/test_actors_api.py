"""Actors: register with every field, validation, update, links and utilization."""
from __future__ import annotations

import re
import uuid

import pytest

from tests.functional.conftest import (
    CASE,
    TEST_IMAGE,
    f,
    wait_for,
    wait_for_actor_status,
)

OTHER_IMAGE = "jstubbs/abaco_test"  # the same sample under upstream's name: a different image to Docker
DISPLAY_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?$")
UNKNOWN_HASHID = "NolBaJ5y6714M"  # a well-formed actor id that no actor has


def other_spelling(name: str) -> str:
    """The spelling of a multi-word field that the server under test must ignore."""
    if CASE == "camel":
        return name
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def post_error(api, body=None, **kwargs) -> str:
    kwargs.setdefault("json", body)
    return api.call("POST", "/actors", expect=400, **kwargs)["message"]


def put_error(api, actor_id: str, body: dict, expect: int = 400) -> str:
    return api.call("PUT", f"/actors/{actor_id}", expect=expect, json=body)["message"]


@pytest.fixture
def register(api):
    """``register(json=..., data=..., path=...)`` -> the actor registered from that exact body; deleted afterwards."""
    created: list[str] = []

    def post(path: str = "/actors", **kwargs) -> dict:
        actor = api.result("POST", path, **kwargs)
        created.append(actor["id"])
        return actor

    yield post
    for actor_id in created:
        api.request("DELETE", f"/actors/{actor_id}", expect=None)


@pytest.fixture(scope="module")
def shared_actor(api):
    """One READY stateless actor for the read-only and validation checks of this module."""
    actor = api.result("POST", "/actors", json={"image": TEST_IMAGE, "name": f"shared-{uuid.uuid4().hex[:6]}"})
    wait_for_actor_status(api, actor["id"], "READY")
    yield actor
    api.request("DELETE", f"/actors/{actor['id']}", expect=None)


# -- registration -------------------------------------------------------------------------------
def test_register_minimal_actor_has_every_field_with_its_default(register):
    actor = register(json={"image": TEST_IMAGE})
    expected = {
        "image": TEST_IMAGE, "description": "", "stateless": True, "type": "none", "link": "", "webhook": "",
        "hints": [], "token": False, "privileged": False, "queue": "default", "status": "SUBMITTED",
        f("status_message"): "", "state": {}, "owner": "anonymous", "mounts": [],
        f("use_container_uid"): False, f("default_environment"): {},
    }
    for key, value in expected.items():
        assert actor[key] == value, key
    for key in ("name", "max_workers", "mem_limit", "max_cpus", "uid", "gid", "tasdir"):
        # null in snake mode; camel mode drops null fields (upstream's quirk)
        assert actor.get(f(key)) is None, key
        assert (f(key) in actor) == (CASE != "camel"), key
    assert DISPLAY_TIME.match(actor[f("create_time")]) and DISPLAY_TIME.match(actor[f("last_update_time")])
    assert set(actor["_links"]) == {"self", "owner", "executions"}
    assert actor["_links"]["self"].endswith(f"/actors/v2/{actor['id']}")
    for hidden in ("db_id", "tenant", "api_server", "executions", "dbId", "apiServer"):
        assert hidden not in actor


def test_register_with_every_field(api, make_actor):
    fields = {
        "name": "everything", "description": "all fields", "type": "bin", "webhook": "http://127.0.0.1:9/hook",
        "hints": ["sync", "fast"], "token": True, "privileged": True, "queue": "default",
        f("max_workers"): 3, f("mem_limit"): "1g", f("max_cpus"): 1000000000, f("use_container_uid"): True,
        f("default_environment"): {"KEY": "value", "N": "1"},
    }
    actor = make_actor(**fields)
    fetched = api.result("GET", f"/actors/{actor['id']}")
    for key, value in fields.items():
        assert actor[key] == value, key
        assert fetched[key] == value, key


def test_register_from_form_fields_with_true_false_strings(register):
    body = {"image": TEST_IMAGE, "stateless": "False", "token": "True", "privileged": "false",
            "hints": ["one", "two"], "description": "from a form"}
    actor = register(data=body)
    assert actor["stateless"] is False and actor["token"] is True and actor["privileged"] is False
    assert actor["hints"] == ["one", "two"]
    assert actor["description"] == "from a form"


def test_query_parameters_are_fields_too_and_json_wins(register):
    actor = register("/actors?description=query&type=bin", json={"image": TEST_IMAGE, "type": "json"})
    assert actor["description"] == "query" and actor["type"] == "json"


def test_single_hint_string_becomes_a_list(register):
    assert register(json={"image": TEST_IMAGE, "hints": "sync"})["hints"] == ["sync"]


def test_field_names_follow_the_case_setting(register):
    """Input fields are read under the active case only."""
    env = f("default_environment")
    ignored = other_spelling("default_environment")
    actor = register(json={"image": TEST_IMAGE, ignored: {"B": "2"}})
    assert actor[env] == {} and ignored not in actor
    actor = register(json={"image": TEST_IMAGE, env: {"A": "1"}})
    assert actor[env] == {"A": "1"}


@pytest.mark.parametrize("body, fragment", [
    ({"name": "no image"}, "image"),
    ({"image": TEST_IMAGE, "stateless": 5}, "stateless"),
    ({"image": TEST_IMAGE, "stateless": ""}, "stateless"),
    ({"image": TEST_IMAGE, "token": "maybe"}, "token"),
    ({"image": TEST_IMAGE, "max_workers": "many"}, "max"),
    ({"image": TEST_IMAGE, "max_cpus": "1.5"}, "max"),
    ({"image": TEST_IMAGE, "default_environment": "A=1"}, "nvironment"),
    ({"image": TEST_IMAGE, "queue": "nowhere"}, "Invalid queue name"),
    ({"image": TEST_IMAGE, "hints": ["ok", "{bad}"]}, "Invalid actor description"),
    ({"image": TEST_IMAGE, "hints": "it's"}, "Invalid actor description"),
    ({"image": TEST_IMAGE, "stateless": False, "max_workers": 2}, "stateful actors can only have 1 worker"),
    ({"image": TEST_IMAGE, "link": UNKNOWN_HASHID}, "Invalid link parameter"),
    ({"image": TEST_IMAGE, "link": "no-such-alias"}, "Invalid link parameter"),
])
def test_register_validation_errors(api, body, fragment):
    body = {f(k): v for k, v in body.items()}
    assert fragment in post_error(api, body)


def test_validation_order_queue_before_link_before_hints(api):
    body = {"image": TEST_IMAGE, "queue": "nowhere", "link": UNKNOWN_HASHID, "hints": ["[x]"]}
    assert "Invalid queue name" in post_error(api, body)
    body["queue"] = "default"
    assert "Invalid link parameter" in post_error(api, body)
    del body["link"]
    assert "Invalid actor description" in post_error(api, body)


def test_bodies_that_are_not_a_json_object_are_400(api):
    headers = {"Content-Type": "application/json"}
    assert "JSON" in post_error(api, None, data="{not json", headers=headers)
    assert post_error(api, None, data='["image"]', headers=headers)
    assert post_error(api, None, data='"abacosamples/test"', headers=headers)


def test_get_unknown_actor_is_404(api):
    api.call("GET", f"/actors/{UNKNOWN_HASHID}", expect=404)
    api.call("PUT", f"/actors/{UNKNOWN_HASHID}", expect=404, json={"image": TEST_IMAGE})


def test_listing_shows_registered_actor(api, shared_actor):
    listed = api.result("GET", "/actors")
    assert shared_actor["id"] in {a["id"] for a in listed}


# -- update -------------------------------------------------------------------------------------
def test_put_replaces_every_field_and_keeps_identity(api, make_actor):
    actor = make_actor(description="old", hints=["a"], type="bin", webhook="http://127.0.0.1:9/x",
                       **{f("default_environment"): {"K": "V"}, f("max_workers"): 2})
    ready = wait_for_actor_status(api, actor["id"], "READY")
    updated = api.result("PUT", f"/actors/{actor['id']}", json={"image": TEST_IMAGE, "name": "renamed"})
    assert updated["name"] == actor["name"]  # a PUT cannot change the name
    assert updated["id"] == actor["id"] and updated["owner"] == actor["owner"]
    assert updated[f("create_time")] == actor[f("create_time")]
    assert updated[f("last_update_time")] >= actor[f("last_update_time")]
    assert updated["description"] == "" and updated["hints"] == [] and updated["type"] == "none"
    assert updated["webhook"] == "" and updated[f("default_environment")] == {}
    assert updated.get(f("max_workers")) is None
    # same image, no force: the status stays, the status message is reset, no new worker
    assert updated["status"] == ready["status"] == "READY"
    assert updated[f("status_message")] == ""
    assert len(api.result("GET", f"/actors/{actor['id']}/workers")) == 1


def test_put_with_a_new_image_starts_a_new_worker_and_stops_the_old(api, make_actor):
    actor = make_actor()
    wait_for_actor_status(api, actor["id"], "READY")
    [old] = api.result("GET", f"/actors/{actor['id']}/workers")
    updated = api.result("PUT", f"/actors/{actor['id']}", json={"image": OTHER_IMAGE})
    assert updated["status"] == "SUBMITTED" and updated["image"] == OTHER_IMAGE

    def replaced():
        workers = api.result("GET", f"/actors/{actor['id']}/workers")
        return len(workers) == 1 and workers[0]["id"] != old["id"] and workers[0]["status"] == "READY" and workers
    [new] = wait_for(replaced, timeout=60, what="the old worker to be replaced")
    assert new["image"] == OTHER_IMAGE
    wait_for_actor_status(api, actor["id"], "READY")


@pytest.mark.parametrize("force, restarts", [(True, True), ("true", True), ("false", False), (False, False)])
def test_put_force(api, shared_actor, force, restarts):
    updated = api.result("PUT", f"/actors/{shared_actor['id']}", json={"image": TEST_IMAGE, "force": force})
    assert (updated["status"] == "SUBMITTED") is restarts
    wait_for_actor_status(api, shared_actor["id"], "READY")
    wait_for(lambda: len(api.result("GET", f"/actors/{shared_actor['id']}/workers")) == 1, timeout=60,
             what="one worker after the update")


def test_put_validation_errors_are_400(api, shared_actor):
    actor_id = shared_actor["id"]
    assert "image" in put_error(api, actor_id, {"description": "no image"})
    assert "Invalid queue name" in put_error(api, actor_id, {"image": TEST_IMAGE, "queue": "nowhere"})
    assert "Invalid actor description" in put_error(api, actor_id, {"image": TEST_IMAGE, "hints": ["'"]})
    assert "stateless" in put_error(api, actor_id, {"image": TEST_IMAGE, "stateless": "perhaps"})
    assert "cannot link to itself" in put_error(api, actor_id, {"image": TEST_IMAGE, "link": actor_id})
    assert "Invalid link parameter" in put_error(api, actor_id, {"image": TEST_IMAGE, "link": UNKNOWN_HASHID})
    assert api.call("PUT", f"/actors/{actor_id}", expect=400, data="[1, 2]",
                    headers={"Content-Type": "application/json"})
    assert api.result("GET", f"/actors/{actor_id}")["status"] == "READY"  # nothing changed


def test_stateful_actor_stays_stateful(api, make_actor):
    actor = make_actor(stateless=False)
    actor_id = actor["id"]
    assert "image" in put_error(api, actor_id, {"description": "image first"})  # upstream's order
    assert "stateless" in put_error(api, actor_id, {"image": TEST_IMAGE})
    assert "stateless" in put_error(api, actor_id, {"image": TEST_IMAGE, "stateless": True})
    assert "1 worker" in put_error(api, actor_id, {"image": TEST_IMAGE, "stateless": False, f("max_workers"): 2})
    updated = api.result("PUT", f"/actors/{actor_id}", json={"image": TEST_IMAGE, "stateless": False})
    assert updated["stateless"] is False


def test_stateless_actor_may_become_stateful(api, make_actor):
    actor = make_actor()
    updated = api.result("PUT", f"/actors/{actor['id']}", json={"image": TEST_IMAGE, "stateless": False})
    assert updated["stateless"] is False


def test_links_may_not_form_a_cycle(api, make_actor):
    a, b, c = make_actor(), make_actor(), make_actor()
    api.result("PUT", f"/actors/{a['id']}", json={"image": TEST_IMAGE, "link": b["id"]})
    api.result("PUT", f"/actors/{b['id']}", json={"image": TEST_IMAGE, "link": c["id"]})
    assert "cycle" in put_error(api, c["id"], {"image": TEST_IMAGE, "link": a["id"]})
    assert "cycle" in put_error(api, b["id"], {"image": TEST_IMAGE, "link": a["id"]})
    # unlinking b breaks the chain, after which c may link to a
    api.result("PUT", f"/actors/{b['id']}", json={"image": TEST_IMAGE})
    linked = api.result("PUT", f"/actors/{c['id']}", json={"image": TEST_IMAGE, "link": a["id"]})
    assert linked["link"] == a["id"]


def test_link_through_an_alias(api, make_actor):
    target, source = make_actor(), make_actor()
    alias = f"link-{uuid.uuid4().hex[:8]}"
    api.result("POST", "/actors/aliases", json={"alias": alias, f("actor_id"): target["id"]})
    try:
        linked = api.result("PUT", f"/actors/{source['id']}", json={"image": TEST_IMAGE, "link": alias})
        assert linked["link"] == alias
        assert "cycle" in put_error(api, target["id"], {"image": TEST_IMAGE, "link": source["id"]})
    finally:
        api.request("DELETE", f"/actors/aliases/{alias}", expect=None)


# -- with JWT users: permissions that PUT and links involve --------------------------------------
def test_put_by_another_user_grants_them_update(jwt_api, jwt_actor, user_name):
    alice, admin = jwt_api(user_name("alice")), jwt_api(user_name("root"), "admin")
    actor = jwt_actor(alice)
    admin.result("PUT", f"/actors/{actor['id']}", json={"image": TEST_IMAGE, "description": "by admin"})
    permissions = alice.result("GET", f"/actors/{actor['id']}/permissions")
    assert permissions[admin.user] == "UPDATE"
    assert admin.result("GET", f"/actors/{actor['id']}")["owner"] == alice.user


def test_link_requires_execute_on_the_linked_actor(jwt_api, jwt_actor, user_name):
    """Upstream ignored this check's result; we enforce it (see controllers/actors.validate_link)."""
    alice, bob = jwt_api(user_name("alice")), jwt_api(user_name("bob"))
    target = jwt_actor(alice)
    message = bob.call("POST", "/actors", expect=400, json={"image": TEST_IMAGE, "link": target["id"]})["message"]
    assert "Invalid link parameter" in message
    alice.result("POST", f"/actors/{target['id']}/permissions", json={"user": bob.user, "level": "EXECUTE"})
    linked = jwt_actor(bob, link=target["id"])
    assert linked["link"] == target["id"]


# -- utilization --------------------------------------------------------------------------------
def test_utilization_counts_across_tenants_in_camel_case(api, shared_actor):
    result = api.result("GET", "/actors/utilization")
    assert set(result) == {"currentActors", "totalActors", "workers", "commandQueue"}
    assert all(isinstance(v, int) for v in result.values())
    assert result["currentActors"] >= 1 and result["totalActors"] >= 1 and result["workers"] >= 1
