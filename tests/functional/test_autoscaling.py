"""Queue-length autoscaling end to end, driven by a real Prometheus ().

The shared stack runs with autoscaling off and must not be disturbed, so this module starts its own
pair: a web server with ``workers_autoscaling=true`` limited to a tenant of its own
(``workers_autoscaling_tenants``; it shares Redis, RabbitMQ and the spawner of the stack) and
Debian's ``prometheus`` scraping that server's ``/metrics`` every 5 s. Every scrape is one
autoscaling pass, exactly as in production.

An actor with ``max_workers: 3`` gets a burst of messages that each sleep; the test follows it
growing one worker per scrape up to 3, draining its queue, and shrinking one worker per scrape back
to none, then reads the queue gauge back from Prometheus's HTTP API. It prints the timeline (and
writes it to ``.run/logs/autoscaling-timeline.txt``).

Ports: ``ABACO_TEST_AUTOSCALE_PORT`` (web, default 8041; its metrics app listens on the next port,
as ``/metrics`` is never served on the public one) and ``ABACO_TEST_PROM_PORT`` (default 8042).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.functional.conftest import CASE, TEST_IMAGE, Api, wait_for

pytestmark = pytest.mark.slow

WEB_PORT = int(os.environ.get("ABACO_TEST_AUTOSCALE_PORT", "8041"))
PROM_PORT = int(os.environ.get("ABACO_TEST_PROM_PORT", "8042"))
METRICS_PORT = int(os.environ.get("ABACO_TEST_AUTOSCALE_METRICS_PORT", str(WEB_PORT + 2)))
ROOT = Path(__file__).resolve().parents[2]
SCRAPE_SECONDS = 5
MAX_WORKERS = 3
MESSAGES = 12
SLEEP_SECONDS = 6
STOPPING = ("SHUTDOWN_REQUESTED", "SHUTTING_DOWN")

PROMETHEUS_YML = """\
global:
  scrape_interval: {interval}s
  evaluation_interval: {interval}s
rule_files:
  - {rules}
scrape_configs:
  - job_name: abaco
    scrape_interval: {interval}s
    scrape_timeout: {interval}s
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:{web_port}"]
"""


@dataclass
class AutoscalingStack:
    api: Api
    prometheus_url: str
    tenant: str

    def query(self, promql: str) -> list[dict]:
        body = requests.get(f"{self.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def query_range(self, promql: str, start: float, end: float, step: float = SCRAPE_SECONDS) -> list[tuple[float, float]]:
        body = requests.get(f"{self.prometheus_url}/api/v1/query_range", timeout=10,
                            params={"query": promql, "start": start, "end": end, "step": step}).json()
        assert body["status"] == "success", body
        result = body["data"]["result"]
        return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []


def start_prometheus(workdir: str) -> subprocess.Popen:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    config = Path(workdir) / "prometheus.yml"
    config.write_text(PROMETHEUS_YML.format(interval=SCRAPE_SECONDS, web_port=METRICS_PORT,
                                            rules=ROOT / "prometheus" / "alert.rules.yml"))
    log = (ROOT / ".run" / "logs" / f"test-prometheus-{PROM_PORT}.log").open("ab")
    return subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir}/data",
         f"--web.listen-address=127.0.0.1:{PROM_PORT}"],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
    )


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def autoscaling_stack(api):
    if CASE == "camel":
        pytest.skip("autoscaling does not depend on the case mode; it runs in the snake-case pass")
    if not (shutil.which("prometheus") or os.path.exists("/usr/bin/prometheus")):
        pytest.skip("Debian's prometheus is not installed (`make up` installs it: apt-get install prometheus)")
    from tests.functional.stacks import WebServer, port_in_use

    if port_in_use(PROM_PORT):
        pytest.fail(f"port {PROM_PORT} is taken; choose another with ABACO_TEST_PROM_PORT")
    # a tenant of this session only: the autoscaler leaves every other actor alone
    tenant = f"AUTOSCALE-{uuid.uuid4().hex[:6].upper()}"
    overrides = {
        "workers_autoscaling": "true",
        "workers_autoscaling_tenants": tenant,
        "web_tenant_name": tenant,
        "web_case": "snake",
    }
    server = WebServer(WEB_PORT, overrides)
    try:
        metrics = WebServer(METRICS_PORT, overrides, app="actors.metrics_api:app")
    except BaseException:
        server.stop()
        raise
    workdir = tempfile.mkdtemp(prefix="abaco-prometheus-")
    prometheus = start_prometheus(workdir)
    url = f"http://127.0.0.1:{PROM_PORT}"
    try:
        def ready():
            if prometheus.poll() is not None:
                raise RuntimeError(f"prometheus exited; see .run/logs/test-prometheus-{PROM_PORT}.log")
            try:
                return requests.get(f"{url}/-/ready", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(ready, timeout=30, interval=0.2, what="prometheus to be ready")
        yield AutoscalingStack(Api(server.base_url), url, tenant)
    finally:
        stop_process(prometheus)
        metrics.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Sample:
    t: float  # seconds since the burst
    live: int  # workers neither stopping nor failed
    queued: int
    statuses: dict[str, int]


def observe(api: Api, actor_id: str, t0: float) -> Sample:
    workers = api.result("GET", f"/actors/{actor_id}/workers")
    statuses: dict[str, int] = {}
    for worker in workers:
        statuses[worker["status"]] = statuses.get(worker["status"], 0) + 1
    live = sum(n for status, n in statuses.items() if status not in STOPPING and not status.startswith("ERROR"))
    queued = api.result("GET", f"/actors/{actor_id}/messages")["messages"]
    return Sample(time.monotonic() - t0, live, queued, statuses)


def test_actor_scales_up_with_its_queue_and_back_down(autoscaling_stack: AutoscalingStack):
    stack, api = autoscaling_stack, autoscaling_stack.api
    actor = api.result("POST", "/actors", json={
        "image": TEST_IMAGE, "name": f"autoscale-{uuid.uuid4().hex[:6]}", "max_workers": MAX_WORKERS,
        "default_environment": {"ABACO_TEST_SLEEP": str(SLEEP_SECONDS)},
    })
    actor_id = actor["id"]
    try:
        run_scenario(stack, api, actor_id)
    finally:
        api.request("DELETE", f"/actors/{actor_id}", expect=None)


def run_scenario(stack: AutoscalingStack, api: Api, actor_id: str) -> None:
    wall_start = time.time()
    t0 = time.monotonic()
    executions = [api.result("POST", f"/actors/{actor_id}/messages", data={"message": f"m{i}"})["execution_id"]
                  for i in range(MESSAGES)]
    sent_at = time.monotonic() - t0

    # one sample every ~0.25 s until the executions are done and the actor is back to no worker
    samples: list[Sample] = []
    complete_at = None
    while time.monotonic() < t0 + 240:
        sample = observe(api, actor_id, t0)
        samples.append(sample)
        assert sum(sample.statuses.values()) <= MAX_WORKERS, f"above max_workers: {sample}"
        if complete_at is None and sample.queued == 0:
            states = [api.result("GET", f"/actors/{actor_id}/executions/{e}")["status"] for e in executions]
            if all(status == "COMPLETE" for status in states):
                complete_at = time.monotonic() - t0
        if complete_at is not None and not sample.statuses:
            break
        time.sleep(0.25)
    events = [(sent_at, f"sent {MESSAGES} messages of {SLEEP_SECONDS}s each to actor {actor_id} "
                        f"(max_workers {MAX_WORKERS})")]
    previous = None
    for sample in samples:
        state = (sample.live, sample.queued, sorted(sample.statuses.items()))
        if state != previous:
            events.append((sample.t, f"{sample.live} live worker(s) {sample.statuses}, {sample.queued} queued"))
            previous = state
    if complete_at is not None:
        events.append((complete_at, f"all {MESSAGES} executions COMPLETE"))
    timeline = [f"{t:6.1f}s  {text}" for t, text in sorted(events, key=lambda e: e[0])]
    story = "\n".join(timeline)
    assert complete_at is not None and not samples[-1].statuses, "did not finish and scale back to 0:\n" + story
    for e in executions:
        execution = api.result("GET", f"/actors/{actor_id}/executions/{e}")
        assert execution["status"] == "COMPLETE" and str(execution["exit_code"]) == "0", execution

    # at most one worker more or less per poll (polls are 20 times shorter than the scrape interval)
    for before, after in zip(samples, samples[1:]):
        assert abs(after.live - before.live) <= 1, f"{before} -> {after}\n{story}"
    peak = max(range(len(samples)), key=lambda i: (samples[i].live, -i))
    assert samples[peak].live == MAX_WORKERS, "never reached max_workers:\n" + story
    # growth: the first worker comes with the registration, each later one from a scrape
    grew_at = {n: next(s.t for s in samples if s.live >= n) for n in range(1, MAX_WORKERS + 1)}
    gaps = [grew_at[n] - grew_at[n - 1] for n in range(3, MAX_WORKERS + 1)]
    assert all(gap >= SCRAPE_SECONDS - 1.5 for gap in gaps), f"added faster than one per scrape: {grew_at}\n{story}"
    # no worker is stopped while messages wait
    for before, after in zip(samples[peak:], samples[peak + 1:]):
        if after.live < before.live:
            assert before.queued == 0 and after.queued == 0, f"stopped while messages waited: {after}\n{story}"
    # shrink: one idle worker per scrape
    drained_at = next(s.t for s in samples[peak:] if s.queued == 0)
    shrank_at = {n: next(s.t for s in samples[peak:] if s.live <= n) for n in range(MAX_WORKERS - 1, -1, -1)}
    shrink_gaps = [shrank_at[n - 1] - shrank_at[n] for n in range(MAX_WORKERS - 1, 0, -1)]
    assert all(gap >= SCRAPE_SECONDS - 1.5 for gap in shrink_gaps), f"stopped faster than one per scrape: {shrank_at}"
    idle_at = samples[-1].t

    # -- Prometheus stored the gauges: the queue rose and fell --------------------------------
    selector = f'actor_id="{actor_id}",tenant="{stack.tenant}"'
    stored_peak = stack.scalar(f"max_over_time(abaco_actor_messages{{{selector}}}[10m])")
    assert stored_peak is not None and stored_peak >= 3, f"the queue gauge never rose in Prometheus: {stored_peak}"
    wait_for(lambda: stack.scalar(f"abaco_actor_messages{{{selector}}}") == 0, timeout=3 * SCRAPE_SECONDS,
             what="the latest stored queue length to be 0")
    stored_workers = stack.scalar(f"max_over_time(sum(abaco_actor_workers{{{selector}}})[10m:{SCRAPE_SECONDS}s])")
    assert stored_workers == MAX_WORKERS, stored_workers
    queue_series = stack.query_range(f"abaco_actor_messages{{{selector}}}", wall_start, time.time())
    worker_series = stack.query_range(f"sum(abaco_actor_workers{{{selector}}})", wall_start, time.time())

    # -- the figures ---------------------------------------------------------------------------
    summary = [
        f"autoscaling timeline (scrape every {SCRAPE_SECONDS}s, {MESSAGES} messages x {SLEEP_SECONDS}s, "
        f"max_workers {MAX_WORKERS})",
        *timeline,
        "",
        "worker n live at: " + ", ".join(f"#{n} {t:.1f}s" for n, t in sorted(grew_at.items())),
        "seconds per added worker (scrape-driven): " + ", ".join(f"{g:.1f}" for g in gaps),
        f"queue empty at {drained_at:.1f}s, executions complete at {complete_at:.1f}s",
        "live workers down to n at: " + ", ".join(f"{n} at {t:.1f}s" for n, t in shrank_at.items()),
        "seconds per stopped worker: " + ", ".join(f"{g:.1f}" for g in shrink_gaps),
        f"back to idle (0 workers) {idle_at - complete_at:.1f}s after the last execution, {idle_at:.1f}s after the burst",
        f"Prometheus: peak stored queue {stored_peak:.0f}, peak stored workers {stored_workers:.0f}",
        "Prometheus queue gauge: " + " ".join(f"{v:.0f}" for _, v in queue_series),
        "Prometheus worker gauge: " + " ".join(f"{v:.0f}" for _, v in worker_series),
    ]
    text = "\n".join(summary)
    print("\n" + text)
    (ROOT / ".run" / "logs" / "autoscaling-timeline.txt").write_text(text + "\n")
