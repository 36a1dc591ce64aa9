"""The state API of stateful actors."""
from __future__ import annotations

import uuid

import pytest

from tests.functional.conftest import TEST_IMAGE, f, wait_for_execution

FALSY_BODIES = ["{}", "[]", '""', "0", "false", "null"]


@pytest.fixture(scope="module")
def stateful(api):
    actor = api.result("POST", "/actors", json={"image": TEST_IMAGE, "stateless": False,
                                                "name": f"stateful-{uuid.uuid4().hex[:6]}"})
    yield actor
    api.request("DELETE", f"/actors/{actor['id']}", expect=None)


def state_of(api, actor_id: str):
    return api.result("GET", f"/actors/{actor_id}/state")["state"]


def post_state(api, actor_id: str, body: str, expect: int = 200, content_type: str = "application/json") -> dict:
    return api.call("POST", f"/actors/{actor_id}/state", expect=expect, data=body,
                    headers={"Content-Type": content_type})


def test_new_stateful_actor_has_empty_state(api, stateful):
    assert state_of(api, stateful["id"]) == {}


@pytest.mark.parametrize("value", [{"count": 1, "nested": {"a": [1, 2]}}, [1, "two"], "text", 42, True])
def test_any_truthy_json_value_replaces_the_state(api, stateful, value):
    actor = api.result("POST", f"/actors/{stateful['id']}/state", json=value)
    assert actor["id"] == stateful["id"] and actor["state"] == value  # the whole actor comes back
    assert state_of(api, stateful["id"]) == value


@pytest.mark.parametrize("body", FALSY_BODIES)
def test_falsy_json_is_rejected(api, stateful, body):
    message = post_state(api, stateful["id"], body, expect=400)["message"]
    assert "state must be JSON serializable" in message


def test_bodies_that_are_not_json_are_rejected(api, stateful):
    assert post_state(api, stateful["id"], "{broken", expect=400)
    assert post_state(api, stateful["id"], "a=1", expect=400, content_type="application/x-www-form-urlencoded")
    assert post_state(api, stateful["id"], '{"a": 1}', expect=400, content_type="text/plain")
    assert api.call("POST", f"/actors/{stateful['id']}/state", expect=400)  # no body at all


def test_execution_sees_the_state(api, stateful):
    api.result("POST", f"/actors/{stateful['id']}/state", json={"seen": "yes"})
    execution_id = api.result("POST", f"/actors/{stateful['id']}/messages", data={"message": "state?"})[f("execution_id")]
    wait_for_execution(api, stateful["id"], execution_id)
    logs = api.result("GET", f"/actors/{stateful['id']}/executions/{execution_id}/logs")["logs"]
    assert "_abaco_actor_state={'seen': 'yes'}" in logs


def test_update_keeps_the_state_unless_the_body_sets_it(api, stateful):
    """Upstream reset the state to {} on every PUT; we keep it (a PUT must not lose data)."""
    api.result("POST", f"/actors/{stateful['id']}/state", json={"kept": 1})
    updated = api.result("PUT", f"/actors/{stateful['id']}", json={"image": TEST_IMAGE, "stateless": False})
    assert updated["state"] == {"kept": 1}
    updated = api.result("PUT", f"/actors/{stateful['id']}",
                         json={"image": TEST_IMAGE, "stateless": False, "state": {"from": "put"}})
    assert updated["state"] == {"from": "put"}


def test_stateless_actor_has_no_state_to_set(api, make_actor):
    actor = make_actor()
    message = api.call("POST", f"/actors/{actor['id']}/state", expect=404, json={"a": 1})["message"]
    assert "actor is stateless" in message
    assert state_of(api, actor["id"]) == {}  # reading is allowed, as upstream


def test_state_of_unknown_actor_is_404(api):
    api.call("GET", "/actors/NolBaJ5y6714M/state", expect=404)
    api.call("POST", "/actors/NolBaJ5y6714M/state", expect=404, json={"a": 1})
