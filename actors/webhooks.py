"""Webhooks: the one kind of outbound HTTP call whose address a user chooses.

An actor's ``webhook`` may not point at this host or at the operator's internal networks
(loopback, private, link-local, carrier-grade NAT, multicast, reserved: any address that is not
globally routable), or a user could make the events agent call services that are not meant to be
reachable from outside (server-side request forgery). It is checked twice:

* at registration and update (:func:`validate_url`): the URL must be http(s) and its host, if it
  resolves now, must resolve only to allowed addresses;
* at delivery (:func:`post`): the address the connection actually reached is checked after
  connecting, so a name that resolves elsewhere later (DNS rebinding) or a redirect cannot get
  around it. Redirects are not followed and proxy settings of the environment are ignored.

``[events] webhook_allowed_networks`` (comma-separated CIDRs, empty by default) lets an operator
allow internal networks on purpose; ``local-dev.conf`` allows loopback, because local tests and
tools receive webhooks on 127.0.0.1.
"""
from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from actors.config import ConfigError, conf

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookRefused(OSError):
    """The webhook's address is not one Abaco may call."""


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in conf().get_list("events", "webhook_allowed_networks", []):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"[events] webhook_allowed_networks: {item!r} is not a network (e.g. 127.0.0.0/8)") from None
    return networks


def address_allowed(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_global and not address.is_multicast:
        return True
    return any(address in network for network in allowed_networks())


def check_address(text: str) -> None:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone
    if not address_allowed(address):
        raise WebhookRefused(
            f"{address} is an internal address (loopback, private, link-local or reserved); webhooks may "
            "only call public addresses ([events] webhook_allowed_networks allows others)")


def validate_url(url: str) -> None:
    """Raise ValueError with a readable reason when ``url`` may not be used as a webhook."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("the webhook must be an http:// or https:// URL with a host")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise ValueError("the webhook's port is not a number between 0 and 65535") from None
    for address in resolve(parts.hostname, port):
        try:
            check_address(address)
        except WebhookRefused as e:
            raise ValueError(f"{parts.hostname} resolves to {e}") from None


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to now; none when it does not resolve (checked again on delivery)."""
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
    except (socket.gaierror, UnicodeError):
        return []


# -- delivery: the peer address is checked on every new connection ---------------------------------
def checked(sock: socket.socket) -> socket.socket:
    try:
        check_address(sock.getpeername()[0])
    except BaseException:
        sock.close()
        raise
    return sock


class CheckedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return checked(super()._new_conn())


class CheckedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return checked(super()._new_conn())


class CheckedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = CheckedHTTPConnection


class CheckedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = CheckedHTTPSConnection


class CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": CheckedHTTPConnectionPool,
                                                   "https": CheckedHTTPSConnectionPool}


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # no proxies from the environment: the connection goes where we checked
    adapter = CheckedAdapter()
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


def post(url: str, body: dict, timeout: float) -> requests.Response:
    """POST ``body`` as JSON to ``url``; raises WebhookRefused (inside requests' ConnectionError) when
    the connection reached an address that is not allowed, and ValueError for a URL not allowed."""
    validate_url(url)
    with session() as s:
        return s.post(url, json=body, timeout=timeout, allow_redirects=False)
