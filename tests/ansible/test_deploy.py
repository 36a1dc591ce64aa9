"""The Ansible deployment end to end (marker ``ansible``; README "Deploy on several hosts").

With the ``local`` inventory (every group on this machine, on ports of its own, two compute hosts
on two Docker daemons): ``deploy_abaco.plbk`` from nothing, a second run that changes nothing, an
actor pinned to the queue only the second compute host serves, functional tests from the testsuite
image against the deployed web host (as tests/compose runs them), ``update_abaco_services.plbk``
with a new image tag, and ``teardown_abaco.plbk``, after which nothing of the deployment is left.
Prints how long each playbook took.

Which functional tests run: ``ABACO_ANSIBLE_FUNCTIONAL`` (pytest arguments; default the files
below).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.functional.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
INVENTORY = ANSIBLE / "local" / "hosts"
PASSWORDS = ANSIBLE / "local" / "group_vars" / "all" / "passwords.yml"
HOME = Path("/tmp/abaco-ansible")
BASE_URL = "http://127.0.0.1:27000"
PROMETHEUS = "http://127.0.0.1:27090"
DOCKER1, DOCKER2 = "unix:///var/run/docker.sock", "unix:///var/run/abaco-docker2.sock"
HOST_IDS = {DOCKER1: "ansible-0", DOCKER2: "ansible-1"}
NEW_TAG = ":ansible-update"
FUNCTIONAL = ["tests/functional/test_messages_api.py", "tests/functional/test_executions_api.py"]
RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

pytestmark = [pytest.mark.ansible, pytest.mark.slow, pytest.mark.timeout(1800)]


def docker(host: str, *args: str) -> str:
    return subprocess.run(["/usr/bin/docker", "-H", host, *args], check=True, capture_output=True,
                          text=True).stdout


def answers(host: str) -> bool:
    return subprocess.run(["/usr/bin/docker", "-H", host, "version"], capture_output=True).returncode == 0


def ansible_playbook() -> str:
    """The controller's ansible-playbook, installed into this venv when it is missing."""
    exe = Path(sys.executable).parent / "ansible-playbook"
    if not exe.exists():
        print("installing ansible-core into the venv (ansible/requirements.txt)...")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(ANSIBLE / "requirements.txt")],
                       check=True, timeout=600)
    return str(exe)


def playbook(name: str, *args: str, inventory: Path = INVENTORY) -> tuple[str, float]:
    """Runs a playbook, printing its output as it goes (each line after the seconds since its
    start); its output and duration."""
    command = [ansible_playbook(), "-i", str(inventory), str(ANSIBLE / name), *args]
    print("$", shlex.join(command), flush=True)
    started = time.monotonic()
    lines = []
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1")) as run:
        for line in run.stdout:
            print(f"{time.monotonic() - started:6.1f} {line}", end="", flush=True)
            lines.append(line)
    elapsed = time.monotonic() - started
    print(f"{name} {' '.join(args)}: {elapsed:.0f} s")
    output = "".join(lines)
    assert run.returncode == 0, f"{name} failed (exit {run.returncode}, output above)"
    return output, elapsed


def recap(output: str) -> dict[str, int]:
    """changed= of every host in the PLAY RECAP; no host may have failed or been unreachable."""
    hosts = {host: (int(changed), int(unreachable), int(failed))
             for host, changed, unreachable, failed in RECAP.findall(output)}
    assert hosts and all(u == f == 0 for _, u, f in hosts.values()), output[-3000:]
    return {host: changed for host, (changed, _, _) in hosts.items()}


def containers(host: str, *labels: str, status: str = "") -> dict[str, tuple[str, str]]:
    """{name: (id, image)} of the containers on a daemon that carry these labels (key=value), in
    that status (any by default)."""
    filters = [arg for label in labels for arg in ("--filter", f"label={label}")]
    filters += ["--filter", f"status={status}"] if status else []
    lines = docker(host, "ps", "-a", *filters, "--format", "{{.Names}} {{.ID}} {{.Image}}").split("\n")
    return {name: (cid, image) for name, cid, image in (line.split(" ") for line in lines if line)}


def project(name: str, host: str = DOCKER1, status: str = "") -> dict[str, tuple[str, str]]:
    return containers(host, f"com.docker.compose.project=ansible_{name}", status=status)


# where the compose projects of the local inventory run
PLACES = {"db": ("db", DOCKER1), "web": ("web", DOCKER1), "compute-0": ("compute", DOCKER1),
          "compute-1": ("compute", DOCKER2), "metrics": ("metrics", DOCKER1)}


def left_over() -> list[str]:
    found = []
    for name, host in PLACES.values():
        found += [f"{host}: {c}" for c in project(name, host)] if answers(host) else []
    for host, host_id in HOST_IDS.items():
        if not answers(host):
            continue
        found += [f"{host}: {c}" for c in containers(host, f"org.abaco.host_id={host_id}")]
        found += [f"{host}: volume {v}" for v in docker(host, "volume", "ls", "-q").split()
                  if v.startswith("ansible_")]
    return found + [str(p) for p in HOME.glob("*")]


@pytest.fixture(scope="module")
def deployment():
    """A deployment from nothing (the cold run's output and time); torn down at the end."""
    if not PASSWORDS.exists():
        shutil.copy(PASSWORDS.with_name("passwords.yml.example"), PASSWORDS)
    docker2_was_up = answers(DOCKER2)
    # the testsuite image, and with it every image the playbook would build
    started = time.monotonic()
    subprocess.run([str(ROOT / "scripts" / "compose.sh"), "build", "--testsuite"], check=True, timeout=1500)
    print(f"scripts/compose.sh build --testsuite: {time.monotonic() - started:.0f} s")
    if any(HOME.glob("*")):
        playbook("teardown_abaco.plbk")  # what an interrupted run left
    try:
        yield playbook("deploy_abaco.plbk")
    finally:
        if any(HOME.glob("*")):  # test_teardown_leaves_nothing did not get to it
            playbook("teardown_abaco.plbk")
        for image in (f"abaco/core{NEW_TAG}", f"abaco/nginx{NEW_TAG}"):
            for host in (DOCKER1, DOCKER2):
                if answers(host):
                    subprocess.run(["/usr/bin/docker", "-H", host, "rmi", image], capture_output=True)
        if not docker2_was_up:
            subprocess.run([str(ROOT / "scripts" / "services.sh"), "stop", "docker2"], check=True, timeout=120)


def test_playbooks_parse():
    for inventory in ("local", "example"):
        for name in ("deploy_abaco.plbk", "update_abaco_services.plbk", "teardown_abaco.plbk"):
            playbook(name, "--syntax-check", inventory=ANSIBLE / inventory / "hosts")


def test_deploy_from_nothing(deployment):
    output, elapsed = deployment
    print(f"cold deploy: {elapsed:.0f} s; changed per host: {recap(output)}")
    listing = requests.get(f"{BASE_URL}/actors", timeout=10)
    assert listing.status_code == 200 and listing.json()["status"] == "success", listing.text
    running = {place: sorted(n.split("_", 2)[2].rsplit("_", 1)[0] for n in project(*where, status="running"))
               for place, where in PLACES.items()}
    assert running == {"db": ["rabbit", "redis"], "web": ["admin", "mes", "metrics", "nginx", "reg"],
                       "compute-0": ["events", "health", "spawner-default"],
                       "compute-1": ["events", "health", "spawner-default", "spawner-special"],
                       "metrics": ["prometheus"]}, running

    def abaco_target_up():
        targets = requests.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        return [t for t in targets if t["labels"]["job"] == "abaco" and t["health"] == "up"]
    wait_for(abaco_target_up, timeout=60, interval=1, what="Prometheus scraping the metrics app")


def test_second_run_changes_nothing(deployment):
    output, elapsed = playbook("deploy_abaco.plbk")
    changed = recap(output)
    print(f"warm deploy: {elapsed:.0f} s; changed per host: {changed}")
    assert set(changed) == {"local-db", "local-compute-0", "local-compute-1", "local-web", "local-metrics"}
    assert not any(changed.values()), changed


def test_queue_pinned_actor_runs_on_the_second_host(deployment):
    """Only local-compute-1 serves the queue `special`: its workers run on the second daemon."""
    actor = requests.post(f"{BASE_URL}/actors", json={"image": "abacosamples/test", "queue": "special"},
                          timeout=30).json()["result"]
    try:
        sent = requests.post(f"{BASE_URL}/actors/{actor['id']}/messages", data={"message": "pinned"},
                             timeout=30).json()["result"]
        url = f"{BASE_URL}/actors/{actor['id']}/executions/{sent['execution_id']}"
        wait_for(lambda: requests.get(url, timeout=10).json()["result"]["status"] == "COMPLETE",
                 timeout=120, interval=0.5, what="the pinned actor's execution")
        workers = requests.get(f"{BASE_URL}/actors/{actor['id']}/workers", timeout=10).json()["result"]
        assert workers and {w["host_id"] for w in workers} == {"ansible-1"}, workers
        for worker in workers:
            label = f"org.abaco.worker={worker['id']}"
            assert containers(DOCKER2, label) and not containers(DOCKER1, label), worker
    finally:
        requests.delete(f"{BASE_URL}/actors/{actor['id']}", timeout=60)


def test_functional_subset(deployment):
    """Functional tests from the testsuite image, HTTP only, against the deployed nginx."""
    chosen = shlex.split(os.environ.get("ABACO_ANSIBLE_FUNCTIONAL", "")) or ["-q", *FUNCTIONAL]
    started = time.monotonic()
    done = subprocess.run(["/usr/bin/docker", "run", "--rm", "--network", "host", "-e", f"base_url={BASE_URL}",
                           "-e", "case=snake", "abaco/testsuite:dev", *chosen], timeout=1200)
    print(f"testsuite against the deployment: {time.monotonic() - started:.0f} s")
    assert done.returncode == 0, "the functional tests failed against the deployment (output above)"


def test_update_replaces_compute_and_web(deployment):
    before = {place: project(*where) for place, where in PLACES.items()}
    _, elapsed = playbook("update_abaco_services.plbk", "-e", f"abaco_tag={NEW_TAG}")
    print(f"update to {NEW_TAG}: {elapsed:.0f} s")
    after = {place: project(*where) for place, where in PLACES.items()}
    assert after["db"] == before["db"] and after["metrics"] == before["metrics"]
    for place in ("web", "compute-0", "compute-1"):
        assert set(after[place]) == set(before[place]), place
        for name, (cid, image) in after[place].items():
            assert image.endswith(NEW_TAG) and cid != before[place][name][0], (name, image)
    version = wait_for(lambda: requests.get(f"{BASE_URL}/actors", timeout=10).json().get("version"),
                       timeout=60, what="the updated web host")
    assert version == NEW_TAG


def test_teardown_leaves_nothing(deployment):
    playbook("teardown_abaco.plbk")
    assert not left_over()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{BASE_URL}/actors", timeout=5)
