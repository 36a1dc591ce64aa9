"""Abaco against the Docker floor, side by side in one run (`make bench`).

Each figure is measured next to its floor with the same image and network mode, alternating runs so
that a drifting machine affects both. Prints a table, saves it as JSON and draws PNG plots.

    python bench/bench.py [--runs 40] [--burst 40] [--rounds 3] [--out bench/results]

The scale rows S1-S3 (bench/scale.py) fill the store through the model code and measure whether the
API's costs stay flat as it grows:

    python bench/bench.py --only s1,s2,s3 [--goal] [--s1-executions N] [--s2-executions M] [--s3-actors K]
    python bench/bench.py --sizes 1000,10000,100000,1000000     # S1/S2 against store size, plotted

S4 (1,000 idle actors: stack memory, a message to a cold actor) and S5 (a mailbox backlog of 20,000,
100,000 with --goal, POSTed over HTTP) are in bench/idle.py:

    python bench/bench.py --only s4,s5 [--goal] [--s4-actors K] [--s5-messages B] [--s5-profile]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import polling  # bench/polling.py
import procs  # bench/procs.py
import requests
import wrk  # bench/wrk.py

ROOT = Path(__file__).resolve().parents[1]
BASE = os.environ.get("ABACO_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
IMAGE = os.environ.get("ABACO_BENCH_IMAGE", "abacosamples/test")
NETWORK = os.environ.get("ABACO_BENCH_NETWORK", "host")  # local-dev runs actor containers with host networking
POLL = float(os.environ.get("ABACO_BENCH_POLL", "0.01"))  # seconds between two status reads of P1

session = requests.Session()


# -- helpers ------------------------------------------------------------------------------------
def api(method: str, path: str, **kwargs):
    response = session.request(method, BASE + path, timeout=60, **kwargs)
    response.raise_for_status()
    return response.json()["result"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "mean": statistics.fmean(values) if values else float("nan")}


def wait_until(predicate, timeout: float = 120, interval: float = POLL):
    return polling.wait_until(predicate, timeout, interval)


def new_actor(**fields) -> dict:
    actor = api("POST", "/actors", json={"image": IMAGE, **fields})
    wait_until(lambda: api("GET", f"/actors/{actor['id']}")["status"] == "READY", interval=0.05)
    return actor


def delete_actor(actor: dict) -> None:
    session.delete(f"{BASE}/actors/{actor['id']}", timeout=60)


def execution_status(actor_id: str, execution_id: str) -> str:
    return api("GET", f"/actors/{actor_id}/executions/{execution_id}")["status"]


# -- the floor ----------------------------------------------------------------------------------
class Floor:
    """create + start + wait + remove of the same image through the docker SDK."""

    def __init__(self):
        self.client = docker.DockerClient(base_url="unix://var/run/docker.sock", version="auto")
        self.kwargs = {"network_mode": NETWORK} if NETWORK in ("host", "none", "bridge") else {}

    def run_once(self) -> float:
        started = time.perf_counter()
        container = self.client.containers.create(IMAGE, environment={"MSG": "floor"}, detach=True, **self.kwargs)
        container.start()
        container.wait()
        container.remove(force=True)
        return time.perf_counter() - started


# -- P1: latency --------------------------------------------------------------------------------
def use_the_stack_store() -> None:
    """The actors package on the stack's own configuration (its Redis), for reading records."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("ABACO_CONF", str(ROOT / "local-dev.conf"))


def store_status(actor_id: str, execution_id: str) -> str:
    """The execution's status read from the stack's store (as the API would answer it), for figures
    that must not pay for the client's own HTTP polling: each GET costs the web app ~3 ms of CPU,
    which on 2 cores slows the container starts being measured (bench/README.md, "P1")."""
    dbid = actor_dbid(actor_id)
    from actors.models import Execution

    return Execution.get(dbid, execution_id)["status"]


def store_actor_status(actor_id: str) -> str:
    dbid = actor_dbid(actor_id)
    from actors.models import Actor

    return Actor.get(dbid)["status"]


def actor_dbid(actor_id: str) -> str:
    """The actor's key in the store: the stack's tenant (local-dev has no tokens) and its id."""
    use_the_stack_store()
    from actors.config import conf
    from actors.models.common import dbid_of

    return dbid_of(conf().get("web", "tenant_name", "dev_staging"), actor_id)


def p1_latency(floor: Floor, runs: int) -> dict:
    """Interleaved: a floor run, a message whose COMPLETE is seen through the API (polled every
    ``POLL`` s), and one whose COMPLETE is seen in the store (polled every 2 ms, no HTTP)."""
    actor = new_actor()
    abaco, by_store, bare = [], [], []

    def one(i: int, done) -> float:
        started = time.perf_counter()
        execution_id = api("POST", f"/actors/{actor['id']}/messages", data={"message": f"p1-{i}"})["execution_id"]
        done(execution_id)
        return time.perf_counter() - started

    def through_the_api() -> None:
        abaco.append(one(i, lambda e: wait_until(lambda: execution_status(actor["id"], e) == "COMPLETE")))

    def in_the_store() -> None:
        by_store.append(one(i, lambda e: wait_until(lambda: store_status(actor["id"], e) == "COMPLETE",
                                                    interval=0.002)))

    try:
        for i in range(runs):
            bare.append(floor.run_once())
            # alternating which goes first: the second follows the first's removal and READY write
            for measure in ((through_the_api, in_the_store) if i % 2 == 0 else (in_the_store, through_the_api)):
                measure()
    finally:
        delete_actor(actor)
    return {"abaco": summary(abaco), "store": summary(by_store), "floor": summary(bare),
            "samples": {"abaco": abaco, "store": by_store, "floor": bare}}


# -- P2: throughput -----------------------------------------------------------------------------
def wait_workers_gone(timeout: float = 60, actor_id: str | None = None) -> None:
    """Let the workers of the previous step's actors stop first: their shutdown would run on the same
    2 cores as the next measurement."""
    client = docker.DockerClient(base_url="unix://var/run/docker.sock", version="auto")
    try:
        labels = ["org.abaco.role=worker"] + ([f"org.abaco.actor={actor_dbid(actor_id)}"] if actor_id else [])
        wait_until(lambda: not client.containers.list(ignore_removed=True, filters={"label": labels}),
                   timeout=timeout, interval=0.1)
    except TimeoutError:
        print("    other workers are running: the figures share the machine with them", file=sys.stderr)
    finally:
        client.close()


def wait_all_complete(actor_id: str, ids: list[str]) -> None:
    """Poll the last message's execution in the store (cheap: no HTTP), then the summary once through
    the API: polling through the API would itself load the 2 cores the workers run on."""
    wait_until(lambda: store_status(actor_id, ids[-1]) == "COMPLETE", timeout=600, interval=0.005)
    wait_until(lambda: all(e["status"] == "COMPLETE"
                           for e in api("GET", f"/actors/{actor_id}/executions")["executions"] if e["id"] in ids),
               timeout=600, interval=0.02)


def p2_throughput(floor: Floor, burst: int, parallelism: int, rounds: int) -> dict:
    """``rounds`` bursts through Abaco alternating with as many floor bursts; the rates are total
    executions over total time on each side."""
    wait_workers_gone()
    actor = new_actor(max_workers=parallelism)
    abaco_seconds = floor_seconds = 0.0
    try:
        if parallelism > 1:
            api("POST", f"/actors/{actor['id']}/workers", json={"num": parallelism})
            wait_until(lambda: sum(w["status"] == "READY" for w in api("GET", f"/actors/{actor['id']}/workers"))
                       >= parallelism, interval=0.05)
        warm = [api("POST", f"/actors/{actor['id']}/messages", data={"message": "warm-up"})["execution_id"]
                for _ in range(parallelism)]
        wait_all_complete(actor["id"], warm)
        for r in range(rounds):
            started = time.perf_counter()
            ids = [api("POST", f"/actors/{actor['id']}/messages", data={"message": f"p2-{r}-{i}"})["execution_id"]
                   for i in range(burst)]
            wait_all_complete(actor["id"], ids)
            abaco_seconds += time.perf_counter() - started
            started = time.perf_counter()
            with ThreadPoolExecutor(parallelism) as pool:
                list(pool.map(lambda _: floor.run_once(), range(burst)))
            floor_seconds += time.perf_counter() - started
    finally:
        delete_actor(actor)
    total = burst * rounds
    return {"parallelism": parallelism, "rounds": rounds, "abaco_per_s": total / abaco_seconds,
            "floor_per_s": total / floor_seconds, "ratio": (total / abaco_seconds) / (total / floor_seconds)}


# -- P3: API ------------------------------------------------------------------------------------
def p3_api(runs: int) -> dict:
    # queue "special" has no spawner in local-dev: nothing consumes, the POST alone is measured
    actor = api("POST", "/actors", json={"image": IMAGE, "queue": "special"})
    posts = []
    count = runs * 5
    stack = {name: pids for name, pids in procs.stack_pids().items() if name in ("web", "redis", "rabbitmq")}
    stack["client"] = [os.getpid()]
    try:
        api("POST", f"/actors/{actor['id']}/messages", data={"message": "p3-first"})  # the queue exists
        before = procs.cpu_by_process(stack)
        for i in range(count):
            started = time.perf_counter()
            api("POST", f"/actors/{actor['id']}/messages", data={"message": f"p3-{i}"})
            posts.append(time.perf_counter() - started)
        used = procs.cpu_by_process(stack)
        cpu = {name: (used[name] - before[name]) / count for name in stack}
        session.delete(f"{BASE}/actors/{actor['id']}/messages", timeout=60)
        rps = wrk_rps(BASE + "/actors")  # the list holds this actor (and any other the machine has)
    finally:
        delete_actor(actor)
    return {"post_message": summary(posts), "cpu_per_post": cpu, "get_actors_rps": rps, "samples": {"post": posts}}


def wrk_rps(url: str, seconds: int = 10) -> float | None:
    figures = wrk.run(url, seconds)
    if figures is None:
        print("skipping the GET /actors load figure", file=sys.stderr)
        return None
    return figures.get("per_s")


# -- P4: worker start ---------------------------------------------------------------------------
def p4_worker_start(runs: int) -> dict:
    """POST /actors until READY, seen through the API (polled every 10 ms) and in the store (every 2 ms)."""
    times, by_store = [], []
    for i in range(max(3, runs // 4) * 2):
        started = time.perf_counter()
        actor = api("POST", "/actors", json={"image": IMAGE})
        if i % 2:
            wait_until(lambda: store_actor_status(actor["id"]) == "READY", interval=0.002)
            by_store.append(time.perf_counter() - started)
        else:
            wait_until(lambda: api("GET", f"/actors/{actor['id']}")["status"] == "READY", interval=0.01)
            times.append(time.perf_counter() - started)
        delete_actor(actor)
        wait_workers_gone(actor_id=actor["id"])
    return {"command_to_ready": summary(times), "seen_in_store": summary(by_store),
            "standby_pool": p4_standby_start(runs)}


STANDBY_QUEUE = "special"  # in local-dev.conf's host_queues, with no spawner of the stack's own


def p4_standby_start(runs: int) -> dict:
    """P4 with a standby pool (docs/architecture.md, "Standby workers"): a spawner of the bench's own
    on queue "special" with ``[spawner] standby_workers = 1``; POST /actors on that queue until READY
    in the store, each start taken when a standby waits (the pool refilled after the last)."""
    use_the_stack_store()
    from actors import channels
    from actors.config import host_id

    log_path = ROOT / ".run" / "logs" / "bench-standby-spawner.out"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, queue=STANDBY_QUEUE, spawner_standby_workers="1")
    spawner = subprocess.Popen([sys.executable, "-m", "actors.spawner"], cwd=ROOT, env=env,
                               stdout=log_path.open("ab"), stderr=subprocess.STDOUT)
    client = docker.DockerClient(base_url="unix://var/run/docker.sock", version="auto")
    labels = ["org.abaco.role=standby", f"org.abaco.pool={STANDBY_QUEUE}", f"org.abaco.host_id={host_id()}"]

    def a_standby_waits() -> bool:
        return any(channels.StandbyChannel(c.labels.get("org.abaco.standby", "")).counts()[1] > 0
                   for c in client.containers.list(ignore_removed=True, filters={"label": labels}))

    times = []
    try:
        for _ in range(max(3, runs // 4)):
            wait_until(a_standby_waits, timeout=120, interval=0.05)
            started = time.perf_counter()
            actor = api("POST", "/actors", json={"image": IMAGE, "queue": STANDBY_QUEUE})
            wait_until(lambda: store_actor_status(actor["id"]) == "READY", interval=0.002)
            times.append(time.perf_counter() - started)
            cids = [w["cid"] for w in api("GET", f"/actors/{actor['id']}/workers")]
            delete_actor(actor)
            wait_until(lambda: not any(client.containers.list(ignore_removed=True, filters={"id": cid}) for cid in cids),
                       timeout=60, interval=0.1)
    finally:
        spawner.terminate()
        try:
            spawner.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spawner.kill()
        client.close()
        channels.close_thread_connection()
    return summary(times)


# -- P5: stats cost -----------------------------------------------------------------------------
def p5_stats_cost(floor: Floor, runs: int) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("ABACO_CONF", str(ROOT / "local-dev.conf"))
    from actors.docker_utils import CgroupAccounting

    accounting = CgroupAccounting("/sys/fs/cgroup", "abaco/bench")
    cgroup, stats_api = [], []
    for _ in range(runs):
        started = time.perf_counter()
        before = accounting.read()
        accounting.reset_memory_peak()
        accounting.usage_since(before)
        cgroup.append(time.perf_counter() - started)
    container = floor.client.containers.run(IMAGE, ["sleep", "30"], detach=True, network_mode="none")
    try:
        for _ in range(min(runs, 5)):
            started = time.perf_counter()
            container.stats(stream=False)
            stats_api.append(time.perf_counter() - started)
    finally:
        container.remove(force=True)
    accounting.remove()
    return {"cgroup_files": summary(cgroup), "stats_api": summary(stats_api)}


# -- report -------------------------------------------------------------------------------------
def ms(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds * 1e6:.0f} µs" if abs(seconds) < 0.001 else f"{seconds * 1000:.1f} ms"


def table(results: dict) -> str:
    rows = []
    if "p1" in results:
        p1 = results["p1"]
        rows += [
            ("P1 latency p50", ms(p1["abaco"]["p50"]), ms(p1["floor"]["p50"]),
             f"+{ms(p1['abaco']['p50'] - p1['floor']['p50'])}", "<= floor + 15 ms"),
            ("P1 latency p90", ms(p1["abaco"]["p90"]), ms(p1["floor"]["p90"]), "", ""),
            ("P1 latency p99", ms(p1["abaco"]["p99"]), ms(p1["floor"]["p99"]), "", ""),
        ]
        if "store" in p1:
            rows.append(("P1 seen in the store p50", ms(p1["store"]["p50"]), ms(p1["floor"]["p50"]),
                         f"+{ms(p1['store']['p50'] - p1['floor']['p50'])}", "<= floor + 15 ms"))
    for p2 in results.get("p2", []):
        rows.append((f"P2 throughput x{p2['parallelism']}", f"{p2['abaco_per_s']:.2f}/s", f"{p2['floor_per_s']:.2f}/s",
                     f"{p2['ratio']:.2f}x", ">= 0.9x"))
    if "p3" in results:
        p3, rps = results["p3"], results["p3"]["get_actors_rps"]
        rows += [
            ("P3 POST message p50", ms(p3["post_message"]["p50"]), "", "", "<= 10 ms"),
            ("P3 POST message p99", ms(p3["post_message"]["p99"]), "", "", ""),
        ]
        if "cpu_per_post" in p3:
            cpu = p3["cpu_per_post"]
            rows.append(("P3 CPU per POST (web)", ms(cpu.get("web")),
                         f"Redis {ms(cpu.get('redis'))}, RabbitMQ {ms(cpu.get('rabbitmq'))}",
                         f"client {ms(cpu.get('client'))}", ""))
        rows += [
            ("P3 GET /actors", "n/a" if rps is None else f"{rps:.0f} req/s", "", "", ">= 500 req/s"),
        ]
    if "p4" in results:
        rows.append(("P4 worker start p50", ms(results["p4"]["command_to_ready"]["p50"]), "", "", "<= 250 ms"))
        if "seen_in_store" in results["p4"]:
            rows.append(("P4 worker start seen in the store p50", ms(results["p4"]["seen_in_store"]["p50"]), "", "",
                         "<= 250 ms"))
        if "standby_pool" in results["p4"]:
            rows.append(("P4 worker start, standby pool, store p50", ms(results["p4"]["standby_pool"]["p50"]), "", "",
                         "<= 250 ms"))
    if "p5" in results:
        p5 = results["p5"]
        rows.append(("P5 stats, cgroup files", ms(p5["cgroup_files"]["p50"]), ms(p5["stats_api"]["p50"]) + " (stats API)",
                     "", "< 5 ms"))
    rows += scale_rows(results)
    header = ("figure", "abaco", "floor", "delta", "target")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(5)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def scale_rows(results: dict) -> list[tuple]:
    """The S rows: the figure at the stated size in "abaco", the same figure on an (almost) empty
    store in "floor" (the baseline: 10 executions, 100 of them, 100 actors)."""
    def delta(full: float, base: float) -> str:
        return f"{'+' if full >= base else '-'}{ms(abs(full - base))}"

    rows = []
    if "s1" in results:
        r = results["s1"]
        n = f"N={r['n_other']:,}"
        rows += [(f"S1 executions list p50 ({n})", ms(r["full"]["p50"]), ms(r["empty"]["p50"]) + " (empty)",
                  delta(r["full"]["p50"], r["empty"]["p50"]), "<= 10 ms"),
                 (f"S1 executions list p95 ({n})", ms(r["full"]["p95"]), ms(r["empty"]["p95"]) + " (empty)",
                  delta(r["full"]["p95"], r["empty"]["p95"]), "")]
    if "s2" in results:
        r = results["s2"]
        m = f"M={r['m']:,}"
        rows += [(f"S2 first page p50 ({m})", ms(r["first_page"]["p50"]),
                  ms(r["baseline_first_page"]["p50"]) + f" (M={r['baseline_m']})",
                  delta(r["first_page"]["p50"], r["baseline_first_page"]["p50"]), "<= 20 ms"),
                 (f"S2 first page p95 ({m})", ms(r["first_page"]["p95"]),
                  ms(r["baseline_first_page"]["p95"]) + f" (M={r['baseline_m']})", "", ""),
                 (f"S2 last page p50 ({m})", ms(r["last_page"]["p50"]), "", "", ""),
                 (f"S2 totals ({m})", "equal" if r["totals_ok"] else f"WRONG {r['totals_read']}",
                  f"{r['totals_expected']['total_executions']:,} written", "", "= written")]
    if "s3" in results:
        r = results["s3"]
        k, base, full = f"K={r['k']:,}", r["baseline"], r["full"]
        rows += [(f"S3 GET /actors, {r['own']} own p50 ({k})", ms(full["user_list"]["p50"]),
                  ms(base["user_list"]["p50"]) + f" (K={r['own']})",
                  delta(full["user_list"]["p50"], base["user_list"]["p50"]), "<= 20 ms"),
                 (f"S3 GET /actors/admin?limit=100 p50 ({k})", ms(full["admin_page"]["p50"]),
                  ms(base["admin_page"]["p50"]) + f" (K={r['own']})",
                  delta(full["admin_page"]["p50"], base["admin_page"]["p50"]), "flat"),
                 (f"S3 /metrics scrape p50 ({k})", ms(full["metrics"]["p50"]),
                  ms(base["metrics"]["p50"]) + f" (K={r['own']})",
                  delta(full["metrics"]["p50"], base["metrics"]["p50"]), "<= 200 ms"),
                 ("S3 actor creation (Actor.create, 8 threads)", f"{r['create_rate']:,.0f}/s", "", "", "")]
    if "s4" in results:
        r = results["s4"]
        k, p50 = f"K={r['k']:,}", r["p50"]
        bound = p50["worker_start"] + p50["floor"]
        rows += [(f"S4 stack memory ({k} idle)", mb(r["memory_after"]["total"]),
                  mb(r["memory_before"]["total"]) + " (before)",
                  f"{'+' if r['memory_after']['total'] >= r['memory_before']['total'] else '-'}"
                  f"{mb(abs(r['memory_after']['total'] - r['memory_before']['total']))}", "<= 2 GB"),
                 (f"S4 cold message -> COMPLETE p50 (n={len(r['samples']['cold'])})", ms(p50["cold"]),
                  f"{ms(bound)} (start {ms(p50['worker_start'])} + floor {ms(p50['floor'])})",
                  f"{'+' if r['margin'] >= 0 else '-'}{ms(abs(r['margin']))}", "<= +100 ms"),
                 ("S4 second message, worker READY, p50", ms(p50["warm"]), ms(p50["floor"]) + " (floor)",
                  f"+{ms(p50['warm'] - p50['floor'])}", ""),
                 (f"S4 stack memory, 1 worker up ({k})", mb(r["memory_with_cold_workers"]["total"]),
                  f"{r['memory_with_cold_workers']['containers']} container(s): "
                  f"{mb(r['memory_with_cold_workers']['containers_bytes'])}", "", "<= 2 GB"),
                 ("S4 actor creation (Actor.create, 8 threads)", f"{r['create_rate']:,.0f}/s", "", "", "")]
    if "s5" in results:
        r = results["s5"]
        b = f"B={r['backlog']:,}"
        rates = r.get("slice_rates") or [float("nan")]
        rabbit = r.get("rabbit", [])
        rows += [(f"S5 POST /messages sustained ({b}, {r['threads']} threads)", f"{r.get('per_s', float('nan')):,.0f}/s",
                  f"first tenth {rates[0]:,.0f}/s, last {rates[-1]:,.0f}/s", f"{r.get('failed', '?')} failed",
                  ">= 500/s"),
                 (f"S5 POST /messages latency p50/p99 ({b})", ms(r.get("post_p50")), ms(r.get("post_p99")), "", ""),
                 (f"S5 queue depth = accepted ({b})",
                  "equal" if r.get("queue_api") == r.get("queue_rabbit") == r.get("accepted") == r.get("executions")
                  else f"API {r.get('queue_api')}, rabbit {r.get('queue_rabbit')}, executions {r.get('executions')}",
                  f"{r.get('accepted', 0):,} accepted", f"{r.get('distinct_execution_ids', '?')} distinct ids"
                  if r.get("distinct_execution_ids", r.get("accepted")) != r.get("accepted") else "", "none lost")]
        w = r.get("wrk")
        if w:
            rows += [(f"S5 POST /messages, wrk client ({w['connections']} connections, {w['seconds']} s)",
                      f"{w.get('per_s', float('nan')):,.0f}/s", f"latency avg {w.get('latency_avg', '?')}",
                      f"{w['non_2xx']} non-2xx", ">= 500/s"),
                     ("S5 queue depth = executions, after the wrk pass",
                      "equal" if r.get("wrk_queue_api") == r.get("wrk_queue_rabbit") == r.get("wrk_executions")
                      else f"API {r.get('wrk_queue_api')}, rabbit {r.get('wrk_queue_rabbit')}, "
                           f"executions {r.get('wrk_executions')}",
                      f"{r.get('wrk_executions', 0) - r.get('executions', 0):,} executions added",
                      f"wrk saw {w.get('requests', 0):,}", "none lost")]
        for point in rabbit:
            q = point.get("queue") or {}
            rows.append((f"S5 RabbitMQ memory at {point['at']}", mb(q.get("memory", 0)) + " (queue)",
                         mb(point.get("broker_total") or 0) + " (broker)",
                         f"{q.get('messages', 0):,} msgs", "bounded" if point["at"] == "0" else ""))
        if "purge_seconds" in r:
            after = r["statuses_after_purge"]
            rows.append((f"S5 purge ({b})", ms(r["purge_seconds"]), f"{after}", "",
                         "every execution final"))
        if "delivery" in r:
            d = r["delivery"]
            rows.append((f"S5 delivered through a worker (n={d['count']})",
                         f"{d['statuses'].get('COMPLETE', 0)} COMPLETE", f"{d['per_s']:.2f}/s",
                         "all" if d["all_complete"] else f"{d['statuses']}", "all COMPLETE"))
    if "fill" in results:
        f = results["fill"]
        rows.append((f"S fill rate ({f['mode']})", f"{f['per_s']:,.0f} rec/s", f"{f['records']:,} records", "", ""))
    for point in results.get("sizes", {}).get("points", []):  # "floor" column: the p95
        rows.append((f"sweep S1 list p50 (N={point['size']:,})", ms(point["s1"]["p50"]),
                     f"p95 {ms(point['s1']['p95'])}", "", "<= 10 ms"))
        if "s2_first_page" in point:
            rows.append((f"sweep S2 first page p50 (M={point['size']:,})", ms(point["s2_first_page"]["p50"]),
                         f"p95 {ms(point['s2_first_page']['p95'])}",
                         "totals equal" if point["s2_totals_ok"] else "TOTALS WRONG", "<= 20 ms"))
    return rows


def plot(results: dict, out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; no plots", file=sys.stderr)
        return
    if "p1" not in results or "p3" not in results:
        return
    p1 = results["p1"]["samples"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.hist([x * 1000 for x in p1["floor"]], bins=30, alpha=0.6, label="floor: docker create+start+wait+remove")
    ax.hist([x * 1000 for x in p1["abaco"]], bins=30, alpha=0.6, label="abaco: POST message -> COMPLETE")
    ax.set_xlabel("milliseconds")
    ax.set_ylabel("runs")
    ax.set_title("P1: one execution vs the Docker floor")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "p1_latency.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    posts = [x * 1000 for x in results["p3"]["samples"]["post"]]
    ax.hist(posts, bins=40)
    ax.set_xlabel("milliseconds")
    ax.set_title("P3: POST /actors/{id}/messages (no worker consuming)")
    fig.tight_layout()
    fig.savefig(out / "p3_post_message.png", dpi=110)
    plt.close(fig)


def sizes_list(text: str) -> list[int]:
    return sorted({int(float(x)) for x in text.split(",") if x.strip()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("ABACO_BENCH_RUNS", 40)))
    parser.add_argument("--burst", type=int, default=int(os.environ.get("ABACO_BENCH_BURST", 40)))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("ABACO_BENCH_ROUNDS", 3)),
                        help="P2 bursts per parallelism, each followed by a floor burst")
    parser.add_argument("--only", default="",
                        help="comma-separated figures to measure, e.g. p1,p2 or s1,s2,s3 (default: p1-p5 and s1-s5)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    scale = parser.add_argument_group("scale rows (bench/scale.py)")
    scale.add_argument("--s1-executions", type=int, default=100_000,
                       help="S1: executions of other actors in the store (goal size: 1,000,000)")
    scale.add_argument("--s2-executions", type=int, default=20_000,
                       help="S2: executions of the one actor listed (goal size: 100,000)")
    scale.add_argument("--s3-actors", type=int, default=2_000, help="S3: registered actors (goal size: 10,000)")
    scale.add_argument("--goal", action="store_true", help="the goal sizes: N=1,000,000, M=100,000, K=10,000")
    scale.add_argument("--sizes", type=sizes_list, default=None,
                       help="run S1 and S2 at each store size, e.g. 1000,10000,100000,1000000, and plot "
                            "scale_latency.png (alone unless --only names other figures)")
    scale.add_argument("--no-sweep-s2", action="store_true", help="--sizes: S1 only")
    scale.add_argument("--fill", choices=("pipeline", "model"), default="pipeline",
                       help="how executions are written: pipelined batches of model-built records, or "
                            "Execution.store_new + set_status in a thread pool")
    scale.add_argument("--scale-requests", type=int, default=200, help="GETs per measured S figure")
    scale.add_argument("--s4-actors", type=int, default=1_000, help="S4: registered idle actors")
    scale.add_argument("--s4-cold", type=int, default=8, help="S4: cold actors messaged (each beside a P4 and a floor run)")
    scale.add_argument("--s5-messages", type=int, default=20_000, help="S5: mailbox backlog (goal size: 100,000)")
    scale.add_argument("--s5-delivered", type=int, default=100,
                       help="S5: backlog run through a real worker, every execution checked COMPLETE (goal: 300)")
    scale.add_argument("--s5-threads", type=int, default=32, help="S5: POSTing threads")
    scale.add_argument("--s5-profile", action="store_true", help="S5: py-spy record the web workers under the load")
    args = parser.parse_args()
    if args.goal:
        args.s1_executions, args.s2_executions, args.s3_actors = 1_000_000, 100_000, 10_000
        args.s5_messages, args.s5_delivered = 100_000, 300
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    only = {name.strip().lower() for name in args.only.split(",") if name.strip()}
    if args.sizes is not None and not only:
        only = {"sizes"}
    elif "sizes" in only and args.sizes is None:
        args.sizes = [1_000, 10_000, 100_000]
    floor_steps = {"p1", "p2", "p3", "p4", "p5"}
    floor = None
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
               "image": IMAGE, "network": NETWORK, "runs": args.runs, "burst": args.burst, "rounds": args.rounds}
    if not only or only & (floor_steps | {"s4"}):
        floor = Floor()
        floor.run_once()  # warm the image and the daemon
        results["machine"]["docker"] = floor.client.version().get("Version")
    scale_mod = filler = None
    idle = None
    if not only or only & {"s1", "s2", "s3", "s4", "s5", "sizes"}:
        import scale as scale_mod  # bench/scale.py: imports the actors package on $ABACO_CONF's stores
        filler = scale_mod.Filler(args.fill)
        import idle  # bench/idle.py: S4 and S5
    steps = [("p1", lambda: p1_latency(floor, args.runs)),
             ("p2", lambda: [p2_throughput(floor, args.burst, k, args.rounds) for k in (1, 2, 4)]),
             ("p3", lambda: p3_api(args.runs)),
             ("p4", lambda: p4_worker_start(args.runs)),
             ("p5", lambda: p5_stats_cost(floor, args.runs)),
             ("s1", lambda: scale_mod.run("s1", lambda: scale_mod.s1(args.s1_executions, filler, args.scale_requests))),
             ("s2", lambda: scale_mod.run("s2", lambda: scale_mod.s2(args.s2_executions, filler, args.scale_requests))),
             ("s3", lambda: scale_mod.run("s3", lambda: scale_mod.s3(args.s3_actors, args.scale_requests))),
             ("s4", lambda: scale_mod.run("s4", lambda: idle.row(lambda: idle.s4(args.s4_actors, args.s4_cold, floor)))),
             ("s5", lambda: scale_mod.run("s5", lambda: idle.row(lambda: idle.s5(
                 args.s5_messages, args.s5_delivered, args.s5_threads, args.s5_profile)))),
             ("sizes", lambda: scale_mod.run("sizes", lambda: scale_mod.sweep(
                 args.sizes, filler, args.scale_requests, with_s2=not args.no_sweep_s2)))]
    for name, step in steps:
        if (only and name not in only) or (not only and name == "sizes"):
            continue
        print(f"==> {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        results[name] = step()
        print(f"    done in {time.monotonic() - started:.1f}s", file=sys.stderr, flush=True)
    if filler is not None and filler.records:
        results["fill"] = {"mode": filler.mode, "records": filler.records, "seconds": filler.seconds,
                           "per_s": filler.rate()}
    report = table(results)
    print(report)
    if "sizes" in results:
        path = scale_mod.plot_sweep(results["sizes"], out)
        (out / "scale_sweep.json").write_text(json.dumps(results, indent=2))
        print(f"==> saved {out / 'scale_sweep.json'}" + (f" and {path}" if path else ""), file=sys.stderr)
    if only:
        if only & {"s1", "s2", "s3", "s4", "s5"}:
            (out / "scale_latest.json").write_text(json.dumps(results, indent=2))
            print(f"==> a partial run (--only): only {out / 'scale_latest.json'} saved", file=sys.stderr)
        else:
            print("==> a partial run (--only): nothing else saved", file=sys.stderr)
        return
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    (out / f"bench-{stamp}.json").write_text(json.dumps(results, indent=2))
    (out / "latest.txt").write_text(report + "\n")
    plot(results, out)
    print(f"==> saved {out / 'latest.json'} and plots in {out}", file=sys.stderr)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
