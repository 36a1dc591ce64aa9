"""The one home of Abaco's configuration.

Configuration is an INI file (upstream's ``abaco.conf`` format, every option keeps upstream's name).
The file is found, in order, at ``$ABACO_CONF``, ``/service.conf`` (how worker containers get it) and
``/etc/service.conf`` (how the core service containers get it).

Any option can be overridden by an environment variable named ``<section>_<option>`` exactly as the
option is written in the code (for example ``web_case`` or ``spawner_host_id``); the override wins
over the file. A few options also answer to the names upstream's deployments export (see
:data:`ENV_ALIASES`, e.g. ``redis_password``). This module is the only place that reads the
environment for settings.

Booleans are parsed one way everywhere (upstream mixed ``== "true"`` with plain truthiness, which
made the string ``False`` true): ``true/yes/on/1`` and ``false/no/off/0``, in any case.
"""
from __future__ import annotations

import configparser
import os
from typing import Any

CONF_ENV_VAR = "ABACO_CONF"
SEARCH_PATHS = ("/service.conf", "/etc/service.conf")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}

_MISSING = object()

# Environment names upstream's compose files and Ansible roles export for options that do not follow
# the <section>_<option> rule. The regular name still wins; an empty value counts as unset (upstream's
# compose files pass `redis_password=` when there is none).
ENV_ALIASES = {
    ("store", "redis_password"): "redis_password",
    ("store", "mongo_password"): "mongo_password",
}
HOST_ID_ENV_VAR = "SPAWNER_HOST_ID"


class ConfigError(RuntimeError):
    """A required option is missing or a value cannot be parsed."""


def parse_bool(value: Any) -> bool:
    """The single boolean rule of the project."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"not a boolean: {value!r} (use true/false, yes/no, on/off or 1/0)")


def find_config_file() -> str | None:
    explicit = os.environ.get(CONF_ENV_VAR)
    if explicit:
        if not os.path.isfile(explicit):
            raise ConfigError(f"{CONF_ENV_VAR}={explicit} does not name a readable file")
        return explicit
    for path in SEARCH_PATHS:
        if os.path.isfile(path):
            return path
    return None


class Config:
    """Typed access to the configuration file plus environment overrides."""

    def __init__(self, path: str | None = None, environ: dict | None = None):
        self.environ = os.environ if environ is None else environ
        self.path = path
        # interpolation off: mount specs and URLs contain '%' and '{' freely
        self._parser = configparser.ConfigParser(interpolation=None)
        if path:
            with open(path) as f:
                self._parser.read_file(f)

    # -- raw access -------------------------------------------------------------------------
    def get(self, section: str, option: str, default: Any = _MISSING) -> str:
        env_name = f"{section}_{option}"
        if env_name in self.environ:
            return self.environ[env_name]
        alias = ENV_ALIASES.get((section, option))
        if alias and self.environ.get(alias):
            return self.environ[alias]
        try:
            return self._parser.get(section, option)
        except (configparser.NoSectionError, configparser.NoOptionError):
            if default is _MISSING:
                raise ConfigError(
                    f"missing configuration option [{section}] {option} "
                    f"(file: {self.path or 'none'}; env override: {env_name})"
                ) from None
            return default

    def has(self, section: str, option: str) -> bool:
        return self.get(section, option, None) not in (None, "")

    # -- typed getters ----------------------------------------------------------------------
    def _typed(self, section: str, option: str, default: Any, convert, what: str) -> Any:
        """The option converted by ``convert``; a missing option (or, for booleans, an empty one)
        gives ``default`` unconverted."""
        value = self.get(section, option, default)
        if value is default and default is not _MISSING:
            return default
        try:
            return convert(value)
        except (ValueError, ConfigError):
            raise ConfigError(f"[{section}] {option} must be {what}, got {value!r}") from None

    def get_int(self, section: str, option: str, default: Any = _MISSING) -> int:
        return self._typed(section, option, default, lambda v: int(str(v).strip()), "an integer")

    def get_float(self, section: str, option: str, default: Any = _MISSING) -> float:
        return self._typed(section, option, default, lambda v: float(str(v).strip()), "a number")

    def get_bool(self, section: str, option: str, default: Any = _MISSING) -> bool:
        if default is not _MISSING and str(self.get(section, option, "")).strip() == "":
            return default
        return self._typed(section, option, default, parse_bool, "a boolean (true/false, yes/no, on/off, 1/0)")

    def get_list(self, section: str, option: str, default: Any = _MISSING) -> list[str]:
        return self._typed(section, option, default,
                           lambda v: [item.strip() for item in str(v).split(",") if item.strip()], "a list")

    def env_overrides(self) -> dict[str, str]:
        """Environment variables that override an option of a section this file has.

        The spawner hands these to worker containers so every process of a deployment sees the
        same settings."""
        prefixes = tuple(f"{s}_" for s in self._parser.sections())
        aliases = set(ENV_ALIASES.values())
        return {k: v for k, v in self.environ.items()
                if (prefixes and k.startswith(prefixes)) or (k in aliases and v)}

    def section(self, section: str) -> dict[str, str]:
        """All options of a section as read from the file (without env overrides)."""
        if not self._parser.has_section(section):
            return {}
        return dict(self._parser.items(section))


_config: Config | None = None


def load(path: str | None = None) -> Config:
    """(Re)load the process-wide configuration."""
    global _config
    _config = Config(path or find_config_file())
    return _config


def conf() -> Config:
    """The process-wide configuration, loaded on first use."""
    if _config is None:
        return load()
    return _config


def host_id() -> str:
    """This compute host's identity: ``$SPAWNER_HOST_ID``, else ``[spawner] host_id`` (default ``0``).
    It is stamped on the worker records and the containers a host's agents make."""
    c = conf()
    return c.environ.get(HOST_ID_ENV_VAR) or c.get("spawner", "host_id", "0")


def tag() -> str:
    """The deployment tag used as ``version`` in every response envelope."""
    c = conf()
    return c.environ.get("service_TAG") or c.environ.get("TAG") or c.get("general", "TAG", ":dev")
