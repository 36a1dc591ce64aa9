"""The alias key migration (item 5): records written under ``<TENANT>_<alias>`` move to
``<TENANT>:<alias>`` with their permissions and nonces; an old alias key that collided with another
tenant's actor gives that actor its permissions and nonces back. Runs against real Redis, each named
store in a logical database of its own (as in a deployment), so colliding keys stay apart."""
from __future__ import annotations

import os

import pytest

from actors import codes, migrations, stores
from actors.models import Alias, Nonce, Permission, layout
from actors.store import RedisIndex, RedisStore

pytestmark = pytest.mark.unit

NAMES = {"actors_store": 12, "alias_store": 13, "permissions_store": 14, "nonce_store": 15}
VICTIM_ACTOR = "DEV_STAGING_NolBaJ5y6714M"  # tenant DEV_STAGING, actor NolBaJ5y6714M


@pytest.fixture
def named_stores():
    host = os.environ.get("ABACO_TEST_REDIS_HOST", "127.0.0.1")
    port = int(os.environ.get("ABACO_TEST_REDIS_PORT", "6379"))
    made = {name: RedisStore(host, port, db) for name, db in NAMES.items()}
    made["index_store"] = RedisIndex(host, port, NAMES["nonce_store"])
    for store in made.values():
        store.flush()
    stores._cache.update(made)
    layout.forget()
    yield made
    for name, store in made.items():
        store.flush()
        store.close()
        stores._cache.pop(name, None)
    layout.forget()


def old_alias(tenant: str, alias: str, actor_id: str, owner: str) -> str:
    """Write an alias the way the old layout did; returns its old key."""
    key = f"{tenant}_{alias}"
    stores.alias_store[key] = {"alias": alias, "alias_id": key, "actor_id": actor_id, "db_id": f"{tenant}_{actor_id}",
                               "tenant": tenant, "owner": owner, "api_server": "http://127.0.0.1:8000"}
    return key


def nonce(nonce_id: str, key: str, **fields) -> dict:
    return {"id": nonce_id, "db_id": key, "owner": "someone", "level": "EXECUTE", **fields}


def test_a_plain_alias_moves_with_its_permissions_and_nonces(named_stores):
    key = old_alias("SD2E", "my_tool", "pv56BOOjwxkA6", "jane")
    stores.permissions_store[key] = {"jane": codes.UPDATE, "joe": codes.READ}
    stores.nonce_store[key] = {"SD2E_n1": nonce("SD2E_n1", key, alias="my_tool")}

    assert migrations.migrate_alias_keys() == 1

    assert key not in stores.alias_store and key not in stores.permissions_store and key not in stores.nonce_store
    record = Alias.get("SD2E", "my_tool")
    assert record["alias_id"] == "SD2E:my_tool" and record["actor_id"] == "pv56BOOjwxkA6"
    assert Permission.get("SD2E:my_tool") == {"jane": codes.UPDATE, "joe": codes.READ}
    assert [n["db_id"] for n in Nonce.list("SD2E:my_tool")] == ["SD2E:my_tool"]
    assert migrations.migrate_alias_keys() == 0  # nothing left: a second run changes nothing


def test_an_alias_that_collided_with_another_tenants_actor_gives_it_back(named_stores):
    # DEV's mallory made the alias STAGING_NolBaJ5y6714M: under the old layout its key was the db id
    # of DEV_STAGING's actor NolBaJ5y6714M, so she was granted UPDATE on that actor and her alias
    # nonces sat beside the actor's
    stores.actors_store[VICTIM_ACTOR] = {"db_id": VICTIM_ACTOR, "owner": "victim", "tenant": "DEV_STAGING"}
    key = old_alias("DEV", "STAGING_NolBaJ5y6714M", "pv56BOOjwxkA6", "mallory")
    assert key == VICTIM_ACTOR
    stores.permissions_store[key] = {"victim": codes.UPDATE, "mallory": codes.UPDATE}
    stores.nonce_store[key] = {
        "DEV_STAGING_v1": nonce("DEV_STAGING_v1", key, actor_id="NolBaJ5y6714M"),
        "DEV_m1": nonce("DEV_m1", key, alias="STAGING_NolBaJ5y6714M", actor_id=None),
    }

    assert migrations.migrate_alias_keys() == 1

    assert Permission.get(VICTIM_ACTOR) == {"victim": codes.UPDATE}
    assert Permission.get("DEV:STAGING_NolBaJ5y6714M") == {"mallory": codes.UPDATE}
    assert set(stores.nonce_store[VICTIM_ACTOR]) == {"DEV_STAGING_v1"}
    assert set(stores.nonce_store["DEV:STAGING_NolBaJ5y6714M"]) == {"DEV_m1"}
    assert stores.actors_store[VICTIM_ACTOR]["owner"] == "victim"
    assert Alias.find("DEV", "STAGING_NolBaJ5y6714M")["db_id"] == "DEV_pv56BOOjwxkA6"
    assert Alias.find("DEV_STAGING", "NolBaJ5y6714M") is None


def test_an_interrupted_move_is_completed_without_losing_or_doubling_anything(named_stores):
    key = old_alias("SD2E", "half_moved", "pv56BOOjwxkA6", "jane")
    stores.permissions_store[key] = {"jane": codes.UPDATE}
    stores.nonce_store[key] = {"SD2E_n1": nonce("SD2E_n1", key, alias="half_moved")}
    # a run that died after copying the record and the permissions, before the rest
    stores.alias_store["SD2E:half_moved"] = {**stores.alias_store[key], "alias_id": "SD2E:half_moved"}
    stores.permissions_store["SD2E:half_moved"] = {"jane": codes.UPDATE, "joe": codes.EXECUTE}

    assert migrations.migrate_alias_keys() == 1

    assert list(stores.alias_store.keys()) == ["SD2E:half_moved"]
    assert Permission.get("SD2E:half_moved") == {"jane": codes.UPDATE, "joe": codes.EXECUTE}
    assert list(stores.nonce_store["SD2E:half_moved"]) == ["SD2E_n1"]


def test_new_keys_are_injective_across_tenants_that_share_a_prefix():
    from actors.models import alias_id_of, dbid_of

    pairs = [("DEV", "STAGING_x"), ("DEV_STAGING", "x"), ("DEV_", "STAGING_x"), ("DEV", "_STAGING_x")]
    keys = {alias_id_of(t, a) for t, a in pairs}
    assert len(keys) == len(pairs)
    assert not keys & {dbid_of("DEV_STAGING", "x"), dbid_of("DEV", "STAGING_x")}


def test_ensure_current_runs_once_per_process(named_stores, monkeypatch):
    monkeypatch.setattr(migrations, "_done", False)
    old_alias("SD2E", "first", "pv56BOOjwxkA6", "jane")
    migrations.ensure_current()
    assert Alias.find("SD2E", "first") is not None
    old_alias("SD2E", "second", "pv56BOOjwxkA6", "jane")  # written after this process migrated
    migrations.ensure_current()
    assert Alias.find("SD2E", "second") is None
