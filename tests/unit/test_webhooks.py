"""Webhooks never reach internal addresses unless the configuration allows them (item 8):
checked on the URL at registration and on the connected address at delivery, redirects not
followed. Delivery is tried against a real HTTP server on 127.0.0.1; no traffic leaves the machine
(public addresses are only validated, never called)."""
from __future__ import annotations

import http.server
import json
import threading

import pytest
import requests

from actors import webhooks

pytestmark = pytest.mark.unit


@pytest.fixture
def no_internal(monkeypatch):
    monkeypatch.setenv("events_webhook_allowed_networks", "")


@pytest.fixture
def loopback_allowed(monkeypatch):
    monkeypatch.setenv("events_webhook_allowed_networks", "127.0.0.0/8, ::1/128")


class Receiver(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((self.path, json.loads(body)))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/elsewhere")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/hook", "http://localhost/hook", "http://[::1]:8000/", "http://0.0.0.0/",
    "http://10.1.2.3/", "http://172.16.0.1/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data",
    "http://100.64.0.1/", "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/", "http://224.0.0.1/",
    "http://2130706433/",  # 127.0.0.1 written as one number
])
def test_internal_addresses_are_refused(no_internal, url):
    with pytest.raises(ValueError, match="internal address"):
        webhooks.validate_url(url)


@pytest.mark.parametrize("url", ["ftp://example.org/x", "file:///etc/passwd", "http:///nohost", "hook", "http://h:99999/"])
def test_only_http_urls_with_a_host(no_internal, url):
    with pytest.raises(ValueError):
        webhooks.validate_url(url)


@pytest.mark.parametrize("url", ["https://93.184.216.34/hook", "http://[2606:2800:220:1::]/x"])
def test_public_addresses_are_allowed(no_internal, url):
    webhooks.validate_url(url)  # literal addresses: nothing is resolved or called


def test_configured_networks_are_allowed(loopback_allowed):
    webhooks.validate_url("http://127.0.0.1:9/hook")
    with pytest.raises(ValueError):
        webhooks.validate_url("http://10.1.2.3/")


def test_delivery_to_an_allowed_address(loopback_allowed, receiver):
    response = webhooks.post(f"{receiver}/hook", {"event_type": "ACTOR_READY"}, timeout=5)
    assert response.status_code == 200
    assert Receiver.received == [("/hook", {"event_type": "ACTOR_READY"})]


def test_delivery_checks_the_connected_address(no_internal, receiver):
    # the session post() uses checks the address each connection reached, whatever the URL check
    # said before (a name may resolve elsewhere by the time it is called): nothing is sent
    with webhooks.session() as session, pytest.raises(requests.ConnectionError, match="internal address"):
        session.post(f"{receiver}/hook", json={"event_type": "ACTOR_READY"}, timeout=5)
    with pytest.raises(ValueError, match="internal address"):
        webhooks.post(f"{receiver}/hook", {"event_type": "ACTOR_READY"}, timeout=5)
    assert Receiver.received == []


def test_redirects_are_not_followed(loopback_allowed, receiver):
    response = webhooks.post(f"{receiver}/redirect", {"n": 1}, timeout=5)
    assert response.status_code == 302
    assert [path for path, _ in Receiver.received] == ["/redirect"]
