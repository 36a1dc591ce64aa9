"""docs/configuration.md lists exactly the options the code reads: every `[section] option` read by
the Python code (found in its source) or by the scripts is in the table, and every option of the
table is read somewhere, so the document cannot drift from the code in either direction."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from actors.controllers.base import SIZE_LIMITS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = {"general", "logs", "store", "rabbit", "spawner", "docker", "tenants", "workers", "worker", "health",
            "events", "web"}
GETTERS = {"get", "get_int", "get_float", "get_bool", "get_list", "has", "config_flag"}
ROW = re.compile(r"^\| `\[(\w+)\] ([^`]+)` \|", re.M)

# read under a name the code builds (a loop or a tenant prefix), or kept for upstream's files
READ_INDIRECTLY = {
    ("web", "default_token"): "controllers/actors.default_token, with <TENANT>_default_token",
    ("workers", "actor_uid"): "mounts.container_identity, with a tenant prefix",
    ("workers", "actor_gid"): "mounts.container_identity, with a tenant prefix",
    ("workers", "actor_homedir"): "mounts.container_identity, with a tenant prefix",
    ("workers", "generate_clients"): "upstream's option, accepted and documented as not acted on",
    ("tenants", "default"): "models.common.api_server_for",
    ("store", "index_store"): "stores.backend_of, like every [store] <store name>",
}


def documented() -> set[tuple[str, str]]:
    return set(ROW.findall((ROOT / "docs" / "configuration.md").read_text()))


def read_by_python() -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / "actors").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            section, option = node.args[0], node.args[1]
            if (name in GETTERS and isinstance(section, ast.Constant) and section.value in SECTIONS
                    and isinstance(option, ast.Constant) and isinstance(option.value, str)):
                found.add((section.value, option.value))
    found |= {("web", option) for option in SIZE_LIMITS}  # read through check_size(option, ...)
    return found


def read_by_scripts() -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / "scripts").glob("*.sh"):
        found |= set(re.findall(r"conf_value (\w+) (\w+)\)", path.read_text()))
    return found


def test_every_option_the_code_reads_is_documented():
    missing = sorted((read_by_python() | read_by_scripts()) - documented())
    assert not missing, f"options read but not in docs/configuration.md: {missing}"


def test_every_documented_option_is_read():
    patterns = {(s, o) for s, o in documented() if "<" in o}
    stale = sorted(documented() - patterns - read_by_python() - read_by_scripts() - set(READ_INDIRECTLY))
    assert not stale, f"docs/configuration.md lists options nothing reads: {stale}"


def test_abaco_conf_sets_only_documented_options():
    """abaco.conf, the commented example of every option, names no option the table lacks."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(ROOT / "abaco.conf")
    table = documented()
    patterns = {(s, o.split("<", 1)[0]) for s, o in table if "<" in o}
    unknown = [(s, o) for s in parser.sections() for o in parser[s]
               if (s, o) not in table and not (s == "tenants") and not (s == "store" and o.endswith(("_store", "clients")))
               and not any(s == ps and o.startswith(prefix) for ps, prefix in patterns)]
    assert not unknown, f"abaco.conf sets options docs/configuration.md does not list: {unknown}"
