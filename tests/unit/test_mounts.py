"""Mount specs from the configuration, with user-controlled tokens substituted."""
from __future__ import annotations

import pytest

from actors.mounts import parse_mount_specs

pytestmark = pytest.mark.unit


def test_parses_and_substitutes_tokens():
    mounts = parse_mount_specs("/data/{tenant_id}/{username}:/work:rw, /ro:/ro:ro", "jdoe", "SD2E", None)
    assert mounts == [
        {"host_path": "/data/SD2E/jdoe", "container_path": "/work", "mode": "rw"},
        {"host_path": "/ro", "container_path": "/ro", "mode": "ro"},
    ]


@pytest.mark.parametrize("username", ["../../etc", "..", "a/../../root"])
def test_a_username_cannot_escape_the_host_folder(username):
    assert parse_mount_specs("/data/{username}:/work:rw", username, "T", None) == []


@pytest.mark.parametrize("spec", ["relative:/x:ro", "/x:relative:ro", "/x:/y:rwx", "/x:/y", "/x:/y:ro:extra", "/a/../b:/c:ro"])
def test_malformed_or_escaping_specs_are_skipped(spec):
    assert parse_mount_specs(spec, "u", "T", None) == []


def test_tasdir_mount_needs_a_tasdir():
    assert parse_mount_specs("{tasdir}:/home:rw", "u", "T", None) == []
    assert parse_mount_specs("{tasdir}:/home:rw", "u", "T", "/home/u") == [
        {"host_path": "/home/u", "container_path": "/home", "mode": "rw"}]
