"""abaco_sdk: what an actor container uses to talk to Abaco (the container contract of images/README.md).

Standard library only; ``cloudpickle`` is used by :func:`send_python_result` when it is installed (the
``abacosamples/py3_sdk`` image has it), plain :mod:`pickle` otherwise. The function names are those of
upstream's ``agavepy.actors``, so an upstream actor ports by changing its import::

    from abaco_sdk import get_context, get_binary_message, send_python_result, update_state

    context = get_context()                  # MSG parsed, ids, state, the whole environment
    data = get_binary_message()              # the bytes of an application/octet-stream message
    send_bytes_result(b"42")                 # one result per call (at most 131072 bytes)
    send_python_result({"answer": 42})       # pickled (cloudpickle when available)
    update_state({"count": 1})               # stateful actors: replace the actor's state
    send_message("<actor id>", {"key": "value"})   # str, JSON-able value, or bytes

Every network or socket call has a timeout. Errors are raised as :class:`AbacoError`.

Paths and variables (the contract's; the two ``ABACO_*`` paths exist so tests can point elsewhere):

=========================  ===================================================================
``MSG``                    the message (Python ``str()`` of the value for JSON messages)
``_abaco_*``               ids, user, API server, state, token: see :func:`get_context`
``/_abaco_binary_data``    FIFO with the binary message (``ABACO_BINARY_DATA`` overrides)
``/_abaco_results.sock``   unix datagram socket for results (``ABACO_RESULTS_SOCKET`` overrides)
``ABACO_JWT``              optional: a JWT to send (header ``_abaco_jwt_header_name`` or
                           ``X-Jwt-Assertion``) when the server checks JWTs and no gateway adds one
``ABACO_NONCE``            optional: a nonce sent as ``?x-nonce=`` on every API call
``ABACO_SDK_TIMEOUT``      optional: default timeout in seconds of every call (30)
=========================  ===================================================================
"""
from __future__ import annotations

import ast
import errno
import json
import os
import pickle
import select
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = [
    "AbacoError", "Client", "get_context", "get_client", "get_binary_message", "send_bytes_result",
    "send_python_result", "update_state", "send_message", "MAX_RESULT_BYTES",
]
__version__ = "1.0.0"

RESULTS_SOCKET = "/_abaco_results.sock"
BINARY_DATA = "/_abaco_binary_data"
MAX_RESULT_BYTES = 131072  # one datagram; the worker reads at most this much per result
DEFAULT_TIMEOUT = 30.0
DEFAULT_JWT_HEADER = "X-Jwt-Assertion"


class AbacoError(Exception):
    """Any failure of the SDK; ``status`` is the HTTP status for API errors, else None."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _default_timeout() -> float:
    try:
        return float(os.environ.get("ABACO_SDK_TIMEOUT") or DEFAULT_TIMEOUT)
    except ValueError:
        return DEFAULT_TIMEOUT


def results_socket_path() -> str:
    return os.environ.get("ABACO_RESULTS_SOCKET") or RESULTS_SOCKET


def binary_data_path() -> str:
    return os.environ.get("ABACO_BINARY_DATA") or BINARY_DATA


# -- the execution context ------------------------------------------------------------------------
class Context(dict):
    """A dict whose keys also read as attributes (``context.message_dict``), like upstream's."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def parse_value(raw: str | None) -> tuple[Any, str]:
    """Parse a value the way Abaco renders it into the environment: Python ``str()`` of the value
    (``{'a': True}``), or JSON text (``{"a": true}``) as clients sometimes send. Returns
    ``(value, error)``; ``value`` is None and ``error`` says why when neither parses."""
    if raw is None:
        return None, "no value"
    try:
        return ast.literal_eval(raw), ""
    except Exception as e:  # SyntaxError, ValueError, MemoryError, RecursionError on odd input
        first = e
    try:
        return json.loads(raw), ""
    except Exception as e:
        return None, f"not a Python literal ({type(first).__name__}: {first}) nor JSON ({e})"


def get_context() -> Context:
    """The execution context: the whole environment, plus

    ``raw_message``          MSG as it came (None for binary messages)
    ``content_type``         ``str``, ``application/json`` or ``application/octet-stream``
    ``message``              MSG parsed (Python literal or JSON) when it parses, else None
    ``message_dict``         the parsed message when it is a dict, else ``{}``
    ``raw_message_parse_log``  why MSG did not parse ('' when it did)
    ``execution_id``, ``username``, ``actor_id``, ``actor_dbid``, ``actor_name``, ``worker_id``,
    ``api_server``, ``container_repo``, ``jwt_header_name``, ``access_token``, ``synchronous``
    ``state``                the actor's state parsed from ``_abaco_actor_state`` (``{}`` when empty)
    ``raw_state``            ``_abaco_actor_state`` as it came

    The parsed keys win over environment variables of the same name."""
    env = os.environ
    raw = env.get("MSG")
    message, parse_log = parse_value(raw)
    if raw is None:
        parse_log = "no MSG (binary messages are read with get_binary_message())"
    raw_state = env.get("_abaco_actor_state")
    state: Any = {}
    if raw_state not in (None, "", "None"):
        parsed, error = parse_value(raw_state)
        state = raw_state if error else parsed
    name = env.get("_abaco_actor_name")
    context = Context(env)
    context.update(
        raw_message=raw,
        content_type=env.get("_abaco_Content_Type") or env.get("_abaco_Content-Type"),
        message=message,
        message_dict=message if isinstance(message, dict) else {},
        raw_message_parse_log=parse_log,
        execution_id=env.get("_abaco_execution_id"),
        username=env.get("_abaco_username"),
        actor_id=env.get("_abaco_actor_id"),
        actor_dbid=env.get("_abaco_actor_dbid"),
        actor_name=None if name in (None, "None") else name,
        worker_id=env.get("_abaco_worker_id"),
        api_server=env.get("_abaco_api_server"),
        container_repo=env.get("_abaco_container_repo"),
        jwt_header_name=env.get("_abaco_jwt_header_name"),
        access_token=env.get("_abaco_access_token") or None,
        synchronous=(env.get("_abaco_synchronous") or "").lower() == "true",
        state=state,
        raw_state=raw_state,
    )
    return context


# -- binary messages ------------------------------------------------------------------------------
def get_binary_message(timeout: float | None = None, path: str | None = None) -> bytes:
    """The whole binary message: reads the FIFO until the worker closes it. ``timeout`` (default
    ABACO_SDK_TIMEOUT, 30 s; None in the env means that default) bounds each wait for the worker
    to write more; AbacoError when it passes or when there is no FIFO (not a binary message)."""
    path = path or binary_data_path()
    timeout = _default_timeout() if timeout is None else timeout
    if not os.path.exists(path):
        raise AbacoError(
            f"No binary message: {path} does not exist (it is mounted only for messages sent as "
            "application/octet-stream; a text or JSON message is in MSG)."
        )
    # Non-blocking open: a blocking one would wait for a writer forever. poll() then waits for data
    # or for a writer that has come and gone (POLLHUP); before any writer it waits, as it should.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    chunks: list[bytes] = []
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            if not poller.poll(None if timeout <= 0 else int(timeout * 1000)):
                got = sum(len(c) for c in chunks)
                raise AbacoError(f"Timed out after {timeout:g} s waiting for the binary message on {path} "
                                 f"({got} bytes read so far).")
            while True:
                try:
                    chunk = os.read(fd, 1 << 16)
                except BlockingIOError:  # the writer is still there but has nothing more yet
                    break
                if not chunk:  # no writer left and the pipe is empty: the message is complete
                    return b"".join(chunks)
                chunks.append(chunk)
    finally:
        os.close(fd)


# -- results --------------------------------------------------------------------------------------
def send_bytes_result(data: bytes, timeout: float | None = None, path: str | None = None) -> None:
    """Send one result (opaque bytes, at most 131072) to the execution's results socket."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"send_bytes_result() takes bytes, not {type(data).__name__} "
                        "(send_python_result() pickles any object)")
    if len(data) > MAX_RESULT_BYTES:
        raise AbacoError(f"The result is {len(data)} bytes; one result can be at most {MAX_RESULT_BYTES} "
                         "bytes. Send it in several results, or store it elsewhere and send a reference.")
    path = path or results_socket_path()
    if not os.path.exists(path):
        raise AbacoError(f"No results socket at {path} (the worker mounts it for each execution).")
    timeout = _default_timeout() if timeout is None else timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(data, path)
        except TimeoutError:
            raise AbacoError(f"Timed out after {timeout:g} s sending a result to {path} "
                             "(the worker is not reading results).") from None
        except OSError as e:
            if e.errno == errno.EMSGSIZE:
                raise AbacoError(f"The result ({len(data)} bytes) is larger than this system lets one "
                                 f"datagram be: {e}") from None
            raise AbacoError(f"Could not send the result to {path}: {e}") from None


def dumps(obj: Any) -> bytes:
    """Pickle with cloudpickle when it is installed (functions, lambdas, classes by value), else pickle."""
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(obj)
    return cloudpickle.dumps(obj)


def send_python_result(obj: Any, timeout: float | None = None, path: str | None = None) -> None:
    """Send a Python object as one result, pickled (read it with ``pickle.loads`` or cloudpickle)."""
    data = dumps(obj)
    if len(data) > MAX_RESULT_BYTES:
        raise AbacoError(f"The pickled result is {len(data)} bytes; one result can be at most "
                         f"{MAX_RESULT_BYTES} bytes.")
    send_bytes_result(data, timeout=timeout, path=path)


# -- the API --------------------------------------------------------------------------------------
def _is_loopback(host: str | None) -> bool:
    return host in ("localhost", "127.0.0.1", "::1") or bool(host and host.startswith("127."))


class Client:
    """A small client of the Abaco API for actors: ``get_client()`` makes one from the environment.

    Auth: ``Authorization: Bearer <token>`` when a token is given (``_abaco_access_token``); a JWT in
    ``jwt_header_name`` when a JWT is given; ``?x-nonce=`` when a nonce is given. With
    ``access_control: none`` (local development) none is needed."""

    def __init__(self, api_server: str, token: str | None = None, jwt: str | None = None,
                 jwt_header_name: str | None = None, nonce: str | None = None,
                 timeout: float | None = None, headers: dict[str, str] | None = None):
        if not api_server:
            raise AbacoError("No API server: _abaco_api_server is not set (is this running inside Abaco?).")
        self.api_server = api_server.rstrip("/")
        self.timeout = _default_timeout() if timeout is None else timeout
        self.nonce = nonce
        self.headers = {"Accept": "application/json", "User-Agent": f"abaco_sdk/{__version__}"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        if jwt:
            self.headers[jwt_header_name or DEFAULT_JWT_HEADER] = jwt
        self.headers.update(headers or {})
        host = urllib.parse.urlsplit(self.api_server).hostname
        # Never route the API on this machine through a proxy from the environment.
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(host) else []
        self._opener = urllib.request.build_opener(*handlers)

    def url(self, path: str, params: dict[str, Any] | None = None) -> str:
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        if self.nonce:
            query["x-nonce"] = self.nonce
        return self.api_server + path + ("?" + urllib.parse.urlencode(query) if query else "")

    def request(self, method: str, path: str, *, json_body: Any = None, data: bytes | None = None,
                content_type: str | None = None, params: dict[str, Any] | None = None,
                raw: bool = False) -> Any:
        """Call the API; returns the envelope's ``result`` (or the raw bytes with ``raw=True``)."""
        headers = dict(self.headers)
        if json_body is not None:
            data, content_type = json.dumps(json_body).encode(), "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        url = self.url(path, params)
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")
            try:
                detail = json.loads(detail).get("message") or detail
            except (ValueError, AttributeError):
                pass
            raise AbacoError(f"{method} {url}: {e.code} {detail}", status=e.code) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise AbacoError(f"{method} {url}: {reason}") from None
        if raw:
            return body
        try:
            return json.loads(body)["result"]
        except (ValueError, KeyError, TypeError):
            raise AbacoError(f"{method} {url}: not an Abaco response: {body[:200]!r}") from None

    @staticmethod
    def _actor(actor_id: str) -> str:
        return "/actors/" + urllib.parse.quote(str(actor_id), safe="")

    def send_message(self, actor_id: str, message: Any, environment: dict[str, Any] | None = None) -> dict:
        """Send a message: ``str`` as a text message, ``bytes`` as a binary one, anything else as
        JSON. ``environment`` becomes query parameters, i.e. environment variables of the
        execution. Returns the result (``execution_id``/``executionId``, ``msg``, ``_links``)."""
        path = self._actor(actor_id) + "/messages"
        if isinstance(message, (bytes, bytearray, memoryview)):
            return self.request("POST", path, data=bytes(message), content_type="application/octet-stream",
                                params=environment)
        if isinstance(message, str):
            body = urllib.parse.urlencode({"message": message}).encode()
            return self.request("POST", path, data=body, content_type="application/x-www-form-urlencoded",
                                params=environment)
        return self.request("POST", path, json_body=message, params=environment)

    def update_state(self, value: Any, actor_id: str | None = None) -> dict:
        """Replace the state of a stateful actor (this one by default); returns the actor."""
        actor_id = actor_id or os.environ.get("_abaco_actor_id")
        if not actor_id:
            raise AbacoError("No actor id: _abaco_actor_id is not set; pass actor_id.")
        return self.request("POST", self._actor(actor_id) + "/state", json_body=value)

    def get_state(self, actor_id: str | None = None) -> Any:
        actor_id = actor_id or os.environ.get("_abaco_actor_id")
        if not actor_id:
            raise AbacoError("No actor id: _abaco_actor_id is not set; pass actor_id.")
        return self.request("GET", self._actor(actor_id) + "/state").get("state")

    def get_execution(self, actor_id: str, execution_id: str) -> dict:
        return self.request("GET", f"{self._actor(actor_id)}/executions/{urllib.parse.quote(execution_id, safe='')}")

    def get_result(self, actor_id: str, execution_id: str) -> bytes:
        """The next result of an execution (b'' when none is waiting)."""
        eid = urllib.parse.quote(execution_id, safe="")
        return self.request("GET", f"{self._actor(actor_id)}/executions/{eid}/results", raw=True)


def get_client(timeout: float | None = None) -> Client:
    """A :class:`Client` for this execution's API server, with the execution's credentials."""
    env = os.environ
    return Client(
        env.get("_abaco_api_server", ""),
        token=env.get("_abaco_access_token") or None,
        jwt=env.get("ABACO_JWT") or None,
        jwt_header_name=env.get("_abaco_jwt_header_name") or None,
        nonce=env.get("ABACO_NONCE") or None,
        timeout=timeout,
    )


def update_state(value: Any, timeout: float | None = None) -> dict:
    """Replace this (stateful) actor's state with ``value`` (JSON-serializable, not empty)."""
    return get_client(timeout).update_state(value)


def send_message(actor_id: str, message: Any, environment: dict[str, Any] | None = None,
                 timeout: float | None = None) -> dict:
    """Send ``message`` to another actor (see :meth:`Client.send_message`)."""
    return get_client(timeout).send_message(actor_id, message, environment)
