"""Pure parts of authentication and authorization: the privileged-field guard, permission checks,
alias validation (JWTs: test_auth.py)."""
from __future__ import annotations

import pytest

from actors import codes
from actors.controllers.authz import privileged_field_violation, sets_value
from actors.errors import DAOError
from actors.models.alias import validate_alias_text, validate_alias_words
from actors.models.permission import grants, validate_level

pytestmark = pytest.mark.unit


# -- privileged-field guard ---------------------------------------------------------------------
@pytest.mark.parametrize("kind, value, expected", [
    ("bool", True, True), ("bool", "true", True), ("bool", "TRUE", True), ("bool", "1", True), ("bool", 1, True),
    ("bool", "yes", True),  # the parser refuses it; the guard fails closed
    ("bool", False, False), ("bool", "false", False), ("bool", "False", False), ("bool", "0", False),
    ("bool", 0, False), ("bool", None, False), ("bool", "", False),
    ("int", 2, True), ("int", "2", True), ("int", "many", True), ("int", 0, False), ("int", "0", False),
    ("int", None, False), ("int", False, False),
    ("int", "inf", True), ("int", "-inf", True), ("int", "1e400", True), ("int", "nan", True),  # were 500s
    ("text", "1g", True), ("text", "default", True), ("text", "0", True), ("text", 0, True),
    ("text", "", False), ("text", None, False),
])
def test_sets_value(kind, value, expected):
    assert sets_value(kind, value) is expected


@pytest.mark.parametrize("data, fragment", [
    ({"privileged": True}, "privileged actors"),
    ({"max_workers": 3}, "max workers"), ({"maxWorkers": 3}, "max workers"),
    ({"max_cpus": 3}, "max CPUs"), ({"maxCpus": "3"}, "max CPUs"),
    ({"mem_limit": "2g"}, "mem limit"), ({"memLimit": "2g"}, "mem limit"),
    ({"queue": "default"}, "set queue"),
])
def test_guard_names_the_field(data, fragment):
    assert fragment in privileged_field_violation(data, tas_uid=False)


def test_guard_allows_unset_fields():
    data = {"image": "x", "privileged": "false", "max_workers": None, "maxCpus": 0, "queue": "", "stateless": True}
    assert privileged_field_violation(data, tas_uid=False) is None


def test_container_uid_is_guarded_only_with_tas():
    assert privileged_field_violation({"use_container_uid": True}, tas_uid=False) is None
    assert "container uid" in privileged_field_violation({"useContainerUid": "true"}, tas_uid=True)


# -- permission checks --------------------------------------------------------------------------
@pytest.mark.parametrize("permissions, user, level, expected", [
    ({"alice": "UPDATE"}, "alice", "UPDATE", True),
    ({"alice": "READ"}, "alice", "EXECUTE", False),
    ({"alice": "EXECUTE"}, "alice", "READ", True),
    ({"alice": "NONE"}, "alice", "READ", False),
    ({"alice": "UPDATE"}, "bob", "READ", False),
    ({"ABACO_WORLD": "READ"}, "bob", "READ", True),
    ({"ABACO_WORLD": "READ", "alice": "UPDATE"}, "bob", "UPDATE", False),  # upstream: True
    ({"ABACO_WORLD": "READ", "bob": "UPDATE"}, "bob", "UPDATE", True),
    ({"bob": "NONE", "ABACO_WORLD": "EXECUTE"}, "bob", "EXECUTE", True),
    ({}, "alice", "NONE", False),
])
def test_grants(permissions, user, level, expected):
    assert grants(permissions, user, level) is expected


@pytest.mark.parametrize("level", ["read", "ALL", "", None])
def test_invalid_permission_level(level):
    with pytest.raises(DAOError, match="Invalid permission level"):
        validate_level(level)


# -- alias rules --------------------------------------------------------------------------------
@pytest.mark.parametrize("alias", ["NolBaJ5y6714M", "pv56BOOjwxkA6"])
def test_alias_may_not_be_a_hashid(alias):
    with pytest.raises(DAOError, match="actor id"):
        validate_alias_text(alias)


@pytest.mark.parametrize("alias", codes.RESERVED_ALIAS_WORDS)
def test_reserved_words(alias):
    with pytest.raises(DAOError, match="reserved"):
        validate_alias_words(alias)


@pytest.mark.parametrize("ch", list(codes.FORBIDDEN_ALIAS_CHARS))
def test_forbidden_characters(ch):
    with pytest.raises(DAOError, match="forbidden"):
        validate_alias_words(f"a{ch}b")


@pytest.mark.parametrize("alias", ["my-actor", "my_actor.v2", "admins-tool", "UPPER-lower-123"])
def test_good_aliases(alias):
    validate_alias_text(alias)
    validate_alias_words(alias)
