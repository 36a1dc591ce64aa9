"""Configuration: file discovery, env overrides, typed getters, the boolean rule."""
from __future__ import annotations

import pytest

from actors import config
from actors.config import Config, ConfigError, parse_bool

pytestmark = pytest.mark.unit

SAMPLE = """
[web]
case: camel
max_content_length: 1000
show_traceback: False
accept_nonce: yes
[spawner]
host_queues: default, special ,
[workers]
init_count: 2
mem_limit: 1.5
"""


@pytest.fixture
def conf_file(tmp_path):
    path = tmp_path / "abaco.conf"
    path.write_text(SAMPLE)
    return str(path)


def test_reads_values_and_types(conf_file):
    c = Config(conf_file, environ={})
    assert c.get("web", "case") == "camel"
    assert c.get_int("web", "max_content_length") == 1000
    assert c.get_int("workers", "init_count") == 2
    assert c.get_float("workers", "mem_limit") == 1.5
    assert c.get_list("spawner", "host_queues") == ["default", "special"]
    assert c.get_bool("web", "show_traceback") is False
    assert c.get_bool("web", "accept_nonce") is True


def test_missing_option_raises_unless_default(conf_file):
    c = Config(conf_file, environ={})
    with pytest.raises(ConfigError, match=r"\[web\] nope"):
        c.get("web", "nope")
    assert c.get("web", "nope", "d") == "d"
    assert c.get_int("nosection", "x", 7) == 7
    assert c.get_bool("web", "nope", True) is True


def test_environment_overrides_file(conf_file):
    c = Config(conf_file, environ={"web_case": "snake", "workers_init_count": "0"})
    assert c.get("web", "case") == "snake"
    assert c.get_int("workers", "init_count") == 0


def test_env_overrides_lists_only_known_sections(conf_file):
    c = Config(conf_file, environ={"web_case": "snake", "PATH": "/bin", "other_x": "1"})
    assert c.env_overrides() == {"web_case": "snake"}


@pytest.mark.parametrize("text", ["true", "True", "YES", "on", "1", " true "])
def test_bool_true(text):
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["false", "False", "NO", "off", "0"])
def test_bool_false(text):
    assert parse_bool(text) is False


def test_bool_rejects_other_text(conf_file):
    with pytest.raises(ConfigError):
        parse_bool("maybe")
    c = Config(conf_file, environ={"web_show_traceback": "sometimes"})
    with pytest.raises(ConfigError, match="show_traceback"):
        c.get_bool("web", "show_traceback")


def test_bad_int_names_the_option(conf_file):
    c = Config(conf_file, environ={"workers_init_count": "many"})
    with pytest.raises(ConfigError, match="init_count"):
        c.get_int("workers", "init_count")


def test_find_config_file_prefers_abaco_conf(conf_file, monkeypatch):
    monkeypatch.setenv("ABACO_CONF", conf_file)
    assert config.find_config_file() == conf_file
    monkeypatch.setenv("ABACO_CONF", conf_file + ".missing")
    with pytest.raises(ConfigError, match="ABACO_CONF"):
        config.find_config_file()


def test_shipped_configs_parse():
    for name in ("local-dev.conf", "abaco.conf"):
        c = Config(name, environ={})
        assert c.get("web", "access_control") in ("none", "jwt")
        assert c.get_list("spawner", "host_queues")


def test_upstream_password_names_are_read(conf_file):
    """upstream's deployments export redis_password / mongo_password; store_<option> still wins, and
    an empty value (what upstream's compose files pass when there is none) counts as unset."""
    assert Config(conf_file, environ={"redis_password": "r", "mongo_password": "m"}).get("store", "redis_password") == "r"
    assert Config(conf_file, environ={"mongo_password": "m"}).get("store", "mongo_password") == "m"
    both = Config(conf_file, environ={"redis_password": "r", "store_redis_password": "s"})
    assert both.get("store", "redis_password") == "s"
    assert Config(conf_file, environ={"redis_password": ""}).get("store", "redis_password", "file") == "file"


def test_workers_are_handed_the_upstream_password_names(conf_file):
    c = Config(conf_file, environ={"redis_password": "r", "mongo_password": "", "web_case": "snake"})
    assert c.env_overrides() == {"redis_password": "r", "web_case": "snake"}


def test_host_id_from_env_then_file(monkeypatch, tmp_path):
    path = tmp_path / "c.conf"
    path.write_text("[spawner]\nhost_id: compute-1\n")
    monkeypatch.delenv("SPAWNER_HOST_ID", raising=False)
    monkeypatch.setattr(config, "_config", Config(str(path)))
    assert config.host_id() == "compute-1"
    monkeypatch.setenv("SPAWNER_HOST_ID", "compose")
    assert config.host_id() == "compose"
