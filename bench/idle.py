"""Rows S4 and S5 of `make bench`: many idle actors, and a deep mailbox.

S4: K registered idle actors (default 1,000), written by ``Actor.create`` as ``[workers] init_count: 0``
leaves them (no worker, no container). Measured: the memory of the whole stack (RSS of its processes,
plus the memory of every running container) before and after registering them; then, for a few of
those cold actors, POST a message through the API (which requests a worker: ``ensure_one_worker``)
and time POST -> execution COMPLETE, beside the worker start alone (P4: POST /actors -> READY) and
the Docker floor (create+start+wait+remove), interleaved in the same run.

S5: one actor whose mailbox nobody consumes (``queue: special``: no spawner of local-dev serves that
command queue) receives B messages over HTTP (default 20,000; ``--goal``: 100,000) from a pool of
threads, one ``requests.Session`` each. Measured: sustained messages/s over all B and per slice (is
it flat as the backlog grows?), the queue's depth against the accepted count (API and rabbitmqctl),
its execution count, RabbitMQ's memory for the queue and in all at 0, B/2 and B. Then the mailbox is
purged (DELETE /messages) and every execution checked final; separately a real worker runs a smaller
backlog (default 100; ``--goal``: 300) and every execution is checked COMPLETE.

Both rows run in the bench tenant of bench/scale.py and end with its clean-up.
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import requests
import scale
import wrk  # bench/wrk.py
from polling import wait_until as _wait_until
from procs import PIDS, ROOT, rss_kb, stack_pids
from scale import BASE, IMAGE, TENANT, log, percentile, what_record_added

RABBIT_NODE = os.environ.get("ABACO_RABBIT_NODE", "abaco@localhost")
RABBIT_PORT = int(os.environ.get("ABACO_RABBIT_PORT", "5672"))
POLL = float(os.environ.get("ABACO_BENCH_POLL", "0.01"))
WORKER_LABEL = "org.abaco.role=worker"


def poll(predicate, timeout: float = 120, interval: float = POLL):
    return _wait_until(predicate, timeout, interval)


def api(method: str, path: str, sess: requests.Session | None = None, timeout: float = 60, **kwargs):
    response = (sess or scale.session).request(method, BASE + path, timeout=timeout, **kwargs)
    response.raise_for_status()
    return response.json()["result"]


def docker_client():
    return docker.DockerClient(base_url="unix://var/run/docker.sock", version="auto")


def workers_running(client) -> list:
    return client.containers.list(ignore_removed=True, filters={"label": WORKER_LABEL})


# -- memory ---------------------------------------------------------------------------------------
def container_memory(client) -> tuple[int, int]:
    """(running containers, bytes of memory they use): the cgroup's memory.current, or the stats API."""
    total, containers = 0, client.containers.list(ignore_removed=True)
    for c in containers:
        used = None
        for path in (f"/sys/fs/cgroup/system.slice/docker-{c.id}.scope/memory.current",
                     f"/sys/fs/cgroup/docker/{c.id}/memory.current"):
            try:
                used = int(Path(path).read_text())
                break
            except (FileNotFoundError, ValueError):
                continue
        if used is None:
            try:
                used = int(c.stats(stream=False).get("memory_stats", {}).get("usage", 0))
            except Exception:  # noqa: BLE001 - it may have just stopped
                used = 0
        total += used
    return len(containers), total


def memory_snapshot(client) -> dict:
    pids = stack_pids()
    per = {name: sum(rss_kb(p) for p in ps) * 1024 for name, ps in pids.items()}
    n_containers, containers = container_memory(client)
    docker_pid = PIDS / "docker.pid"
    dockerd = rss_kb(int(docker_pid.read_text().split()[0])) * 1024 if docker_pid.exists() else 0
    return {"processes": per, "processes_total": sum(per.values()), "containers": n_containers,
            "containers_bytes": containers, "total": sum(per.values()) + containers, "dockerd": dockerd,
            "redis_used_memory": int(scale.execution_redis().info("memory")["used_memory"])}


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


# -- RabbitMQ -------------------------------------------------------------------------------------
def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    env = {**os.environ, "RABBITMQ_NODENAME": RABBIT_NODE, "ERL_EPMD_ADDRESS": "127.0.0.1",
           "ERL_EPMD_PORT": os.environ.get("ABACO_EPMD_PORT", "4369"),
           "RABBITMQ_DIST_PORT": str(RABBIT_PORT + 20000)}
    return subprocess.run(["rabbitmqctl", "-q", "-n", RABBIT_NODE, *args], capture_output=True, text=True,
                          timeout=timeout, env=env).stdout


def queue_info(name: str) -> dict | None:
    out = rabbitmqctl("list_queues", "name", "messages", "memory", "messages_ram", "message_bytes")
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == name and len(parts) >= 5 and parts[1].isdigit():
            return {"messages": int(parts[1]), "memory": int(parts[2]), "messages_ram": int(parts[3]),
                    "message_bytes": int(parts[4])}
    return None


def broker_memory() -> int | None:
    """The broker's total memory (``rabbitmqctl status``: "Total memory used" or the erlang term)."""
    out = rabbitmqctl("status", "--formatter", "json")
    try:
        import json
        return int(json.loads(out)["memory"]["total"]["erlang"])
    except Exception:  # noqa: BLE001 - older CLIs
        pid = PIDS / "rabbitmq.pid"
        return rss_kb(int(pid.read_text().split()[0])) * 1024 if pid.exists() else None


def queue_mode_policy() -> str:
    return rabbitmqctl("list_policies").strip()


# -- S4 -------------------------------------------------------------------------------------------
def s4(k: int, cold: int, floor) -> dict:
    client = docker_client()
    if workers_running(client):
        log(f"S4: {len(workers_running(client))} worker container(s) of others are running: counted in the memory")
    before = memory_snapshot(client)
    log(f"S4 memory before: {mb(before['total'])} ({before['containers']} containers)")
    actors, rate = scale.create_actors(k, "s4-idle", [scale.API_USER])
    time.sleep(2)  # let the agents notice (health's pass reads every actor)
    after = memory_snapshot(client)
    log(f"S4 memory after {k:,} idle actors: {mb(after['total'])} ({after['containers']} containers)")
    assert after["containers"] == before["containers"], "S4: registering idle actors started containers"
    samples = {"cold": [], "warm": [], "worker_start": [], "floor": []}
    cold_actors, deleted = actors[:cold], set()
    try:
        for i, actor in enumerate(cold_actors):
            samples["floor"].append(floor.run_once())
            # worker start alone (P4): POST /actors -> READY, the actor deleted at once
            started = time.perf_counter()
            p4 = api("POST", "/actors", json={"image": IMAGE})
            poll(lambda: api("GET", f"/actors/{p4['id']}")["status"] == "READY")
            samples["worker_start"].append(time.perf_counter() - started)
            api("DELETE", f"/actors/{p4['id']}")
            wait_workers_gone(client)
            # the cold actor: POST a message -> COMPLETE
            started = time.perf_counter()
            eid = api("POST", f"/actors/{actor['id']}/messages", data={"message": f"s4-{i}"})["execution_id"]
            poll(lambda: api("GET", f"/actors/{actor['id']}/executions/{eid}")["status"] == "COMPLETE",
                       timeout=120)
            samples["cold"].append(time.perf_counter() - started)
            # the same actor again, its worker now READY (P1's warm path): what the first message adds
            started = time.perf_counter()
            eid = api("POST", f"/actors/{actor['id']}/messages", data={"message": f"s4-{i}-warm"})["execution_id"]
            poll(lambda: api("GET", f"/actors/{actor['id']}/executions/{eid}")["status"] == "COMPLETE",
                       timeout=120)
            samples["warm"].append(time.perf_counter() - started)
            log(f"S4 cold {i}: {samples['cold'][-1] * 1000:.0f} ms (worker start {samples['worker_start'][-1] * 1000:.0f} ms,"
                f" floor {samples['floor'][-1] * 1000:.0f} ms, then warm {samples['warm'][-1] * 1000:.0f} ms)")
            if i == 0:
                with_workers = memory_snapshot(client)  # the idle actors and one worker
            api("DELETE", f"/actors/{actor['id']}")  # through the API, so its worker stops
            deleted.add(actor["id"])
            wait_workers_gone(client)
    finally:
        for actor in [a for a in cold_actors if a["id"] not in deleted]:  # through the API: workers stop
            try:
                api("DELETE", f"/actors/{actor['id']}")
            except requests.RequestException as e:
                log(f"S4: DELETE {actor['id']}: {e}")
        wait_workers_gone(client)
    p50 = {name: percentile(v, 50) for name, v in samples.items()}
    return {"k": k, "create_rate": rate, "memory_before": before, "memory_after": after,
            "memory_with_cold_workers": with_workers, "samples": samples, "p50": p50,
            "margin": p50["cold"] - p50["worker_start"] - p50["floor"]}


def wait_workers_gone(client, timeout: float = 60) -> None:
    try:
        poll(lambda: not workers_running(client), timeout=timeout, interval=0.1)
    except TimeoutError:
        log("worker containers are still running")


def note_stack_executions() -> None:
    """The executions the stack itself wrote for the bench tenant (real workers, purges): note what
    each adds to the shared counters, as the clean-up reads it back, so its check stays meaningful
    for the records the bench wrote itself."""
    from actors import stores
    from actors.models.execution import EXECUTIONS_OF

    idx = scale.index_redis()
    dbids = {d for d in stores.index_store.members(scale.ACTORS_OF_TENANT.format(TENANT))}
    dbids |= {d for d in idx.zrange(scale.ACTORS_WITH_EXECUTIONS, 0, -1) if scale.is_ours(d)}
    for dbid in dbids:
        ids = stores.index_store.members(EXECUTIONS_OF.format(dbid))
        keys = [scale.Execution.key(dbid, i) for i in ids]
        given: Counter = Counter()
        for start in range(0, len(keys), scale.BATCH):
            for record in stores.executions_store.get_many(keys[start:start + scale.BATCH]):
                if isinstance(record, dict) and record.get("tenant") == TENANT:
                    given.update(what_record_added(record))
        scale.ADDED.update(given)


# -- S5 -------------------------------------------------------------------------------------------
class Poster:
    """POST /messages from a pool of threads, one requests.Session each; keeps each accepted
    message's completion time and execution id."""

    def __init__(self, actor_id: str, threads: int):
        self.actor_id, self.threads = actor_id, threads
        self.local = threading.local()
        self.done: list[float] = []
        self.latencies: list[float] = []
        self.ids: list[str] = []
        self.failed = 0
        self.errors: Counter = Counter()
        self.lock = threading.Lock()
        self.active = 0.0

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "s"):
            s = requests.Session()
            s.headers["tenant"] = TENANT
            s.mount("http://", requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1))
            self.local.s = s
        return self.local.s

    def _one(self, i: int) -> None:
        started = time.perf_counter()
        try:
            response = self._session().post(f"{BASE}/actors/{self.actor_id}/messages",
                                            data={"message": f"s5-{i}"}, timeout=60)
            ok = response.status_code == 200
            eid = response.json()["result"]["execution_id"] if ok else None
        except (requests.RequestException, ValueError, KeyError) as e:
            ok, eid = False, None
            response = e
        end = time.perf_counter()
        with self.lock:
            if ok:
                self.done.append(end)
                self.latencies.append(end - started)
                self.ids.append(eid)
            else:
                self.failed += 1
                self.errors[str(getattr(response, "status_code", type(response).__name__))] += 1

    def post(self, start: int, count: int) -> float:
        started = time.perf_counter()
        last = [started]

        def progress(_):
            now = time.perf_counter()
            if now - last[0] > 5:
                last[0] = now
                log(f"S5: {len(self.done):,} accepted ({len(self.done) / (self.active + now - started):,.0f}/s)")

        with ThreadPoolExecutor(self.threads) as pool:
            for f in [pool.submit(self._one, i) for i in range(start, start + count)]:
                f.add_done_callback(progress)
        seconds = time.perf_counter() - started
        self.active += seconds
        return seconds


def slice_rates(done: list[float], slices: int = 10) -> list[float]:
    """Messages/s of each successive tenth of the accepted messages (by completion time)."""
    ordered = sorted(done)
    n = len(ordered)
    rates = []
    for s in range(slices):
        a, b = s * n // slices, (s + 1) * n // slices - 1
        if b > a:
            rates.append((b - a) / (ordered[b] - ordered[a]))
    return rates


def rabbit_point(queue: str, label: str) -> dict:
    info = queue_info(queue) or {}
    total = broker_memory()
    log(f"S5 at {label}: queue {info.get('messages', 0):,} messages, {mb(info.get('memory', 0))}; broker {mb(total or 0)}")
    return {"at": label, "queue": info, "broker_total": total}


def s5(backlog: int, delivered: int, threads: int, profile: bool) -> dict:
    from actors.channels.queues import actor_queue_name

    actor = api("POST", "/actors", json={"image": IMAGE, "queue": "special", "name": "s5-backlog"})
    dbid = f"{TENANT}_{actor['id']}"
    queue = actor_queue_name(dbid)
    out: dict = {"backlog": backlog, "threads": threads, "actor": actor["id"]}
    try:
        out["policies"] = queue_mode_policy()
        points = [rabbit_point(queue, "0")]
        poster = Poster(actor["id"], threads)
        half = backlog // 2
        profiler = start_profile() if profile else None
        poster.post(0, half)
        points.append(rabbit_point(queue, f"{half:,}"))
        poster.post(half, backlog - half)
        if profiler:
            out["profile"] = stop_profile(profiler)
        points.append(rabbit_point(queue, f"{backlog:,}"))
        accepted = len(poster.done)
        rates = slice_rates(poster.done)
        api_count = api("GET", f"/actors/{actor['id']}/messages")["messages"]
        summary = api("GET", f"/actors/{actor['id']}/executions?limit=1")
        executions = summary.get("total_executions", summary.get("totalExecutions"))
        statuses = execution_statuses(dbid)
        out.update({
            "accepted": accepted, "distinct_execution_ids": len(set(poster.ids)), "failed": poster.failed, "errors": dict(poster.errors),
            "seconds": poster.active, "per_s": accepted / poster.active, "slice_rates": rates,
            "post_p50": percentile(poster.latencies, 50), "post_p99": percentile(poster.latencies, 99),
            "queue_api": api_count, "queue_rabbit": points[-1]["queue"].get("messages"),
            "executions": executions, "statuses_before_purge": dict(statuses), "rabbit": points,
            "memory": memory_snapshot(docker_client()),
        })
        log(f"S5: {accepted:,} accepted in {poster.active:.1f}s ({accepted / poster.active:,.0f}/s), "
            f"{poster.failed} failed, {len(set(poster.ids)):,} distinct execution ids; queue {api_count:,} (API) / {out['queue_rabbit']} (rabbitmq); executions {executions}")
        out["wrk"] = wrk_post(actor["id"])
        if out["wrk"]:
            points.append(rabbit_point(queue, "after the wrk pass"))
            after = api("GET", f"/actors/{actor['id']}/executions?limit=1")
            out.update(wrk_queue_api=api("GET", f"/actors/{actor['id']}/messages")["messages"],
                       wrk_queue_rabbit=points[-1]["queue"].get("messages"),
                       wrk_executions=after.get("total_executions", after.get("totalExecutions")))
        started = time.perf_counter()
        api("DELETE", f"/actors/{actor['id']}/messages", timeout=900)
        out["purge_seconds"] = time.perf_counter() - started
        out["statuses_after_purge"] = dict(execution_statuses(dbid))
        out["queue_after_purge"] = api("GET", f"/actors/{actor['id']}/messages")["messages"]
        points.append(rabbit_point(queue, "after purge"))
        log(f"S5 purge: {out['purge_seconds']:.1f}s; statuses {out['statuses_after_purge']}")
    finally:
        try:
            api("DELETE", f"/actors/{actor['id']}", timeout=120)
        except requests.RequestException as e:
            log(f"S5: DELETE {actor['id']}: {e}")
    if delivered:
        out["delivery"] = delivery(delivered)
    return out


def wrk_post(actor_id: str, seconds: int = 15, connections: int = 16) -> dict | None:
    """A second pass of POSTs from wrk (C, 2 threads), whose own CPU is a small share of the 2 cores
    the Python poster's threads take a third of: the web app's capacity rather than the client's.
    wrk cannot read the execution ids, so this pass is checked by the queue depth against the
    actor's ``total_executions`` after it (one message per execution, none lost)."""
    out = wrk.run(BASE, seconds, connections, script=Path(__file__).with_name("post_message.lua"),
                  env={"S5_PATH": f"/actors/{actor_id}/messages", "S5_TENANT": TENANT})
    if out is None:
        log("no wrk pass")
        return None
    log(f"S5 wrk: {out.get('requests', 0):,} requests, {out.get('per_s', 0):,.0f}/s, {out['non_2xx']} non-2xx {out['socket_errors']}")
    return out


def execution_statuses(dbid: str) -> Counter:
    from actors import stores
    from actors.models.execution import EXECUTIONS_OF

    ids = stores.index_store.members(EXECUTIONS_OF.format(dbid))
    keys = [scale.Execution.key(dbid, i) for i in ids]
    statuses: Counter = Counter()
    for start in range(0, len(keys), scale.BATCH):
        for record in stores.executions_store.get_many(keys[start:start + scale.BATCH]):
            statuses[record.get("status") if isinstance(record, dict) else "missing"] += 1
    return statuses


def delivery(count: int) -> dict:
    """A backlog of ``count`` messages through one real worker: every execution must reach COMPLETE."""
    client = docker_client()
    actor = api("POST", "/actors", json={"image": IMAGE, "name": "s5-delivery"})
    dbid = f"{TENANT}_{actor['id']}"
    try:
        poll(lambda: api("GET", f"/actors/{actor['id']}")["status"] == "READY", interval=0.05)
        started = time.perf_counter()
        poster = Poster(actor["id"], 8)
        poster.post(0, count)
        posted = time.perf_counter() - started
        ids = set(poster.ids)

        def all_final():
            statuses = execution_statuses(dbid)
            return statuses if statuses.get("COMPLETE", 0) >= len(ids) else None
        try:
            statuses = poll(all_final, timeout=max(600, count * 3), interval=1)
        except TimeoutError:
            statuses = execution_statuses(dbid)
        seconds = time.perf_counter() - started
        records = [api("GET", f"/actors/{actor['id']}/executions/{eid}") for eid in list(ids)[:20]]
        exit_codes = Counter(str(r.get("exit_code", r.get("exitCode"))) for r in records)
        log(f"S5 delivery: {len(ids)} accepted in {posted:.1f}s, statuses {dict(statuses)} after {seconds:.1f}s")
        return {"count": count, "accepted": len(ids), "failed": poster.failed, "statuses": dict(statuses),
                "seconds": seconds, "per_s": len(ids) / seconds, "sample_exit_codes": dict(exit_codes),
                "all_complete": statuses.get("COMPLETE", 0) == len(ids) == count}
    finally:
        try:
            api("DELETE", f"/actors/{actor['id']}", timeout=120)
        except requests.RequestException as e:
            log(f"S5 delivery: DELETE {actor['id']}: {e}")
        wait_workers_gone(client)


def row(fn):
    """Run a row, then note what the stack's own executions added (before scale.run's clean-up)."""
    try:
        return fn()
    finally:
        note_stack_executions()


# -- py-spy ---------------------------------------------------------------------------------------
def start_profile():
    spy = ROOT / ".venv" / "bin" / "py-spy"
    pids = stack_pids().get("web", [])[1:]
    if not spy.exists() or not pids:
        log("py-spy or the web workers not found: no profile")
        return None
    out = ROOT / "bench" / "results"
    procs = []
    for pid in pids:
        path = out / f"s5_web_{pid}.txt"
        procs.append((path, subprocess.Popen([str(spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "50",
                                              "--nonblocking", "-o", str(path)],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    return procs


def stop_profile(procs) -> dict:
    import signal

    result = {}
    for path, proc in procs:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        result[str(path)] = top_frames(path)
    return result


def top_frames(path: Path, n: int = 15) -> list:
    """Inclusive share of samples per function from py-spy's raw (collapsed) output."""
    if not path.exists():
        return []
    total, inclusive = 0, Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        c = int(count)
        total += c
        frames = {f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")" if " (" in f else f
                  for f in stack.split(";")}
        for f in frames:
            inclusive[f] += c
    return [(f, round(100 * c / total, 1)) for f, c in inclusive.most_common(n)] if total else []
