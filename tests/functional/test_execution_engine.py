"""The execution engine with real containers:
environment, JSON and binary messages, results, synchronous messages, limits, mounts, container
user, logs, state written from inside a container, and workers replaced on update.

Worker-side settings (max_run_time, leave_containers, log length and expiry) and registration-time
ones (global mounts, uid/gid) can only be tested against a differently configured stack. The
``configured`` fixture starts one for this module: a spawner of its own on a command queue of its
own (``python -m actors.spawner`` with env ``queue=<name>``; the spawner hands its env overrides to
the workers it starts, so they see the same settings) and a web server with the same overrides on
``ABACO_TEST_ENGINE_PORT`` (8036), which registers actors with ``"queue": <name>``. A second spawner
on another queue runs without ``socket_host_path_dir``. Both share Redis, RabbitMQ and Docker with the
main stack; everything is removed afterwards.

Images: abacosamples/test (prints MSG and its environment), abacosamples/engine_test (binary size and
sha256, or ``sh -c $ABACO_TEST_SCRIPT``), abacosamples/results_test (sends results), all built by
images/samples.sh.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest

from tests.functional.conftest import (
    CASE,
    TENANT,
    TEST_IMAGE,
    Api,
    f,
    wait_for,
    wait_for_actor_status,
    wait_for_execution,
)
from tests.functional.stacks import Spawner, WebServer

ROOT = Path(__file__).resolve().parents[2]
ENGINE_IMAGE = "abacosamples/engine_test"
RESULTS_IMAGE = "abacosamples/results_test"
ENGINE_PORT = int(os.environ.get("ABACO_TEST_ENGINE_PORT", "8036"))
MAX_RUN_TIME = 4
MAX_LOG_LENGTH = 300
LOG_EX = 8
SYNC_TIMEOUT = 2
UID = "4321"


# -- helpers ------------------------------------------------------------------------------------
def send(api: Api, actor_id: str, **kwargs) -> str:
    if not any(k in kwargs for k in ("data", "json")):
        kwargs["data"] = {"message": "hello"}
    return api.result("POST", f"/actors/{actor_id}/messages", **kwargs)[f("execution_id")]


def logs_of(api: Api, actor_id: str, execution_id: str) -> str:
    return api.result("GET", f"/actors/{actor_id}/executions/{execution_id}/logs")["logs"]


def run(api: Api, actor_id: str, timeout: float = 60, **kwargs) -> tuple[dict, str]:
    """Send one message and wait for its execution to be COMPLETE: (execution, logs)."""
    execution_id = send(api, actor_id, **kwargs)
    execution = wait_for_execution(api, actor_id, execution_id, timeout=timeout)
    return execution, logs_of(api, actor_id, execution_id)


def env_of(logs: str) -> dict[str, str]:
    """The environment abacosamples/test prints after 'Environment:'."""
    env = {}
    for line in logs.split("Environment:", 1)[1].splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            env[key] = value
    return env


def engine_actor(make, script: str = "", **fields) -> dict:
    env = dict(fields.pop(f("default_environment"), {}))
    if script:
        env["ABACO_TEST_SCRIPT"] = script
    return make(image=ENGINE_IMAGE, **{f("default_environment"): env}, **fields)


# -- the main stack -----------------------------------------------------------------------------
def test_environment_precedence(api, make_actor):
    """default_environment < query parameters < the _abaco_* values set by Abaco."""
    spoof = "spoofed"
    actor = make_actor(**{f("default_environment"): {
        "LEVEL": "default", "DEFAULT_ONLY": "d", "MSG": spoof,
        "_abaco_username": spoof, "_abaco_actor_id": spoof, "_abaco_Content_Type": spoof,
    }})
    params = {"LEVEL": "query", "QUERY_ONLY": "q", "_abaco_username": spoof, "_abaco_worker_id": spoof,
              "_abaco_execution_id": spoof, "_abaco_actor_dbid": spoof}
    execution, logs = run(api, actor["id"], params=params, data={"message": "precedence"})
    env = env_of(logs)
    assert env["DEFAULT_ONLY"] == "d" and env["QUERY_ONLY"] == "q"
    assert env["LEVEL"] == "query"
    assert env["MSG"] == "precedence"
    assert env["_abaco_username"] == "anonymous"
    assert env["_abaco_Content_Type"] == "str"
    assert env["_abaco_execution_id"] == execution["id"]
    assert env["_abaco_actor_id"] == actor["id"]
    assert env["_abaco_actor_dbid"] == f"{TENANT}_{actor['id']}"
    assert env["_abaco_worker_id"] == execution[f("worker_id")]
    assert env["_abaco_container_repo"] == TEST_IMAGE
    assert env["_abaco_actor_name"] == actor["name"]
    assert env["_abaco_actor_state"] == "{}"
    assert env["_abaco_api_server"].startswith("http")
    assert env["_abaco_access_token"] == ""


def test_json_message_gives_the_python_repr_in_msg(api, make_actor):
    actor = make_actor()
    message = {"key1": "value1", "n": 1, "flag": True, "nothing": None, "list": [1, "a"]}
    result = api.result("POST", f"/actors/{actor['id']}/messages", json=message)
    assert result["msg"] == message
    wait_for_execution(api, actor["id"], result[f("execution_id")])
    env = env_of(logs_of(api, actor["id"], result[f("execution_id")]))
    assert env["MSG"] == str(message) == "{'key1': 'value1', 'n': 1, 'flag': True, 'nothing': None, 'list': [1, 'a']}"
    assert env["_abaco_Content_Type"] == "application/json"


@pytest.mark.slow
def test_ten_megabyte_binary_message_is_read_through_the_fifo(api, make_actor):
    actor = engine_actor(make_actor)
    data = os.urandom(10 * 1024 * 1024)
    result = api.result("POST", f"/actors/{actor['id']}/messages", data=data,
                        headers={"Content-Type": "application/octet-stream"})
    assert result["msg"] == "binary - omitted"
    execution = wait_for_execution(api, actor["id"], result[f("execution_id")], timeout=120)
    assert execution[f("exit_code")] == 0
    logs = logs_of(api, actor["id"], execution["id"])
    assert f"binary size: {len(data)}" in logs
    assert f"binary sha256: {hashlib.sha256(data).hexdigest()}" in logs


def test_binary_message_sets_no_msg_and_an_actor_that_never_reads_still_finishes(api, make_actor):
    actor = make_actor()  # abacosamples/test never opens /_abaco_binary_data
    execution, logs = run(api, actor["id"], data=os.urandom(3 * 1024 * 1024),
                          headers={"Content-Type": "application/octet-stream"})
    env = env_of(logs)
    assert "MSG" not in env
    assert env["_abaco_Content_Type"] == "application/octet-stream"
    assert execution[f("exit_code")] == 0


def test_results_round_trip_through_the_socket(api, make_actor):
    actor = make_actor(image=RESULTS_IMAGE, **{f("default_environment"): {"ABACO_TEST_RESULTS": "3"}})
    execution, logs = run(api, actor["id"], data={"message": "res"})
    assert "sent 3 result(s)" in logs
    path = f"/actors/{actor['id']}/executions/{execution['id']}/results"
    for expected in (b"res:0", b"res:1", b"res:2", b""):
        response = api.request("GET", path)
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.content == expected


def test_synchronous_message_returns_the_first_result_before_the_end(api, make_actor):
    actor = make_actor(image=RESULTS_IMAGE, **{f("default_environment"): {"ABACO_TEST_SLEEP": "3"}})
    wait_for_actor_status(api, actor["id"], "READY")
    started = time.monotonic()
    response = api.request("POST", f"/actors/{actor['id']}/messages", params={"_abaco_synchronous": "true"},
                           data={"message": "sync-result"})
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.content == b"sync-result"
    assert time.monotonic() - started < 30
    executions = api.result("GET", f"/actors/{actor['id']}/executions")["executions"]
    assert [e["status"] for e in executions] == ["RUNNING"]  # it sleeps 3 s after sending


def test_synchronous_message_without_result_returns_the_logs(api, make_actor):
    actor = make_actor()
    response = api.request("POST", f"/actors/{actor['id']}/messages", params={"_abaco_synchronous": "True"},
                           data={"message": "sync-logs"})
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Contents of MSG: sync-logs" in response.text
    assert "_abaco_synchronous=True" in response.text  # passed to the container like any parameter
    [execution] = api.result("GET", f"/actors/{actor['id']}/executions")["executions"]
    assert execution["status"] == "COMPLETE"


def test_memory_limit_kills_the_container(api, make_actor):
    actor = engine_actor(make_actor, "exec dd if=/dev/zero of=/dev/null bs=200M count=1",
                         **{f("mem_limit"): "20m"})
    execution, _ = run(api, actor["id"])
    assert execution[f("exit_code")] == 137
    state = execution[f("final_state")]
    assert state["OOMKilled"] is True
    assert state["AbacoStopReason"] == "mem_limit" and "20m" in state["AbacoMessage"]


def privileged_containers_run(docker_client) -> bool:
    """Some engines (e.g. a dockerd without CAP_SYS_RESOURCE, as on these machines) cannot start
    privileged containers at all; the host configuration is then checked by
    tests/unit/test_docker_utils.py only."""
    container = docker_client.containers.create("abaco/busybox:local", "true", privileged=True, network_mode="none")
    try:
        container.start()
        return container.wait(timeout=30)["StatusCode"] == 0
    except Exception:
        return False
    finally:  # a start that fails leaves the container Created; run(remove=True) would leave it there
        container.remove(force=True)


def test_privileged_actor_runs_privileged_with_the_docker_socket(api, make_actor, docker_client):
    if not privileged_containers_run(docker_client):
        pytest.skip("this Docker engine cannot start privileged containers")
    script = "ls -l /var/run/docker.sock; grep CapEff /proc/self/status"
    caps = {}
    for privileged in (True, False):
        actor = engine_actor(make_actor, script, privileged=privileged)
        execution, logs = run(api, actor["id"])
        assert ("docker.sock" in logs.split("CapEff")[0]) is privileged, logs
        caps[privileged] = int(logs.split("CapEff:")[1].split()[0], 16)
    cap_sys_admin = 1 << 21
    assert caps[True] & cap_sys_admin and not caps[False] & cap_sys_admin


def test_force_quit_says_why_in_final_state(api, make_actor):
    actor = engine_actor(make_actor, "sleep 60")
    execution_id = send(api, actor["id"])
    wait_for_execution(api, actor["id"], execution_id, status="RUNNING")
    api.call("DELETE", f"/actors/{actor['id']}/executions/{execution_id}")
    execution = wait_for_execution(api, actor["id"], execution_id, timeout=40)
    assert execution[f("final_state")]["AbacoStopReason"] == "force_quit"
    assert execution[f("final_state")]["AbacoMessage"] == "The execution was force-quit."


@pytest.mark.slow
def test_logs_are_readable_while_the_execution_runs(api, make_actor):
    actor = make_actor(**{f("default_environment"): {"ABACO_TEST_SLEEP": "12"}})
    execution_id = send(api, actor["id"], data={"message": "live-logs"})
    wait_for_execution(api, actor["id"], execution_id, status="RUNNING")
    logs = wait_for(lambda: (text := logs_of(api, actor["id"], execution_id)) and "live-logs" in text and text,
                    timeout=8, what="the live logs")
    assert "Environment:" not in logs  # printed after the sleep: this is the running container's output
    assert api.result("GET", f"/actors/{actor['id']}/executions/{execution_id}")["status"] == "RUNNING"
    wait_for_execution(api, actor["id"], execution_id, timeout=40)
    assert "Environment:" in logs_of(api, actor["id"], execution_id)


def test_state_is_updated_from_inside_the_container(api, make_actor):
    script = ("echo \"state: $_abaco_actor_state\"; "
              "wget -q -O - --header 'Content-Type: application/json' "
              "--post-data \"{\\\"count\\\": 1, \\\"by\\\": \\\"$_abaco_execution_id\\\"}\" "
              "\"$_abaco_api_server/actors/$_abaco_actor_id/state\"")
    actor = engine_actor(make_actor, script, stateless=False)
    first, logs = run(api, actor["id"])
    assert first[f("exit_code")] == 0, logs
    assert "state: {}" in logs
    state = api.result("GET", f"/actors/{actor['id']}/state")["state"]
    assert state == {"count": 1, "by": first["id"]}
    _, logs = run(api, actor["id"])
    assert f"state: {{'count': 1, 'by': '{first['id']}'}}" in logs  # Python repr, as upstream


@pytest.mark.slow
def test_update_with_a_new_image_while_messages_are_queued_loses_nothing(api, make_actor):
    env = {"ABACO_TEST_SLEEP": "2"}
    actor = make_actor(**{f("default_environment"): env})
    wait_for_actor_status(api, actor["id"], "READY")
    [old_worker] = api.result("GET", f"/actors/{actor['id']}/workers")
    sent = [send(api, actor["id"], data={"message": f"m{i}"}) for i in range(5)]
    wait_for_execution(api, actor["id"], sent[0], status="RUNNING")
    api.result("PUT", f"/actors/{actor['id']}", json={"image": "jstubbs/abaco_test", f("default_environment"): env})
    executions = [wait_for_execution(api, actor["id"], eid, timeout=90) for eid in sent]
    assert all(e[f("exit_code")] == 0 for e in executions)
    assert executions[0][f("worker_id")] == old_worker["id"]  # the old worker finished what it had
    repos = [env_of(logs_of(api, actor["id"], e["id"]))["_abaco_container_repo"] for e in executions]
    assert repos[0] == TEST_IMAGE and repos[-1] == "jstubbs/abaco_test"
    workers = wait_for(lambda: (w := api.result("GET", f"/actors/{actor['id']}/workers")) and len(w) == 1 and w,
                       timeout=30, what="the old worker to go")
    assert workers[0]["id"] != old_worker["id"]


# -- a differently configured stack -------------------------------------------------------------
class ConfiguredStack:
    def __init__(self, api: Api, queue: str, noipc_queue: str, ro_dir: Path, rw_dir: Path):
        self.api, self.queue, self.noipc_queue = api, queue, noipc_queue
        self.ro_dir, self.rw_dir = ro_dir, rw_dir
        self.created: list[str] = []

    def make_actor(self, queue: str | None = None, script: str = "", image: str = ENGINE_IMAGE, **fields) -> dict:
        env = dict(fields.pop(f("default_environment"), {}))
        if script:
            env["ABACO_TEST_SCRIPT"] = script
        body = {"image": image, "name": f"engine-{uuid.uuid4().hex[:8]}", "queue": queue or self.queue,
                f("default_environment"): env, **fields}
        actor = self.api.result("POST", "/actors", json=body)
        self.created.append(actor["id"])
        return actor


@pytest.fixture(scope="module")
def configured(tmp_path_factory, docker_client):
    from actors import channels

    tag = uuid.uuid4().hex[:6]
    queue, noipc_queue = f"engine{tag}", f"enginenoipc{tag}"
    ro_dir = tmp_path_factory.mktemp("ro")
    rw_dir = tmp_path_factory.mktemp("rw")
    (ro_dir / "hello").write_text("hello from the host\n")
    os.chmod(ro_dir, 0o755)  # the actors run as uid 4321
    os.chmod(rw_dir, 0o777)
    common = {"spawner_host_queues": f"default, special, {queue}, {noipc_queue}"}
    overrides = {
        "workers_max_run_time": str(MAX_RUN_TIME),
        "workers_stop_grace_seconds": "1",
        "workers_global_mounts": f"{ro_dir}:/abaco_ro:ro,{rw_dir}:/abaco_rw:rw",
        "workers_actor_uid": UID,
        "workers_actor_gid": UID,
        "workers_leave_containers": "true",
        "web_max_log_length": str(MAX_LOG_LENGTH),
        "web_log_ex": str(LOG_EX),
        "web_sync_timeout": str(SYNC_TIMEOUT),
    }
    spawners = [Spawner(queue, {**common, **overrides}),
                Spawner(noipc_queue, {**common, "workers_socket_host_path_dir": ""})]
    server = stack = None
    try:
        server = WebServer(ENGINE_PORT, {**common, **overrides, "web_case": CASE})
        stack = ConfiguredStack(Api(server.base_url), queue, noipc_queue, ro_dir, rw_dir)
        yield stack
        for actor_id in stack.created:
            stack.api.request("DELETE", f"/actors/{actor_id}", expect=None)
    finally:
        for spawner in spawners:
            spawner.stop()
        if server is not None:
            server.stop()
        for actor_id in (stack.created if stack else []):
            for container in docker_client.containers.list(
                    ignore_removed=True, all=True, filters={"label": f"org.abaco.actor={TENANT}_{actor_id}"}):
                container.remove(force=True)
        for name in (queue, noipc_queue):
            channels.delete_queue(channels.command_queue_name(name))
        channels.close_thread_connection()
        shutil.rmtree(rw_dir, ignore_errors=True)


def test_max_run_time_stops_the_execution_and_says_so(configured):
    api = configured.api
    actor = configured.make_actor(script="echo started; sleep 60")
    execution, logs = run(api, actor["id"], timeout=60)
    assert execution["status"] == "COMPLETE"  # upstream's status for a stopped execution
    assert "started" in logs
    state = execution[f("final_state")]
    assert state["AbacoStopReason"] == "max_run_time"
    assert f"maximum run time of {MAX_RUN_TIME} seconds" in state["AbacoMessage"]
    assert MAX_RUN_TIME <= execution["runtime"] <= MAX_RUN_TIME + 6
    assert execution[f("exit_code")] != 0


def test_global_mounts_keep_their_modes_and_the_configured_uid_is_used(configured, docker_client):
    script = ("cat /abaco_ro/hello; "
              "touch /abaco_ro/written 2>&1; "
              "echo y > /abaco_rw/written && echo 'rw: written'; echo \"uid=$(id -u) gid=$(id -g)\"")
    actor = configured.make_actor(script=script)
    assert {(m["container_path"], m["mode"]) for m in actor["mounts"]} == {("/abaco_ro", "ro"), ("/abaco_rw", "rw")}
    assert str(actor["uid"]) == UID and str(actor["gid"]) == UID
    execution, logs = run(configured.api, actor["id"])
    assert "hello from the host" in logs
    assert "/abaco_ro/written: Read-only file system" in logs and "rw: written" in logs
    assert f"uid={UID} gid={UID}" in logs
    assert not (configured.ro_dir / "written").exists()
    assert (configured.rw_dir / "written").read_text() == "y\n"
    # leave_containers kept the container: its mounts are what Docker was told
    [container] = docker_client.containers.list(ignore_removed=True, all=True, filters={"label": f"org.abaco.execution={execution['id']}"})
    modes = {m["Destination"]: m["RW"] for m in container.attrs["Mounts"]}
    assert modes["/abaco_ro"] is False and modes["/abaco_rw"] is True
    assert modes["/_abaco_results.sock"] is False


def test_use_container_uid_runs_as_the_image_user(configured):
    actor = configured.make_actor(script="echo \"uid=$(id -u)\"", **{f("use_container_uid"): True})
    _, logs = run(configured.api, actor["id"])
    assert "uid=0" in logs


def test_limits_reach_docker_and_leave_containers_keeps_them(configured, docker_client):
    actor = configured.make_actor(script="echo limited", **{f("mem_limit"): "64m", f("max_cpus"): 500000000})
    execution, logs = run(configured.api, actor["id"])
    assert "limited" in logs
    [container] = docker_client.containers.list(ignore_removed=True, all=True, filters={"label": f"org.abaco.execution={execution['id']}"})
    host_config = container.attrs["HostConfig"]
    assert host_config["Memory"] == 64 * 1024 * 1024
    assert host_config["NanoCpus"] == 500000000
    assert host_config["CgroupParent"] == f"/abaco/{execution[f('worker_id')]}"
    assert container.status == "exited"


def test_logs_are_truncated_at_max_log_length(configured):
    script = "i=0; while [ $i -lt 100 ]; do echo 0123456789; i=$((i+1)); done"
    actor = configured.make_actor(script=script)
    _, logs = run(configured.api, actor["id"])
    assert len(logs) == MAX_LOG_LENGTH
    assert logs.startswith("0123456789\n")


@pytest.mark.slow
def test_logs_expire_after_log_ex(configured):
    actor = configured.make_actor(script="echo short-lived")
    execution, logs = run(configured.api, actor["id"])
    assert "short-lived" in logs
    wait_for(lambda: logs_of(configured.api, actor["id"], execution["id"]) == "", timeout=LOG_EX + 10,
             interval=0.5, what="the logs to expire")


def test_synchronous_message_times_out_with_a_408_envelope(configured):
    actor = configured.make_actor(script="sleep 3; echo done")
    wait_for_actor_status(configured.api, actor["id"], "READY")
    response = configured.api.request("POST", f"/actors/{actor['id']}/messages",
                                      params={"_abaco_synchronous": "true"}, data={"message": "slow"}, expect=408)
    body = response.json()
    assert body["status"] == "error" and f"within {SYNC_TIMEOUT} seconds" in body["message"]
    execution_id = body["result"][f("execution_id")]
    execution = wait_for_execution(configured.api, actor["id"], execution_id)  # not cancelled
    assert execution[f("exit_code")] == 0


def test_missing_results_configuration_errors_the_actor_and_keeps_the_message(configured):
    api = configured.api
    actor = configured.make_actor(queue=configured.noipc_queue, image=TEST_IMAGE)
    execution_id = send(api, actor["id"])
    errored = wait_for_actor_status(api, actor["id"], "ERROR", timeout=60)
    assert "socket_host_path_dir" in errored[f("status_message")]
    assert api.result("GET", f"/actors/{actor['id']}/executions/{execution_id}")["status"] == "SUBMITTED"
    wait_for(lambda: api.result("GET", f"/actors/{actor['id']}/messages")["messages"] == 1, timeout=30,
             what="the message to be back in the inbox")


def test_binary_message_through_a_configured_uid(configured):
    """The FIFO (0644) and the socket (0777) work for an actor that does not run as root."""
    actor = configured.make_actor()
    data = os.urandom(300_000)
    execution_id = configured.api.result("POST", f"/actors/{actor['id']}/messages", data=data,
                                         headers={"Content-Type": "application/octet-stream"})[f("execution_id")]
    wait_for_execution(configured.api, actor["id"], execution_id)
    logs = logs_of(configured.api, actor["id"], execution_id)
    assert f"binary sha256: {hashlib.sha256(data).hexdigest()}" in logs


def test_results_through_a_configured_uid(configured):
    actor = configured.make_actor(image=RESULTS_IMAGE)
    execution, logs = run(configured.api, actor["id"], data={"message": "as-4321"})
    assert "sent 1 result(s)" in logs
    response = configured.api.request("GET", f"/actors/{actor['id']}/executions/{execution['id']}/results")
    assert response.content == b"as-4321"

