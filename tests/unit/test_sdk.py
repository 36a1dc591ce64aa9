"""The actor SDK (images/sdk/abaco_sdk.py) and the Python sample actors, on the host against fakes: a
real unix datagram socket and a real FIFO in a temporary folder, and a small HTTP server on 127.0.0.1
playing the Abaco API."""
from __future__ import annotations

import importlib.util
import json
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cloudpickle
import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SDK_DIR = ROOT / "images" / "sdk"


def load_sdk():
    spec = importlib.util.spec_from_file_location("abaco_sdk", SDK_DIR / "abaco_sdk.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["abaco_sdk"] = module
    spec.loader.exec_module(module)
    return module


sdk = load_sdk()

CONTRACT_VARS = [
    "MSG", "_abaco_Content_Type", "_abaco_execution_id", "_abaco_username", "_abaco_api_server",
    "_abaco_jwt_header_name", "_abaco_access_token", "_abaco_actor_id", "_abaco_actor_dbid",
    "_abaco_worker_id", "_abaco_container_repo", "_abaco_actor_state", "_abaco_actor_name",
    "_abaco_synchronous", "ABACO_JWT", "ABACO_NONCE", "ABACO_SDK_TIMEOUT", "ABACO_RESULTS_SOCKET",
    "ABACO_BINARY_DATA",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No contract variable leaks in from the machine running the tests."""
    for name in CONTRACT_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def short_tmp():
    """A short folder: a unix socket path must fit in 108 bytes, pytest's tmp_path may not."""
    path = Path(tempfile.mkdtemp(prefix="sdk-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def results(short_tmp, monkeypatch):
    """The worker's end of the results socket; the SDK finds it through ABACO_RESULTS_SOCKET."""
    path = short_tmp / "results.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("ABACO_RESULTS_SOCKET", str(path))
    yield sock
    sock.close()


@pytest.fixture
def fifo(short_tmp, monkeypatch):
    path = short_tmp / "binary"
    os.mkfifo(path)
    monkeypatch.setenv("ABACO_BINARY_DATA", str(path))
    return path


def write_fifo(path: Path, chunks: list[bytes], delay: float = 0.0, pause: float = 0.0) -> threading.Thread:
    """Play the worker: open the FIFO for writing (blocks until the reader opens it), write, close."""

    def run():
        time.sleep(delay)
        with open(path, "wb", buffering=0) as f:
            for chunk in chunks:
                f.write(chunk)
                time.sleep(pause)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# -- a fake Abaco API ---------------------------------------------------------------------------
class FakeApi:
    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.reply: object = {"ok": True}
        self.delay = 0.0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                url = urllib.parse.urlsplit(self.path)
                api.requests.append({
                    "method": self.command,
                    "path": url.path,
                    "query": dict(urllib.parse.parse_qsl(url.query)),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": self.rfile.read(length),
                })
                time.sleep(api.delay)
                ok = api.status == 200
                body = json.dumps({"result": api.reply if ok else None, "status": "success" if ok else "error",
                                   "message": "done" if ok else "Actor not found.", "version": "test"}).encode()
                self.send_response(api.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def last(self) -> dict:
        return self.requests[-1]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api(monkeypatch):
    fake = FakeApi()
    monkeypatch.setenv("_abaco_api_server", fake.url)
    monkeypatch.setenv("_abaco_actor_id", "actor-1")
    yield fake
    fake.stop()


# -- get_context --------------------------------------------------------------------------------
def test_context_of_a_json_message(monkeypatch):
    env = {
        "MSG": "{'key1': 'value1', 'flag': True, 'none': None, 'list': [1, 2.5]}",
        "_abaco_Content_Type": "application/json",
        "_abaco_execution_id": "ex-1",
        "_abaco_username": "anonymous",
        "_abaco_api_server": "http://127.0.0.1:8000",
        "_abaco_actor_id": "actor-1",
        "_abaco_actor_dbid": "DEV_actor-1",
        "_abaco_worker_id": "w-1",
        "_abaco_container_repo": "abacosamples/wc",
        "_abaco_actor_state": "{'count': 3, 'seen': ['a']}",
        "_abaco_actor_name": "counter",
        "_abaco_access_token": "",
        "MY_SETTING": "from default_environment",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    ctx = sdk.get_context()
    assert ctx["message_dict"] == {"key1": "value1", "flag": True, "none": None, "list": [1, 2.5]}
    assert ctx.message == ctx.message_dict
    assert ctx.raw_message == env["MSG"]
    assert ctx.raw_message_parse_log == ""
    assert ctx.content_type == "application/json"
    assert (ctx.execution_id, ctx.username, ctx.actor_id, ctx.actor_dbid, ctx.worker_id) == (
        "ex-1", "anonymous", "actor-1", "DEV_actor-1", "w-1")
    assert ctx.api_server == "http://127.0.0.1:8000"
    assert ctx.container_repo == "abacosamples/wc"
    assert ctx.actor_name == "counter"
    assert ctx.state == {"count": 3, "seen": ["a"]}
    assert ctx.raw_state == env["_abaco_actor_state"]
    assert ctx.access_token is None  # empty means no token
    assert ctx.synchronous is False
    # the whole environment is there too
    assert ctx["MY_SETTING"] == "from default_environment"
    assert ctx["_abaco_worker_id"] == "w-1"
    with pytest.raises(AttributeError):
        ctx.no_such_key


def test_context_of_a_text_message(monkeypatch):
    monkeypatch.setenv("MSG", "hello there world")
    monkeypatch.setenv("_abaco_Content_Type", "str")
    monkeypatch.setenv("_abaco_actor_name", "None")
    ctx = sdk.get_context()
    assert ctx.raw_message == "hello there world"
    assert ctx.message is None and ctx.message_dict == {}
    assert "nor JSON" in ctx.raw_message_parse_log
    assert ctx.actor_name is None
    assert ctx.state == {}  # no _abaco_actor_state


@pytest.mark.parametrize("raw, expected", [
    ('{"a": [1, 2], "b": true, "c": null}', {"a": [1, 2], "b": True, "c": None}),  # JSON text
    ("42", 42),
    ("[1, 'two']", [1, "two"]),
    ("true", True),
])
def test_message_parses_as_python_literal_or_json(monkeypatch, raw, expected):
    monkeypatch.setenv("MSG", raw)
    ctx = sdk.get_context()
    assert ctx.message == expected
    assert ctx.message_dict == (expected if isinstance(expected, dict) else {})


def test_context_of_a_binary_message(monkeypatch):
    monkeypatch.setenv("_abaco_Content_Type", "application/octet-stream")
    monkeypatch.setenv("_abaco_synchronous", "true")
    ctx = sdk.get_context()
    assert ctx.raw_message is None and ctx.message_dict == {}
    assert "get_binary_message" in ctx.raw_message_parse_log
    assert ctx.synchronous is True


@pytest.mark.parametrize("raw, expected", [("{}", {}), ("", {}), ("None", {}), ("not a literal", "not a literal")])
def test_state_values(monkeypatch, raw, expected):
    monkeypatch.setenv("_abaco_actor_state", raw)
    assert sdk.get_context().state == expected


def test_deeply_nested_message_does_not_crash(monkeypatch):
    monkeypatch.setenv("MSG", "[" * 100000)
    ctx = sdk.get_context()
    assert ctx.message is None and ctx.raw_message_parse_log


# -- get_binary_message ------------------------------------------------------------------------
def test_binary_message_is_read_whole(fifo):
    payload = os.urandom(1_000_000)  # many times a pipe's buffer
    write_fifo(fifo, [payload[i:i + 100_000] for i in range(0, len(payload), 100_000)], delay=0.2, pause=0.01)
    assert sdk.get_binary_message(timeout=10) == payload


def test_binary_message_waits_for_a_slow_writer(fifo):
    write_fifo(fifo, [b"first ", b"second"], delay=0.5, pause=0.3)
    assert sdk.get_binary_message(timeout=5) == b"first second"


def test_empty_binary_message(fifo):
    write_fifo(fifo, [])
    assert sdk.get_binary_message(timeout=5) == b""


def test_binary_message_times_out_without_a_writer(fifo):
    started = time.monotonic()
    with pytest.raises(sdk.AbacoError, match="Timed out after 0.3 s"):
        sdk.get_binary_message(timeout=0.3)
    assert time.monotonic() - started < 3


def test_binary_message_without_fifo(short_tmp, monkeypatch):
    monkeypatch.setenv("ABACO_BINARY_DATA", str(short_tmp / "missing"))
    with pytest.raises(sdk.AbacoError, match="application/octet-stream"):
        sdk.get_binary_message(timeout=1)


def test_binary_path_defaults_to_the_contract():
    assert sdk.binary_data_path() == "/_abaco_binary_data"
    assert sdk.results_socket_path() == "/_abaco_results.sock"


# -- results ------------------------------------------------------------------------------------
def test_send_bytes_result(results):
    sdk.send_bytes_result(b"first")
    sdk.send_bytes_result(bytearray(b"second"))
    assert results.recv(200_000) == b"first"
    assert results.recv(200_000) == b"second"


def test_largest_result_fits_one_datagram(results):
    data = os.urandom(sdk.MAX_RESULT_BYTES)
    sdk.send_bytes_result(data)
    assert results.recv(200_000) == data


def test_too_large_result_is_refused_with_a_clear_error(results):
    with pytest.raises(sdk.AbacoError, match="131073 bytes; one result can be at most 131072"):
        sdk.send_bytes_result(b"x" * (sdk.MAX_RESULT_BYTES + 1))
    results.settimeout(0.2)
    with pytest.raises(TimeoutError):
        results.recv(10)  # nothing was sent


def test_send_bytes_result_wants_bytes(results):
    with pytest.raises(TypeError, match="send_python_result"):
        sdk.send_bytes_result("text")


def test_send_python_result_pickles_with_cloudpickle(results):
    sdk.send_python_result({"answer": 42, "double": lambda x: 2 * x})
    value = cloudpickle.loads(results.recv(200_000))
    assert value["answer"] == 42 and value["double"](21) == 42


def test_plain_objects_unpickle_with_pickle(results):
    sdk.send_python_result([1, "two", 3.0])
    assert pickle.loads(results.recv(200_000)) == [1, "two", 3.0]


def test_too_large_python_result(results):
    with pytest.raises(sdk.AbacoError, match="pickled result is"):
        sdk.send_python_result(os.urandom(200_000))


def test_no_results_socket(short_tmp, monkeypatch):
    monkeypatch.setenv("ABACO_RESULTS_SOCKET", str(short_tmp / "none.sock"))
    with pytest.raises(sdk.AbacoError, match="No results socket"):
        sdk.send_bytes_result(b"x")


def test_socket_without_a_reader(short_tmp, monkeypatch):
    path = short_tmp / "dead.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.close()  # the file stays, nobody listens
    monkeypatch.setenv("ABACO_RESULTS_SOCKET", str(path))
    with pytest.raises(sdk.AbacoError, match="Could not send the result"):
        sdk.send_bytes_result(b"x")


def test_results_send_times_out_when_the_worker_does_not_read(results):
    """A unix datagram socket holds a few datagrams (net.unix.max_dgram_qlen); then a send blocks."""
    started = time.monotonic()
    with pytest.raises(sdk.AbacoError, match="Timed out"):
        for _ in range(5000):
            sdk.send_bytes_result(b"x" * 1000, timeout=0.2)
    assert time.monotonic() - started < 10


# -- the API: update_state, send_message ----------------------------------------------------------
def test_update_state_posts_json_with_the_token(api, monkeypatch):
    monkeypatch.setenv("_abaco_access_token", "tok-123")
    api.reply = {"id": "actor-1", "state": {"count": 4}}
    assert sdk.update_state({"count": 4}) == {"id": "actor-1", "state": {"count": 4}}
    req = api.last
    assert (req["method"], req["path"]) == ("POST", "/actors/actor-1/state")
    assert req["headers"]["content-type"] == "application/json"
    assert json.loads(req["body"]) == {"count": 4}
    assert req["headers"]["authorization"] == "Bearer tok-123"
    assert req["query"] == {}


def test_update_state_without_credentials_sends_none(api):
    sdk.update_state([1, 2])
    headers = api.last["headers"]
    assert "authorization" not in headers
    assert not any(h.startswith("x-jwt-assertion") for h in headers)


def test_jwt_and_nonce_from_the_environment(api, monkeypatch):
    monkeypatch.setenv("ABACO_JWT", "a.b.c")
    monkeypatch.setenv("_abaco_jwt_header_name", "X-Jwt-Assertion-Dev-Develop")
    monkeypatch.setenv("ABACO_NONCE", "nonce-1")
    sdk.update_state({"x": 1})
    assert api.last["headers"]["x-jwt-assertion-dev-develop"] == "a.b.c"
    assert api.last["query"] == {"x-nonce": "nonce-1"}


def test_send_text_message_with_environment(api):
    api.reply = {"execution_id": "ex-9", "msg": "hi there"}
    result = sdk.send_message("other actor", "hi there", environment={"color": "red", "n": 3})
    assert result["execution_id"] == "ex-9"
    req = api.last
    assert req["path"] == "/actors/other%20actor/messages"
    assert req["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert urllib.parse.parse_qs(req["body"].decode()) == {"message": ["hi there"]}
    assert req["query"] == {"color": "red", "n": "3"}


def test_send_json_message(api):
    sdk.send_message("other", {"key": ["value", 1]})
    assert api.last["headers"]["content-type"] == "application/json"
    assert json.loads(api.last["body"]) == {"key": ["value", 1]}


def test_send_binary_message(api):
    data = os.urandom(5000)
    sdk.send_message("other", data)
    assert api.last["headers"]["content-type"] == "application/octet-stream"
    assert api.last["headers"]["content-length"] == "5000"
    assert api.last["body"] == data


def test_api_error_carries_status_and_message(api):
    api.status = 404
    with pytest.raises(sdk.AbacoError, match="404 Actor not found.") as info:
        sdk.send_message("gone", "x")
    assert info.value.status == 404


def test_api_call_times_out(api):
    api.delay = 2
    started = time.monotonic()
    with pytest.raises(sdk.AbacoError, match="timed out"):
        sdk.update_state({"a": 1}, timeout=0.3)
    assert time.monotonic() - started < 1.5


def test_environment_proxy_is_not_used_for_a_local_api(api, monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # discard port: a proxy would fail
    monkeypatch.setenv("no_proxy", "")
    sdk.update_state({"a": 1}, timeout=5)
    assert api.last["path"] == "/actors/actor-1/state"


def test_no_api_server():
    with pytest.raises(sdk.AbacoError, match="_abaco_api_server is not set"):
        sdk.update_state({"a": 1})


def test_client_reads_results_raw(api):
    client = sdk.get_client(timeout=5)
    assert client.get_result("actor-1", "ex-1").startswith(b'{"result"')
    assert api.last["path"] == "/actors/actor-1/executions/ex-1/results"


# -- the Python samples, run on the host against the same fakes -----------------------------------
def run_sample(script: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in CONTRACT_VARS}
    full_env.update(env, PYTHONPATH=str(SDK_DIR), PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(ROOT / "images" / script)], env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("message", [
    lambda: (lambda x, y=1: x + y, (40,), {"y": 2}),
    lambda: {"func": lambda x, y=1: x + y, "args": (40,), "kwargs": {"y": 2}},  # upstream's form
])
def test_py3_func_runs_the_function(results, fifo, message):
    write_fifo(fifo, [cloudpickle.dumps(message())])
    run = run_sample("py3_func/func.py", {"ABACO_RESULTS_SOCKET": os.environ["ABACO_RESULTS_SOCKET"],
                                          "ABACO_BINARY_DATA": str(fifo), "_abaco_execution_id": "ex-1"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert cloudpickle.loads(results.recv(200_000)) == 42
    assert "py3_func: execution ex-1: running" in run.stdout


def test_py3_func_reports_a_failing_function(results, fifo):
    def fails():
        raise ValueError("boom")

    write_fifo(fifo, [cloudpickle.dumps((fails, (), {}))])
    run = run_sample("py3_func/func.py", {"ABACO_RESULTS_SOCKET": os.environ["ABACO_RESULTS_SOCKET"],
                                          "ABACO_BINARY_DATA": str(fifo)})
    assert run.returncode == 1
    assert "ValueError: boom" in run.stderr


def test_wc_counts_and_sends(results):
    run = run_sample("wc/wc.py", {"MSG": "the quick  brown fox", "_abaco_Content_Type": "str",
                                  "ABACO_RESULTS_SOCKET": os.environ["ABACO_RESULTS_SOCKET"]})
    assert run.returncode == 0, run.stderr
    assert "Number of words is: 4" in run.stdout
    assert results.recv(100) == b"4"


def test_wc_counts_a_binary_message(results, fifo):
    write_fifo(fifo, [b"one two\nthree"])
    run = run_sample("wc/wc.py", {"_abaco_Content_Type": "application/octet-stream", "ABACO_BINARY_DATA": str(fifo),
                                  "ABACO_RESULTS_SOCKET": os.environ["ABACO_RESULTS_SOCKET"]})
    assert "Number of words is: 3" in run.stdout, run.stderr
    assert results.recv(100) == b"3"


def test_sleep_loop_settings_and_sigterm():
    run = run_sample("sleep_loop/sleep_loop.py", {"MSG": "{'iterations': 3, 'sleep': 0}"})
    assert run.returncode == 0
    assert re.findall(r"iteration (\d) of 3", run.stdout) == ["1", "2", "3"]
    env = {k: v for k, v in os.environ.items() if k not in CONTRACT_VARS}
    env.update(PYTHONPATH=str(SDK_DIR), PYTHONUNBUFFERED="1", MSG="100", SLEEP_LOOP_SECONDS="0.1")
    proc = subprocess.Popen([sys.executable, str(ROOT / "images" / "sleep_loop" / "sleep_loop.py")], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert "100 iterations" in proc.stdout.readline()
        proc.terminate()
        assert proc.wait(timeout=5) == 143
        assert "SIGTERM" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_cloudpickle_pins_match():
    """The tests pickle functions for the image: both sides need the same cloudpickle."""

    def pin(path: Path) -> str:
        return re.search(r"^cloudpickle==(\S+)", path.read_text(), re.M).group(1)

    assert pin(SDK_DIR / "requirements.txt") == pin(ROOT / "requirements-test.txt") == cloudpickle.__version__
