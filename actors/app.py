"""All public web apps behind one base URL, routed by path as upstream's nginx does.

A deployment with nginx in front can instead serve ``reg_api:app``, ``message_api:app`` ... each on
its own port; this dispatcher gives a single-machine install the same URL space with one server.

``/metrics`` is not here: it lists every actor and tenant without authentication, so it is served by
``metrics_api:app`` on a listener of its own (``[web] metrics_address``) that Prometheus scrapes
directly, never on the public port (upstream's nginx did not route it either).
"""
from __future__ import annotations

import re

from actors import admin_api, logs, message_api, permissions_api, reg_api

logs.setup("web")

# (pattern, app) in nginx's order; the first match wins
ROUTES = [
    (re.compile(r"^/actors/admin"), admin_api.app),
    (re.compile(r"^/actors/[^?]*/messages"), message_api.app),
    (re.compile(r"^/actors/[^?]*/workers"), admin_api.app),
    (re.compile(r"^/actors/aliases/[^?]*/permissions"), permissions_api.app),
    (re.compile(r"^/actors/[^?]*/permissions"), permissions_api.app),
    (re.compile(r"^/actors"), reg_api.app),
    (re.compile(r"^/admin"), admin_api.app),  # /admin/dashboard
]
MULTI_SLASH = re.compile(r"/{2,}")


def app(environ, start_response):
    path = MULTI_SLASH.sub("/", environ.get("PATH_INFO", "") or "/")
    environ["PATH_INFO"] = path
    for pattern, target in ROUTES:
        if pattern.match(path):
            return target(environ, start_response)
    return reg_api.app(environ, start_response)
