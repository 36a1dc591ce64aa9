"""The web app one core-image container serves (``api=reg|mes|admin|metrics``, images/core/entry.sh).

gunicorn loads ``actors.web:create('<api>')``; ``python -m actors.web <api> <host:port>`` runs the same
app under Flask's development server (``server=dev``). nginx (images/nginx) sends each path to the
container of its app. The admin container serves the admin and the permissions apps, as upstream's
admin app served both: it runs the single-process dispatcher (``actors.app``), which picks between
them in nginx's order. ``all`` serves every public app on one port without nginx (as ``make up``
does; ``/metrics`` stays on its own listener).
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable

from actors import logs

MODULES = {
    "reg": "actors.reg_api",
    "mes": "actors.message_api",
    "metrics": "actors.metrics_api",
    "admin": "actors.app",  # sets up its own logging
    "all": "actors.app",
}


def create(api: str) -> Callable:
    """The WSGI app of ``api``, with logging set up for it."""
    if api not in MODULES:
        raise SystemExit(f"unknown api {api!r}: use one of {', '.join(MODULES)}")
    if MODULES[api] != "actors.app":
        logs.setup(api)
    return importlib.import_module(MODULES[api]).app


def main(argv: list[str]) -> None:
    api, bind = argv[1], argv[2] if len(argv) > 2 else "0.0.0.0:5000"
    host, _, port = bind.rpartition(":")
    from werkzeug.serving import run_simple  # what Flask's app.run() uses; the dispatcher is plain WSGI

    run_simple(host or "0.0.0.0", int(port), create(api), threaded=True)


if __name__ == "__main__":
    main(sys.argv)
