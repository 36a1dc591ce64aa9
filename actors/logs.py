"""Logging setup from ``[logs]``: a global ``level``, per-module ``level.<module>`` overrides, and
the ``files`` strategy: ``combined`` (every process writes ``abaco.log``) or ``split`` (each agent
writes ``<agent>.log``) in ``host_dir``. Everything also goes to stderr."""
from __future__ import annotations

import logging
import os
import sys

from actors.config import conf

FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"
_configured: set[str] = set()


def log_file_for(agent: str) -> str | None:
    """Path of the log file the given agent writes, or None when no log directory is configured."""
    c = conf()
    host_dir = c.get("logs", "host_dir", "")
    if not host_dir:
        return None
    strategy = c.get("logs", "files", "combined").strip().lower()
    name = f"{agent}.log" if strategy == "split" else "abaco.log"
    return os.path.join(host_dir, name)


def setup(agent: str, log_file: str | None = None) -> None:
    """Configure the root logger once per process for ``agent`` (reg, mes, spawner, worker, ...)."""
    if agent in _configured:
        return
    _configured.add(agent)
    c = conf()
    root = logging.getLogger()
    root.setLevel(c.get("logs", "level", "INFO").upper())
    formatter = logging.Formatter(FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    path = log_file or log_file_for(agent)
    if path:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            handlers.append(logging.FileHandler(path))
        except OSError as e:  # a read-only or missing dir must not stop the process
            print(f"abaco: cannot open log file {path}: {e}", file=sys.stderr)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    for option, value in c.section("logs").items():
        if option.startswith("level."):
            logging.getLogger(f"actors.{option[len('level.'):]}").setLevel(value.upper())
    # channels.py and docker_utils.py report connection trouble themselves, once and readably
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    for noisy in ("urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
