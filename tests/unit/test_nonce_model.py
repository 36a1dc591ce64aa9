"""The nonce model: validation, the pure redemption step, and atomic redemption under threads."""
from __future__ import annotations

import threading

import pytest

from actors import codes, stores
from actors.errors import AbacoError, DAOError, NonceNotFound, PermissionsException
from actors.models import Nonce, nonce_tenant
from actors.models.nonce import redeemed, validate_level, validate_max_uses

pytestmark = pytest.mark.unit

KEY = "DEV-DEVELOP_NolBaJ5y6714M"


@pytest.fixture
def nonce_store(store):
    """The store under test stands in for ``stores.nonce_store``."""
    stores._cache["nonce_store"] = store
    yield store
    stores._cache.pop("nonce_store", None)


@pytest.fixture
def threaded_nonce_store(threaded_store):
    stores._cache["nonce_store"] = threaded_store
    yield threaded_store
    stores._cache.pop("nonce_store", None)


def record(level: str = codes.EXECUTE, remaining: int = -1, current: int = 0) -> dict:
    return {"id": "T_x", "level": level, "remaining_uses": remaining, "current_uses": current, "last_use_time": None}


@pytest.mark.parametrize("nonce_id, tenant", [
    ("SD2E_NolBaJ5y6714M", "SD2E"), ("DEV_STAGING_NolBaJ5y6714M", "DEV_STAGING"), ("a_b_c_d", "a_b_c"),
])
def test_tenant_is_everything_before_the_last_underscore(nonce_id, tenant):
    assert nonce_tenant(nonce_id) == tenant


def test_nonce_id_without_tenant_does_not_exist():
    with pytest.raises(PermissionsException, match="Nonce does not exist"):
        nonce_tenant("NolBaJ5y6714M")


@pytest.mark.parametrize("value", [1, 5, -1, 10**6])
def test_valid_max_uses(value):
    assert validate_max_uses(value) == value


@pytest.mark.parametrize("value", [0, -2, -100, "3", 2.5, True, None])
def test_invalid_max_uses(value):
    with pytest.raises(DAOError):
        validate_max_uses(value)


@pytest.mark.parametrize("level", codes.PERMISSION_LEVELS)
def test_valid_levels(level):
    assert validate_level(level) == level


@pytest.mark.parametrize("level", ["read", "ADMIN", "", None, 1])
def test_invalid_levels(level):
    with pytest.raises(DAOError, match="Invalid level"):
        validate_level(level)


def test_unlimited_redemption_counts_and_stamps_time():
    out = redeemed(record(current=4), codes.READ)
    assert (out["current_uses"], out["remaining_uses"]) == (5, -1)
    assert float(out["last_use_time"]) > 0


def test_limited_redemption_decrements_and_stamps_time():
    out = redeemed(record(remaining=2, current=1), codes.EXECUTE)
    assert (out["current_uses"], out["remaining_uses"]) == (2, 1)
    assert float(out["last_use_time"]) > 0  # upstream left it unset for limited nonces


def test_exhausted_nonce_is_refused():
    with pytest.raises(PermissionsException, match="No remaining uses"):
        redeemed(record(remaining=0, current=3), codes.READ)


@pytest.mark.parametrize("level, required, allowed", [
    ("READ", "READ", True), ("READ", "EXECUTE", False), ("EXECUTE", "READ", True), ("EXECUTE", "UPDATE", False),
    ("UPDATE", "UPDATE", True), ("NONE", "READ", False),
])
def test_nonce_level_must_reach_the_required_level(level, required, allowed):
    if allowed:
        redeemed(record(level=level), required)
    else:
        with pytest.raises(PermissionsException, match="level"):
            redeemed(record(level=level), required)


def test_redemption_does_not_mutate_its_input():
    original = record(remaining=1)
    redeemed(original, codes.READ)
    assert original == record(remaining=1)


def test_create_get_list_delete(nonce_store):
    nonce = Nonce.create("DEV-DEVELOP", KEY, "alice", ["Internal/everyone"], "http://api", actor_id="NolBaJ5y6714M",
                         level="READ", max_uses=3)
    assert nonce["id"].startswith("DEV-DEVELOP_")
    assert Nonce.get(KEY, nonce["id"]) == nonce
    assert Nonce.list(KEY) == [nonce]
    Nonce.delete(KEY, nonce["id"])
    assert Nonce.list(KEY) == []
    with pytest.raises(NonceNotFound, match="Nonce not found"):
        Nonce.delete(KEY, nonce["id"])
    with pytest.raises(NonceNotFound, match="Nonce not found"):
        Nonce.delete("DEV-DEVELOP_nothing", nonce["id"])


def test_failed_redemption_writes_nothing(nonce_store):
    nonce = Nonce.create("T", KEY, "alice", [], "http://api", level="READ", max_uses=1)
    with pytest.raises(PermissionsException):
        Nonce.redeem(KEY, nonce["id"], codes.UPDATE)
    assert Nonce.get(KEY, nonce["id"]) == nonce
    with pytest.raises(PermissionsException, match="Nonce does not exist"):
        Nonce.redeem(KEY, "T_unknown", codes.READ)
    with pytest.raises(PermissionsException, match="Nonce does not exist"):
        Nonce.redeem("T_other", nonce["id"], codes.READ)


def test_concurrent_redemptions_never_overspend(threaded_nonce_store):
    max_uses, threads_count = 7, 24
    nonce = Nonce.create("T", KEY, "alice", [], "http://api", level="READ", max_uses=max_uses)
    # a second nonce under the same key is written concurrently and must not be lost
    other = Nonce.create("T", KEY, "bob", [], "http://api", level="READ")
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(threads_count)

    def work(i: int):
        start.wait()
        nonce_id = nonce["id"] if i % 3 else other["id"]
        try:
            Nonce.redeem(KEY, nonce_id, codes.READ)
            result = "ok" if nonce_id == nonce["id"] else "other"
        except AbacoError as e:
            result = e.message
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    limited_attempts = sum(1 for i in range(threads_count) if i % 3)
    assert outcomes.count("ok") == max_uses
    assert outcomes.count("No remaining uses left for this nonce.") == limited_attempts - max_uses
    final = Nonce.get(KEY, nonce["id"])
    assert (final["current_uses"], final["remaining_uses"]) == (max_uses, 0)
    assert Nonce.get(KEY, other["id"])["current_uses"] == outcomes.count("other")
