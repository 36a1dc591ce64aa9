"""Delivery guarantees seen from outside: attempts are recorded, and a message whose worker keeps
dying is recorded as failed instead of looping forever."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("ABACO_CONF", str(ROOT / "local-dev.conf"))

from actors.models import Execution  # noqa: E402
from tests.functional.conftest import TENANT, f, wait_for_actor_status, wait_for_execution  # noqa: E402


def test_each_pickup_is_counted(api, make_actor):
    actor = make_actor()
    execution_id = api.result("POST", f"/actors/{actor['id']}/messages", data={"message": "once"})[f("execution_id")]
    execution = wait_for_execution(api, actor["id"], execution_id)
    assert execution["attempts"] == 1
    assert execution[f("exit_code")] == 0


def test_a_message_past_its_attempts_is_recorded_as_failed(api, make_actor):
    # queue "special" has no spawner in local-dev: the message waits in the actor's inbox
    actor = make_actor(queue="special")
    execution_id = api.result("POST", f"/actors/{actor['id']}/messages", data={"message": "doomed"})[f("execution_id")]
    dbid = f"{TENANT}_{actor['id']}"
    Execution.update_fields(dbid, execution_id, attempts=3)  # as if three workers had died running it
    api.result("PUT", f"/actors/{actor['id']}", json={"image": actor["image"], "queue": "default", "force": True})
    wait_for_actor_status(api, actor["id"], "READY")
    execution = wait_for_execution(api, actor["id"], execution_id)
    assert execution[f("exit_code")] == "undetermined"
    assert "Gave up after 3 attempts" in execution[f("final_state")]["Error"]
    assert execution["attempts"] == 3
