"""nginx's routing table (images/nginx/abaco/locations.conf) against the routes of the Flask apps.

Every route an app serves must reach, through nginx, the container that serves that app (compose:
api=reg, mes, admin; the admin container serves the admin and the permissions apps), and nginx must
agree with app.py, the single-process dispatcher. So a new route cannot be forgotten in nginx.
/metrics and /admin/dashboard are not routed: Prometheus scrapes the metrics app on its own port.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from actors import admin_api, message_api, permissions_api, reg_api
from actors import app as dispatcher

pytestmark = pytest.mark.unit

LOCATIONS = Path(__file__).resolve().parents[2] / "images" / "nginx" / "abaco" / "locations.conf"
CONTAINER_OF_APP = {reg_api.app: "reg", message_api.app: "mes", admin_api.app: "admin", permissions_api.app: "admin"}
NOT_ROUTED = {"/admin/dashboard", "/metrics"}
SAMPLES = {"actor_id": "Zx8Kq0rbJ3vWm", "execution_id": "Ab3De5Gh7Jk9M", "worker_id": "Wk2Lm4Np6Qr8S",
           "nonce_id": "DEV_Nc1Vb3Xz5", "alias": "my-alias"}


def nginx_table() -> list[tuple[re.Pattern, str]]:
    """(regex, container) of each proxied location, in file order."""
    text = LOCATIONS.read_text()
    table = [(re.compile(m["regex"], re.IGNORECASE if m["op"] == "~*" else 0), m["app"])
             for m in re.finditer(r"location\s+(?P<op>~\*?)\s+(?P<regex>\S+)\s*\{\s*proxy_pass\s+http://(?P<app>\w+)_app",
                                  text)]
    assert len(table) >= 6, f"cannot read the locations of {LOCATIONS}"
    return table


def nginx_container(path: str) -> str | None:
    """The container nginx sends ``path`` to (its first matching regex location), None for its 404."""
    return next((container for regex, container in nginx_table() if regex.search(path)), None)


def sample_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: SAMPLES[m.group(1)], rule)


def app_paths() -> list[tuple[str, object]]:
    return [(sample_path(rule.rule), app) for app in CONTAINER_OF_APP for rule in app.url_map.iter_rules()
            if rule.endpoint != "static"]


@pytest.mark.parametrize("path,app", app_paths(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_route_reaches_the_container_of_its_app(path, app):
    if path in NOT_ROUTED:
        assert nginx_container(path) is None
    else:
        assert nginx_container(path) == CONTAINER_OF_APP[app], f"nginx sends {path} to the wrong container"


@pytest.mark.parametrize("path,app", app_paths(), ids=lambda v: v if isinstance(v, str) else "")
def test_nginx_agrees_with_the_dispatcher(path, app):
    chosen = next((target for pattern, target in dispatcher.ROUTES if pattern.match(path)), reg_api.app)
    assert chosen is app, f"app.py sends {path} elsewhere than the app that serves it"
    if path not in NOT_ROUTED:
        assert nginx_container(path) == CONTAINER_OF_APP[chosen]


def test_metrics_and_the_dashboard_are_not_routed():
    for path in NOT_ROUTED:
        assert nginx_container(path) is None
