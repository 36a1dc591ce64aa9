"""A Docker daemon that stops answering while an actor container runs (its host going down): the
worker cannot tell how the execution ended, so it records no outcome, notes the lost attempt and
puts the message back; the container, which the daemon still has, is left for a later attempt to
adopt. The daemon is the real one, reached through a socket relay the test can cut."""
from __future__ import annotations

import os
import socket
import threading
import time

import docker
import pytest

from actors import channels, docker_utils, stores
from actors.docker_utils import RunSpec
from actors.errors import DockerOutcomeUnknown
from actors.lifecycle import ExecutionStatus
from actors.models import Execution

pytestmark = pytest.mark.unit

DBID = "T-LOST_NolBaJ5y6714M"
DAEMON_SOCKET = docker_utils.socket_path()


class SocketRelay:
    """A unix socket that forwards every connection to the Docker daemon's, until ``cut()``."""

    def __init__(self, path: str):
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(16)
        self.open: list[socket.socket] = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # cut
            daemon = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            daemon.connect(DAEMON_SOCKET)
            self.open += [client, daemon]
            for source, sink in ((client, daemon), (daemon, client)):
                threading.Thread(target=self.pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.listener.close()
        os.unlink(self.path)
        for end in self.open:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()


@pytest.fixture
def relay(tmp_path):
    made = SocketRelay(str(tmp_path / "docker.sock"))
    yield made
    if os.path.exists(made.path):
        made.cut()


@pytest.fixture
def sleeping_container(monkeypatch):
    """An actor container of execution ``e-lost`` that sleeps for a few seconds, on the real daemon,
    labelled with a host id of its own (a running stack's health agent would take it for an orphan)."""
    monkeypatch.setenv("SPAWNER_HOST_ID", "lost-daemon-test")
    container = docker_utils.create_actor_container(RunSpec(
        image="abacosamples/test", environment={"ABACO_TEST_SLEEP": "4"}, network="none",
        labels={docker_utils.EXECUTION_LABEL: "e-lost"}))
    yield container
    try:
        docker_utils.remove_container(container.id)
    except Exception:  # noqa: BLE001 - removed by the test already
        pass


def through(relay: SocketRelay, container):
    return docker.DockerClient(base_url=f"unix://{relay.path}", version="auto").containers.get(container.id)


def test_a_container_that_runs_longer_than_the_grace_is_supervised_to_its_end(relay, sleeping_container):
    """Timeouts of the wait call are not a lost daemon, however long the container runs."""
    container = through(relay, sleeping_container)
    container.start()
    killed = docker_utils.supervise(container, time.time(), -1, threading.Event(), None, 2.0, daemon_lost_after=0.5)
    assert killed is None
    container.reload()
    assert container.attrs["State"]["Status"] == "exited" and container.attrs["State"]["ExitCode"] == 0


def test_a_daemon_that_stops_answering_loses_the_outcome_and_keeps_the_container(relay, sleeping_container):
    container = through(relay, sleeping_container)
    container.start()
    threading.Timer(1.0, relay.cut).start()
    began = time.monotonic()
    with pytest.raises(DockerOutcomeUnknown, match="has not answered"):
        docker_utils.supervise(container, time.time(), -1, threading.Event(), None, 2.0, daemon_lost_after=1.0)
    assert time.monotonic() - began < 3.5  # given up before the container ended by itself
    # the daemon still has the container: a later attempt on this host collects its outcome
    adopted = docker_utils.adopt_actor_container("e-lost", threading.Event(), -1)
    assert adopted is not None and adopted.container_id == sleeping_container.id
    assert adopted.exit_code == 0 and adopted.final_state["Status"] == "exited"


def worker_with_a_running_execution(execution_id: str, worker_id: str):
    """A worker process (with its consumer) and an execution that worker ``w1`` began as attempt 1."""
    from actors.worker import WorkerProcess

    stores.executions_store[Execution.key(DBID, execution_id)] = {
        "id": execution_id, "actor_id": DBID, "status": ExecutionStatus.RUNNING, "attempts": 1, "worker_id": "w1",
        "start_time": time.time()}
    process = WorkerProcess({"worker_id": worker_id, "actor_id": DBID})
    process.consumer = channels.Consumer()
    return process


def test_a_lost_outcome_puts_the_message_back_and_says_why(model_stores):
    process = worker_with_a_running_execution("e-lost", "w1")
    try:
        requeue = process.outcome_lost("e-lost", DockerOutcomeUnknown("The Docker daemon has not answered"))
    finally:
        process.consumer.close()
    assert requeue is True
    record = Execution.get(DBID, "e-lost")
    assert record["status"] == ExecutionStatus.RUNNING  # no outcome was recorded
    [lost] = record["previous_attempts"]
    assert lost["attempt"] == 1 and lost["worker"] == "w1" and "lost contact with its Docker daemon" in lost["outcome"]

    # the next attempt does not report this one a second time, as a lost worker
    Execution.begin_attempt(DBID, "e-lost", "w2", earlier_outcome="Worker w1 was lost")
    record = Execution.get(DBID, "e-lost")
    assert record["attempts"] == 2 and [a["outcome"] for a in record["previous_attempts"]] == [lost["outcome"]]


def test_a_daemon_out_of_reach_when_an_earlier_attempt_is_looked_for_puts_the_message_back(
        relay, model_stores, monkeypatch):
    """A redelivered message whose worker cannot ask its daemon for the earlier attempt's container:
    running it afresh could run it twice, recording a failure would invent an outcome; it goes back."""
    monkeypatch.setenv("docker_dd", f"unix://{relay.path}")
    monkeypatch.setattr(docker_utils, "_client", None)  # this process's client, made for the relay
    relay.cut()
    stores.actors_store[DBID] = {"db_id": DBID, "id": "NolBaJ5y6714M", "tenant": "T-LOST", "image": "abacosamples/test"}
    process = worker_with_a_running_execution("e-adopt", "w2")
    try:
        requeues = [process.run_execution({"_abaco_execution_id": "e-adopt", "msg": "m"}, redelivered=True)
                    for _ in range(2)]  # the same redelivery twice: the attempt is noted once
    finally:
        process.consumer.close()
        monkeypatch.setattr(docker_utils, "_client", None)
    assert requeues == [True, True]
    record = Execution.get(DBID, "e-adopt")
    assert record["status"] == ExecutionStatus.RUNNING and record["attempts"] == 1
    [lost] = record["previous_attempts"]
    assert lost["attempt"] == 1 and lost["worker"] == "w1"
    assert "worker w2 could not ask its Docker daemon" in lost["outcome"]
    assert "Could not look for the container of an earlier attempt" in lost["outcome"]
