"""Two compute hosts on one machine: the stack `make up` started is host 0 (the first Docker daemon);
host 1 is another Docker daemon (`ABACO_DOCKER2_NAME=docker-mh scripts/services.sh start docker2`)
with a spawner for the default queue, a spawner for the queue `special` and a health agent of its
own, started here with `SPAWNER_HOST_ID=1` and `docker_dd` pointing at that daemon.

Checked: work spreads over both hosts; host 1 never holds more than its `max_workers_per_host`; an
actor on the queue `special` runs only on host 1; neither host's agents touch the other's
containers (from both daemons' event streams); losing host 1 (daemon and agents) mid-burst loses no
message, runs none twice, and its workers come back on host 0; when host 1 returns it removes what
it left behind. Sizes: ABACO_MULTIHOST_ACTORS (10), ABACO_MULTIHOST_MESSAGES (20 per actor),
ABACO_MULTIHOST_BURST (200).
"""
from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker
import pytest
import requests

from tests.functional.conftest import BASE_URL, TEST_IMAGE, Api, wait_for
from tests.functional.stacks import stop_process

pytestmark = [pytest.mark.multihost, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CONF = os.environ.get("ABACO_CONF", str(ROOT / "local-dev.conf"))
# a daemon of this module's own (the Ansible suite's second compute host may be using docker2)
DAEMON2 = os.environ.get("ABACO_MULTIHOST_DAEMON", "docker-mh")
SOCKET2 = f"/var/run/abaco-{DAEMON2}.sock"
HOST1 = "1"
HOST1_LIMIT = 3
ACTORS = int(os.environ.get("ABACO_MULTIHOST_ACTORS", "10"))
MESSAGES = int(os.environ.get("ABACO_MULTIHOST_MESSAGES", "20"))
BURST = int(os.environ.get("ABACO_MULTIHOST_BURST", "200"))
LOGS = ROOT / ".run" / "logs"


def docker1() -> docker.DockerClient:
    return docker.DockerClient(base_url="unix://var/run/docker.sock", version="auto")


def docker2() -> docker.DockerClient:
    return docker.DockerClient(base_url=f"unix://{SOCKET2}", version="auto")


def services(action: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "scripts" / "services.sh"), action, "docker2"], check=True, timeout=120,
                          env=dict(os.environ, ABACO_DOCKER2_NAME=DAEMON2), capture_output=action == "status", text=True)


def core_image() -> str:
    os.environ.setdefault("ABACO_CONF", CONF)
    from actors import docker_utils

    return docker_utils.core_image()


def copy_images(names: list[str]) -> None:
    """The second daemon has no registry either: the images go over from the first one."""
    first, second = docker1(), docker2()
    for name in names:
        wanted = first.images.get(name).id
        try:
            if second.images.get(name).id == wanted:
                continue
        except docker.errors.ImageNotFound:
            pass
        data = first.images.get(name).save(named=True)
        second.images.load(b"".join(data))


class Host1:
    """The agents of host 1, as processes of this test session."""

    def __init__(self):
        self.env = dict(os.environ, ABACO_CONF=CONF, abaco_conf_host_path=CONF, logs_host_dir=str(LOGS),
                        SPAWNER_HOST_ID=HOST1, docker_dd=f"unix://{SOCKET2}",
                        spawner_max_workers_per_host=str(HOST1_LIMIT), health_interval="3")
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        for name, extra in (("spawner", {"queue": "default"}), ("spawner", {"queue": "special"}), ("health", {})):
            log = (LOGS / f"host1-{name}-{extra.get('queue', 'all')}.out").open("ab")
            self.processes.append(subprocess.Popen([sys.executable, "-m", f"actors.{name}"], cwd=ROOT,
                                                   env={**self.env, **extra}, stdout=log, stderr=subprocess.STDOUT))

    def stop(self, hard: bool = False) -> None:
        for process in self.processes:
            if hard:
                process.kill()
                process.wait(10)
            else:
                stop_process(process, timeout=30)
        self.processes = []


class Events:
    """Container events of one daemon with Abaco's labels, recorded from a thread."""

    def __init__(self, client: docker.DockerClient):
        self.events: list[dict] = []
        self.stream = client.events(decode=True, filters={"type": "container", "label": "org.abaco.role"})
        threading.Thread(target=self.read, daemon=True).start()

    def read(self) -> None:
        try:
            for event in self.stream:
                self.events.append(event)
        except Exception:  # noqa: BLE001 - the daemon went away, or the test closed the stream
            pass

    def close(self) -> None:
        self.stream.close()

    def of(self, role: str, action: str) -> list[dict]:
        return [e for e in self.events if e.get("Action") == action
                and e.get("Actor", {}).get("Attributes", {}).get("org.abaco.role") == role]

    def successes(self) -> collections.Counter:
        return collections.Counter(
            e["Actor"]["Attributes"].get("org.abaco.execution") for e in self.of("actor", "die")
            if e["Actor"]["Attributes"].get("exitCode") == "0")


@pytest.fixture(scope="module")
def api() -> Api:
    try:
        requests.get(BASE_URL + "/actors", timeout=5)
    except requests.ConnectionError:
        pytest.fail(f"The Abaco stack is not answering at {BASE_URL}; start it with `make up`.")
    return Api(BASE_URL)


@pytest.fixture(scope="module")
def host1(api):
    started_daemon = " running " not in services("status").stdout
    services("start")
    copy_images([core_image(), TEST_IMAGE])
    agents = Host1()
    agents.start()
    yield agents
    agents.stop()
    if started_daemon:
        services("stop")


@pytest.fixture
def actors(api):
    made: list[str] = []

    def make(n: int, **fields) -> list[dict]:
        created = [api.result("POST", "/actors", json={"image": TEST_IMAGE, **fields}) for _ in range(n)]
        made.extend(a["id"] for a in created)
        return created

    yield make
    for actor_id in made:
        api.request("DELETE", f"/actors/{actor_id}", expect=None)


def workers_by_host(api: Api, actor_ids: list[str]) -> collections.Counter:
    hosts: collections.Counter = collections.Counter()
    for actor_id in actor_ids:
        for worker in api.result("GET", f"/actors/{actor_id}/workers"):
            hosts[worker.get("host_id")] += 1
    return hosts


def send(api: Api, actor_ids: list[str], per_actor: int) -> list[tuple[str, str]]:
    sent = []
    for i in range(per_actor):
        for actor_id in actor_ids:
            result = api.result("POST", f"/actors/{actor_id}/messages", data={"message": f"m{i}"})
            sent.append((actor_id, result["execution_id"]))
    return sent


def all_complete(api: Api, sent: list[tuple[str, str]], timeout: float) -> dict[str, dict]:
    done: dict[str, dict] = {}

    def check():
        for actor_id, execution_id in sent:
            if execution_id not in done:
                execution = api.result("GET", f"/actors/{actor_id}/executions/{execution_id}")
                if execution["status"] == "COMPLETE":
                    done[execution_id] = execution
        return len(done) == len(sent)

    wait_for(check, timeout=timeout, interval=1, what=f"{len(sent)} executions to be COMPLETE")
    return done


class Peak:
    """The most worker containers the second daemon runs at once, sampled every 0.2 s."""

    def __init__(self):
        self.peak = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        client = docker2()
        while not self.stopping.is_set():
            try:
                running = client.containers.list(ignore_removed=True, filters={"label": ["org.abaco.role=worker", f"org.abaco.host_id={HOST1}"]})
                self.peak = max(self.peak, len(running))
            except Exception:  # noqa: BLE001 - the daemon is being stopped
                pass
            self.stopping.wait(0.2)

    def stop(self) -> int:
        self.stopping.set()
        self.thread.join(5)
        return self.peak


def test_work_spreads_over_both_hosts_within_their_limits(api, host1, actors):
    events1, events2 = Events(docker1()), Events(docker2())
    peak = Peak()
    started = time.monotonic()
    try:
        ids = [a["id"] for a in actors(ACTORS)]
        wait_for(lambda: sum(workers_by_host(api, ids).values()) >= ACTORS, timeout=120, what="a worker per actor")
        sent = send(api, ids, MESSAGES)
        done = all_complete(api, sent, timeout=600)
        hosts = workers_by_host(api, ids)
    finally:
        most = peak.stop()
        events1.close()
        events2.close()
    print(f"\n{len(done)} executions of {ACTORS} actors in {time.monotonic() - started:.1f}s; workers per host "
          f"{dict(hosts)}; at most {most} worker containers on host 1 (limit {HOST1_LIMIT})")
    assert all(e["exit_code"] == 0 for e in done.values())
    assert hosts["0"] > 0 and hosts[HOST1] > 0, hosts
    assert 0 < most <= HOST1_LIMIT
    # each execution ran once, on one host or the other
    successes = collections.Counter({e: n for e, n in (events1.successes() + events2.successes()).items() if e in done})
    assert all(n == 1 for n in successes.values()) and set(successes) >= set(done)
    # healthy workers were never removed: no host's agents killed a worker container
    assert not events1.of("worker", "kill") and not events2.of("worker", "kill")


def test_an_actor_on_a_dedicated_queue_runs_only_on_its_hosts(api, host1, actors):
    [pinned] = actors(1, queue="special")
    wait_for(lambda: workers_by_host(api, [pinned["id"]]) == {HOST1: 1}, timeout=120,
             what="the pinned actor's worker on host 1")
    sent = send(api, [pinned["id"]], 5)
    all_complete(api, sent, timeout=120)
    labels = {"label": [f"org.abaco.actor=dev_staging_{pinned['id']}"]}
    assert docker2().containers.list(ignore_removed=True, all=True, filters=labels)
    assert not docker1().containers.list(ignore_removed=True, all=True, filters=labels)


def host1_workers(api: Api, actor_ids: list[str]) -> set[str]:
    return {w["id"] for actor_id in actor_ids for w in api.result("GET", f"/actors/{actor_id}/workers")
            if w.get("host_id") == HOST1}


def explain_runs(api: Api, sent: list[tuple[str, str]], execution_ids: list[str]) -> str:
    """What the records and the stack's log say about executions that ran more than once."""
    actor_of = dict((e, a) for a, e in sent)
    log_lines = (LOGS / "abaco.log").read_text(errors="replace").splitlines() if (LOGS / "abaco.log").exists() else []
    parts = []
    for execution_id in execution_ids:
        record = api.result("GET", f"/actors/{actor_of[execution_id]}/executions/{execution_id}")
        mentions = [line for line in log_lines if execution_id in line]
        parts.append(f"{execution_id} ran more than once: {record}\n" + "\n".join(mentions[-40:]))
    return "\n\n".join(parts)


def test_a_lost_host_loses_nothing_and_comes_back_clean(api, host1, actors):
    """Host 1's agents die and its daemon stops mid-burst. Every message still ends COMPLETE, and no
    execution host 1 recorded runs again; one whose container finished on host 1 in the moment before
    its worker could record it runs again on host 0 (delivery is at least once; it is counted)."""
    ids = [a["id"] for a in actors(ACTORS, default_environment={"ABACO_TEST_SLEEP": "1"})]
    wait_for(lambda: workers_by_host(api, ids)[HOST1] > 0, timeout=120, what="workers on host 1")
    events1, events2 = Events(docker1()), Events(docker2())
    sent = send(api, ids, max(1, BURST // ACTORS))
    wait_for(lambda: len(events2.successes()) >= 3, timeout=120, what="host 1 to run some executions")
    lost_workers = host1_workers(api, ids)
    lost_at = time.monotonic()
    host1.stop(hard=True)  # the agents die, then the daemon with every container it runs
    services("stop")
    finished_on_host1 = set(events2.successes()) & {e for _, e in sent}
    wait_for(lambda: workers_by_host(api, ids)[HOST1] == 0, timeout=120, what="host 0 to take over host 1")
    taken_over = time.monotonic() - lost_at
    done = all_complete(api, sent, timeout=900)
    recovered = time.monotonic() - lost_at
    events1.close()
    # only this test's executions: other tests' actor containers may run on the daemon meanwhile
    ran_on_host0 = collections.Counter({e: n for e, n in events1.successes().items() if e in done})
    recorded_on_host1 = {e for e, record in done.items() if record.get("worker_id") in lost_workers}
    run_again = finished_on_host1 & set(ran_on_host0)
    hosts = workers_by_host(api, ids)
    print(f"\nhost 1 lost with {len(lost_workers)} workers after {len(finished_on_host1)} executions; taken over "
          f"after {taken_over:.1f}s; all {len(done)} executions COMPLETE {recovered:.1f}s after the loss; "
          f"run again after finishing unrecorded on host 1: {len(run_again)}; workers now {dict(hosts)}")
    assert len(done) == len(sent)
    assert not recorded_on_host1 & set(ran_on_host0), "an execution recorded by host 1 ran again"
    twice = [e for e, n in ran_on_host0.items() if n > 1]
    assert not twice, explain_runs(api, sent, twice)
    assert len(run_again) <= len(lost_workers)  # at most the one each lost worker had in hand
    assert hosts[HOST1] == 0 and hosts["0"] > 0
    failed = [e for e in done.values() if e["exit_code"] != 0]
    assert all("attempts" in (e.get("final_state") or {}).get("Error", "") for e in failed), failed

    # host 1 comes back: it removes the containers it left, whose records are gone
    services("start")
    host1.start()
    wait_for(lambda: not docker2().containers.list(ignore_removed=True, all=True, filters={"label": f"org.abaco.host_id={HOST1}"}),
             timeout=60, what="host 1 to remove what it left behind")
