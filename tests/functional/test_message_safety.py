"""A message cannot harm the actor it is sent to (items 6, 10, 11 and 12).

A sender with only EXECUTE once put someone else's actor in ERROR with one message whose container
could not be created (a NUL in a query parameter, an empty variable name, a message too large for
the environment): every attempt failed and the worker gave up on the actor. Such messages are now
refused at POST, naming the parameter; a container failure that still happens fails that execution
only, with a final_state that says why. Stored fields have size limits (413) and repeated form
fields are refused.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("ABACO_CONF", str(Path(__file__).resolve().parents[2] / "local-dev.conf"))

from actors import channels, codes  # noqa: E402
from tests.functional.conftest import TEST_IMAGE, f, wait_for_actor_status, wait_for_execution  # noqa: E402
from tests.rabbit import queue_exists  # noqa: E402

JWT_TENANT = "DEV-DEVELOP"  # the tenant of the jwt_api clients


@pytest.fixture
def shared_actor(alice, bob, jwt_actor):
    """An actor of ``owner`` on which ``sender`` has EXECUTE only, with a READY worker."""
    actor = jwt_actor(alice)
    alice.result("POST", f"/actors/{actor['id']}/permissions", json={"user": bob.user, "level": "EXECUTE"})
    wait_for_actor_status(alice, actor["id"], "READY")
    return actor


def messages_path(actor: dict) -> str:
    return f"/actors/{actor['id']}/messages"


def runs_fine(alice, actor: dict) -> None:
    """The actor is READY and still runs a message to COMPLETE with exit code 0."""
    execution_id = alice.result("POST", messages_path(actor), data={"message": "still fine"})[f("execution_id")]
    execution = wait_for_execution(alice, actor["id"], execution_id)
    assert execution[f("exit_code")] == 0
    assert alice.result("GET", f"/actors/{actor['id']}")["status"] == "READY"


@pytest.mark.parametrize("query, fragment", [
    ("A%00B=1", "NUL"),
    ("=v", "needs a name"),
    ("A=x%00y", "NUL"),
    ("A%3DB=1", "'='"),
], ids=["nul-in-name", "empty-name", "nul-in-value", "equals-in-name"])
def test_query_parameters_no_container_can_take_are_refused(bob, alice, shared_actor, query, fragment):
    before = alice.result("GET", f"/actors/{shared_actor['id']}/executions")[f("total_executions")]
    response = bob.call("POST", f"{messages_path(shared_actor)}?{query}", data={"message": "m"}, expect=400)
    assert fragment in response["message"] and "query parameter" in response["message"], response
    assert alice.result("GET", f"/actors/{shared_actor['id']}/executions")[f("total_executions")] == before
    runs_fine(alice, shared_actor)


@pytest.mark.parametrize("body, fragment", [
    ({"message": "a\u0000b"}, "NUL"),
    ({"message": "x" * 150_000}, "max_message_size"),
], ids=["nul", "too-large"])
def test_messages_no_container_can_take_are_refused(bob, alice, shared_actor, body, fragment):
    response = bob.request("POST", messages_path(shared_actor), json=body, expect=None)
    assert response.status_code in (400, 413) and fragment in response.json()["message"], response.text
    runs_fine(alice, shared_actor)


def test_a_message_too_large_is_413_with_the_limit(bob, shared_actor):
    response = bob.call("POST", messages_path(shared_actor), json={"message": "x" * 128_001}, expect=413)
    assert "128000" in response["message"]
    # a JSON message counts by its encoding
    response = bob.call("POST", messages_path(shared_actor), json={"k": "y" * 128_000}, expect=413)
    assert "limit" in response["message"]


def test_a_container_failure_caused_by_one_message_fails_that_execution_only(alice, shared_actor):
    """A message that reaches the worker anyway (queued before the check existed, or by another
    producer) and that Docker refuses: its execution ends with the real reason; the actor stays READY."""
    from actors.models import Actor, Execution

    record = Actor.get(f"{JWT_TENANT}_{shared_actor['id']}")
    execution = Execution.create(record, "someone")
    channels.ActorMsgChannel(record["db_id"]).put_msg("bad", {
        "A\u0000B": "1", "_abaco_execution_id": execution["id"], "_abaco_Content_Type": codes.CONTENT_STR,
        "_abaco_username": "someone", "_abaco_api_server": record["api_server"]})
    failed = wait_for_execution(alice, shared_actor["id"], execution["id"])
    assert "environment variable" in failed[f("final_state")]["Error"], failed
    assert "lost" not in failed[f("final_state")]["Error"]
    assert failed[f("exit_code")] == "undetermined"
    runs_fine(alice, shared_actor)


# -- sizes (item 12) -------------------------------------------------------------------------------
def test_a_description_over_the_limit_is_413(alice, jwt_actor):
    response = alice.call("POST", "/actors", json={"image": TEST_IMAGE, "description": "d" * 16_385}, expect=413)
    assert "16384" in response["message"] and "max_description_size" in response["message"]
    alice.call("POST", "/actors", json={"image": TEST_IMAGE, "description": "d" * 20_000_000}, expect=413)
    actor = jwt_actor(alice, description="d" * 16_384)  # the limit itself is fine
    assert len(actor["description"]) == 16_384
    response = alice.call("POST", f"/actors/{actor['id']}/nonces", json={"description": "n" * 16_385}, expect=413)
    assert "16384" in response["message"]


def test_state_over_the_limit_is_413(alice, jwt_actor):
    actor = jwt_actor(alice, stateless=False)
    path = f"/actors/{actor['id']}/state"
    response = alice.call("POST", path, json={"blob": "s" * 128_000}, expect=413)
    assert "max_state_size" in response["message"]
    alice.call("POST", path, json={"blob": "s" * 20_000_000}, expect=413)
    assert alice.result("GET", path) == {"state": {}}
    alice.call("POST", path, json={"blob": "s" * 1000})


def test_default_environment_is_checked_like_the_container_will(alice):
    for env, fragment in (({"": "v"}, "needs a name"), ({"A=B": "v"}, "'='"), ({"BIG": "x" * 140_000}, "bytes")):
        response = alice.call("POST", "/actors", json={"image": TEST_IMAGE, f("default_environment"): env}, expect=400)
        assert fragment in response["message"]


# -- numbers and repeated fields (items 10, 11) -------------------------------------------------
@pytest.mark.parametrize("role", ["user", "admin"])
@pytest.mark.parametrize("fields", [
    {"max_workers": "inf"}, {"max_workers": "-inf"}, {"max_cpus": "1e400"}, {"max_workers": "nan"},
    {"max_cpus": str(2**70)},
])
def test_numbers_that_do_not_fit_are_400s(jwt_api, user_name, role, fields):
    client = jwt_api(user_name(role), role)
    before = len(client.result("GET", "/actors"))
    data = {"image": TEST_IMAGE, **{f(k): v for k, v in fields.items()}}
    response = client.call("POST", "/actors", data=data, expect=400)
    assert response["message"]
    assert len(client.result("GET", "/actors")) == before


@pytest.mark.parametrize("role", ["user", "admin"])
def test_a_field_given_twice_is_refused(jwt_api, user_name, role):
    client = jwt_api(user_name(role), role)
    body = f"image={TEST_IMAGE}&{f('mem_limit')}=&{f('mem_limit')}=100g"
    response = client.call("POST", "/actors", data=body,
                           headers={"Content-Type": "application/x-www-form-urlencoded"}, expect=400)
    assert "given 2 times" in response["message"]
    response = client.call("POST", f"/actors?{f('mem_limit')}=1g", data={"image": TEST_IMAGE, f("mem_limit"): "2g"},
                           expect=400)
    assert "given twice" in response["message"]


def test_repeated_hints_in_a_form_are_a_list(alice, jwt_actor):
    actor = alice.result("POST", "/actors", data=[("image", TEST_IMAGE), ("hints", "a"), ("hints", "b")])
    try:
        assert actor["hints"] == ["a", "b"]
    finally:
        alice.call("DELETE", f"/actors/{actor['id']}")


def test_a_query_parameter_given_twice_in_a_message_is_refused(bob, shared_actor):
    response = bob.call("POST", f"{messages_path(shared_actor)}?x=1&x=2", data={"message": "m"}, expect=400)
    assert "'x'" in response["message"]


# -- results of executions that do not exist (item 10) -------------------------------------------
def test_results_of_an_unknown_execution_is_404_and_makes_no_queue(alice, shared_actor):
    for execution_id in ("x" * 300, f"nothere{uuid.uuid4().hex[:6]}"):
        response = alice.call("GET", f"/actors/{shared_actor['id']}/executions/{execution_id}/results", expect=404)
        assert "not found" in response["message"]
    dbid = f"{JWT_TENANT}_{shared_actor['id']}"
    assert not queue_exists(channels.results_queue_name(dbid, execution_id))
