"""Execution records are found only under their own actor (item 5): the key
``<actor dbid>_<execution id>`` alone could name another tenant's execution when a tenant is called
``<tenant>_<actor id>`` and the requested "execution id" holds a ``_``."""
from __future__ import annotations

import pytest

from actors import migrations, stores
from actors.errors import ExecutionNotFound
from actors.models import Execution, layout

pytestmark = pytest.mark.unit


@pytest.fixture
def executions(model_stores):
    layout.forget()
    stores.index_store.flush()  # records written directly below: the layout before the index
    return stores.executions_store


def test_lookup_and_listing_keep_to_the_actor(executions):
    # tenant "DEV_NolBaJ5y6714M", actor pv56BOOjwxkA6, execution Ezz1: a record of another tenant
    other = {"id": "Ezz1", "actor_id": "DEV_NolBaJ5y6714M_pv56BOOjwxkA6", "message_received_time": "1"}
    executions[Execution.key(other["actor_id"], "Ezz1")] = other
    mine = {"id": "Emine", "actor_id": "DEV_NolBaJ5y6714M", "message_received_time": "2"}
    executions[Execution.key(mine["actor_id"], "Emine")] = mine

    with pytest.raises(ExecutionNotFound, match="not found"):
        Execution.get("DEV_NolBaJ5y6714M", "pv56BOOjwxkA6_Ezz1")  # the same key as the other record
    assert Execution.get("DEV_NolBaJ5y6714M", "Emine") == mine
    assert [r["id"] for r in Execution.list("DEV_NolBaJ5y6714M")] == ["Emine"]  # by scanning
    migrations.index_executions()
    assert [r["id"] for r in Execution.list("DEV_NolBaJ5y6714M")] == ["Emine"]  # from the index
