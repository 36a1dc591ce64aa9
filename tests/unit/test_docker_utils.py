"""What docker_utils tells Docker about an actor container, and how it reads stats samples (no daemon)."""
from __future__ import annotations

import pytest

from actors import docker_utils
from actors.accounting import Usage
from actors.config import host_id
from actors.docker_utils import RunSpec, env_list, host_config_kwargs, usage_from_stats

pytestmark = pytest.mark.unit


def spec(**fields) -> RunSpec:
    return RunSpec(image="abacosamples/test", environment={}, labels={}, **fields)


def test_mount_modes_are_honoured():
    """Upstream read a key its mounts did not have, so 'ro' mounts were read-write."""
    kwargs = host_config_kwargs(spec(mounts=[
        {"host_path": "/data/ro", "container_path": "/ro", "mode": "ro"},
        {"host_path": "/data/rw", "container_path": "/rw", "mode": "rw"},
        {"host_path": "/tmp/s/w/e.sock", "container_path": "/_abaco_results.sock", "mode": "ro"},
    ]))
    assert kwargs["volumes"] == {
        "/data/ro": {"bind": "/ro", "mode": "ro"},
        "/data/rw": {"bind": "/rw", "mode": "rw"},
        "/tmp/s/w/e.sock": {"bind": "/_abaco_results.sock", "mode": "ro"},
    }
    assert kwargs["privileged"] is False


def test_privileged_gets_the_docker_socket_and_limits_pass_through():
    kwargs = host_config_kwargs(spec(privileged=True, mem_limit="64m", max_cpus=500000000, user="4321:4321",
                                     cgroup_parent="/abaco/w1", network="host"))
    assert kwargs["privileged"] is True
    assert kwargs["volumes"][docker_utils.socket_path()] == {"bind": "/var/run/docker.sock", "mode": "rw"}
    assert kwargs["mem_limit"] == "64m" and kwargs["nano_cpus"] == 500000000
    assert kwargs["user"] == "4321:4321" and kwargs["cgroup_parent"] == "/abaco/w1"
    assert kwargs["network_mode"] == "host"


def test_unlimited_means_no_limit():
    kwargs = host_config_kwargs(spec(mem_limit="-1", max_cpus=-1))
    assert "mem_limit" not in kwargs and "nano_cpus" not in kwargs and "user" not in kwargs


def test_env_values_are_python_str_and_none_is_a_bare_name():
    assert env_list({"MSG": str({"a": True}), "EMPTY": "", "UNSET": None}) == ["MSG={'a': True}", "EMPTY=", "UNSET"]


def test_usage_from_a_stats_sample():
    sample = {
        "cpu_stats": {"cpu_usage": {"total_usage": 123456789}},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 8, "minor": 0, "op": "Read", "value": 4096},
            {"major": 8, "minor": 0, "op": "Write", "value": 8192},
            {"major": 8, "minor": 0, "op": "Total", "value": 12288},
            {"major": 8, "minor": 16, "op": "Total", "value": 100},
        ]},
        "memory_stats": {"max_usage": 1048576},
    }
    usage = usage_from_stats(sample)
    assert (usage.cpu, usage.io, usage.memory) == (123456789, 12388, 1048576)
    assert usage_from_stats({}) == Usage()


def test_the_actor_container_is_created_as_specified(tmp_path):
    """The low-level create gives Docker the same container the high-level one would."""
    (tmp_path / "ro").mkdir()
    container = docker_utils.create_actor_container(RunSpec(
        image="abacosamples/test", environment={"MSG": "hi", "EMPTY": None}, labels={"org.abaco.execution": "e1"},
        user="4321:4321", mem_limit="64m", network="none",
        mounts=[{"host_path": str(tmp_path / "ro"), "container_path": "/data", "mode": "ro"}]))
    try:
        attrs = docker_utils.client().api.inspect_container(container.id)
        config, host = attrs["Config"], attrs["HostConfig"]
        assert "MSG=hi" in config["Env"] and "EMPTY" in config["Env"]
        assert config["Labels"]["org.abaco.role"] == "actor" and config["Labels"]["org.abaco.execution"] == "e1"
        assert config["Labels"]["org.abaco.host_id"] == host_id()
        assert config["User"] == "4321:4321"
        assert host["Binds"] == [f"{tmp_path / 'ro'}:/data:ro"]
        assert host["Memory"] == 64 * 1024 * 1024 and host["NetworkMode"] == "none"
    finally:
        docker_utils.remove_container(container.id)


@pytest.mark.parametrize("state, wanted", [
    # Docker's own times win over ours
    ({"StartedAt": "2026-12-02T15:20:33.500000Z", "FinishedAt": "2026-12-02T15:20:33.700000Z"}, (0.5, 0.7)),
    # an instant exit: containerd's exit time a fraction of a millisecond before dockerd's start time
    ({"StartedAt": "2026-12-02T15:20:33.636592Z", "FinishedAt": "2026-12-02T15:20:33.636378Z"}, (0.636378, 0.636378)),
    # no times in the state: ours, and never a finish before the start
    ({}, (0.9, 0.9)),
])
def test_run_times_never_start_after_the_finish(state, wanted):
    base = docker_utils.parse_docker_time("2026-12-02T15:20:33Z")
    started, finished = docker_utils.run_times(state, base + 0.9, base + 0.8)
    assert (round(started - base, 6), round(finished - base, 6)) == wanted
