"""Scale rows of `make bench` (S1-S3, and the ``--sizes`` sweep): do the API's costs stay flat as
the store grows? (issue 15)

Each row fills the store to its size with realistic records written through the project's own model
code (``actors.models``, on the Redis of ``$ABACO_CONF``, by default the repository's local-dev.conf:
the stack's own stores), then measures over real HTTP against the running stack, then deletes all it
wrote. Everything it writes is in one tenant of its own (``ABACO_BENCH_TENANT``, default
``BENCH-S``); the counters shared by every tenant (``_status_count_*``, ``_totals:*:*``) are given
back what its records added. ``python bench/scale.py --cleanup`` removes what an interrupted run left.

Records are written one of two ways (``--fill``):

* ``pipeline`` (default): each record is built by ``Execution.new_record`` and counted by the model's
  ``counting``, exactly as ``Execution.store_new`` + ``set_status(RUNNING)`` + ``set_status(COMPLETE)``
  would leave it (record, per-actor and global totals, status counters, the actor's index and
  ``actors-with-executions``); a batch of records and its counter additions is one MULTI/EXEC.
* ``model``: those very calls, in a thread pool (three transactions and two index writes a record).

The actor records of S3 are always written by ``Actor.create`` (record, indexes, owner's permission
and readable index) in a thread pool; no spawner command is sent, so no worker starts.
"""
from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ABACO_CONF", str(ROOT / "local-dev.conf"))

from actors import stores  # noqa: E402
from actors.lifecycle import ExecutionStatus  # noqa: E402
from actors.models import Actor, Execution  # noqa: E402
from actors.models.actor import ACTORS_OF_TENANT  # noqa: E402
from actors.models.execution import (  # noqa: E402
    ACTORS_WITH_EXECUTIONS,
    COUNTED_EXECUTION,
    COUNTED_USAGE,
    EVERY_ACTOR,
    EXECUTIONS_OF,
    STATUS_COUNTER,
    TOTAL_NAMES,
    TOTALS_OF,
    USAGE_NAMES,
    counting,
)

BASE = os.environ.get("ABACO_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
METRICS_URL = os.environ.get("ABACO_BENCH_METRICS_URL", "http://127.0.0.1:5004/metrics")
TENANT = os.environ.get("ABACO_BENCH_TENANT", "BENCH-S")
IMAGE = os.environ.get("ABACO_BENCH_IMAGE", "abacosamples/test")
# with [web] access_control none every caller is this user (actors/auth.py)
API_USER = "anonymous"
OWNER = "bench-owner"  # owner of the actors whose executions fill the store (not the API's user)
BATCH = 1000
LIFECYCLE = (ExecutionStatus.SUBMITTED, ExecutionStatus.RUNNING, ExecutionStatus.COMPLETE)

session = requests.Session()
session.headers["tenant"] = TENANT


def log(text: str) -> None:
    print(f"    {text}", file=sys.stderr, flush=True)


# -- the stack's Redis (the bench's own connections, through the project's stores) ----------------
def execution_redis():
    return stores.executions_store._redis  # noqa: SLF001 - pipelining needs the client itself


def index_redis():
    return stores.index_store._redis  # noqa: SLF001


def check_layout() -> None:
    """The rows measure the indexed layout: refuse to run on a store still being migrated, or on a
    stack that does not take the tenant from the ``tenant`` header."""
    from actors import auth
    from actors.models import layout

    if auth.access_control() != "none":
        raise SystemExit("the scale rows need [web] access_control: none (local-dev.conf): they pick their "
                         "tenant with the tenant header")

    missing = [n for n in (layout.ACTOR_INDEX, layout.EXECUTION_INDEX) if not layout.is_done(n)]
    if missing:
        raise SystemExit(f"the store layout(s) {', '.join(missing)} are not done yet (actors.migrations): "
                         "the scale rows would measure the old scanning layout")


# -- records --------------------------------------------------------------------------------------
def new_actor(name: str, owner: str = OWNER) -> dict:
    """A registered actor, as POST /actors writes it, without asking the spawner for a worker."""
    return Actor.create(TENANT, owner, {
        "image": IMAGE, "name": name, "description": f"scale bench actor {name}", "stateless": True,
        "token": False, "hints": ["bench", "scale"], "default_environment": {"BENCH": "scale", "ROW": name},
        "mounts": [], "queue": "default",
    })


def complete_record(actor: dict, received: float) -> dict:
    """The record of a finished execution, as a worker leaves it (fields and sizes of a real one)."""
    start = received + random.uniform(0.05, 0.8)
    runtime = random.randint(0, 3)
    finish = start + random.uniform(0.005, 2.0)
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start)) + f".{int(start % 1 * 1e9):09d}Z"
    finished_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(finish)) + f".{int(finish % 1 * 1e9):09d}Z"
    return Execution.new_record(
        actor, "anonymous", message_received_time=repr(received), status=ExecutionStatus.COMPLETE,
        worker_id="benchWorker01", start_time=repr(start), finish_time=repr(finish), runtime=runtime,
        cpu=random.randint(5_000_000, 90_000_000), io=random.randint(0, 4096), exit_code=0, attempts=1,
        final_state={"Status": "exited", "Running": False, "Paused": False, "Restarting": False,
                     "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
                     "StartedAt": started_at, "FinishedAt": finished_at})


# what this process added to the counters every tenant shares; the clean-up must give back as much
ADDED: Counter = Counter()


def note_added(usage: dict[str, int]) -> None:
    """One execution that went SUBMITTED -> RUNNING -> COMPLETE with ``usage``."""
    ADDED.update({STATUS_COUNTER.format(s): 1 for s in LIFECYCLE})
    ADDED[TOTALS_OF.format(EVERY_ACTOR, "executions")] += 1
    ADDED.update({TOTALS_OF.format(EVERY_ACTOR, n): v for n, v in usage.items()})


class Filler:
    """Writes execution records and keeps what they add to each actor's totals (for the checks)."""

    def __init__(self, mode: str = "pipeline", threads: int = 8):
        self.mode = mode
        self.threads = threads
        self.written = Counter()  # per actor dbid: executions
        self.sums: dict[str, Counter] = {}
        self.seconds = 0.0
        self.records = 0
        self.clock = time.time() - 30 * 86400  # arrival times: a month ago onward, one per ms

    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else float("nan")

    def _arrivals(self, count: int) -> list[float]:
        start = self.clock
        self.clock += count * 0.001
        return [start + i * 0.001 for i in range(count)]

    def fill(self, plan: list[tuple[dict, int]], what: str) -> None:
        """Write ``count`` executions of each ``(actor, count)`` of ``plan``, interleaved in time,
        in batches of about BATCH records (each batch one MULTI/EXEC in pipeline mode)."""
        total = sum(c for _, c in plan)
        if not total:
            return
        started = last = time.monotonic()
        done = 0
        remaining = [[a, c] for a, c in plan if c]
        while remaining:
            batch: list[tuple[dict, dict]] = []
            share = max(1, BATCH // len(remaining))
            for entry in remaining:  # round-robin, so the actors' executions interleave in time
                take = min(entry[1], share)
                entry[1] -= take
                batch += [(entry[0], complete_record(entry[0], t)) for t in self._arrivals(take)]
                if len(batch) >= BATCH:
                    break
            remaining = [e for e in remaining if e[1]]
            (self._pipeline if self.mode == "pipeline" else self._model)(batch)
            done += len(batch)
            now = time.monotonic()
            if now - last > 2 or done == total:
                log(f"fill {what}: {done:,}/{total:,} executions ({done / (now - started):,.0f}/s)")
                last = now
        self.seconds += time.monotonic() - started
        self.records += total

    def _note(self, batch: list[tuple[dict, dict]]) -> None:
        for actor, record in batch:
            dbid = actor["db_id"]
            self.written[dbid] += 1
            usage = {n: int(record[n]) for n in USAGE_NAMES}
            self.sums.setdefault(dbid, Counter()).update(usage)
            note_added(usage)

    def _pipeline(self, batch: list[tuple[dict, dict]]) -> None:
        """What store_new + set_status(RUNNING) + set_status(COMPLETE) leave, a batch per MULTI/EXEC."""
        counts: Counter = Counter()
        pipe = execution_redis().pipeline(transaction=True)
        for _, record in batch:
            counted, adds = counting(record)
            counts.update(adds)
            counts.update({STATUS_COUNTER.format(s): 1 for s in LIFECYCLE})
            pipe.set(Execution.key(record["actor_id"], record["id"]), json.dumps(counted))
        for key, amount in counts.items():
            pipe.incrby(key, amount)
        pipe.execute()
        Execution.index([record for _, record in batch])
        self._note(batch)

    def _model(self, batch: list[tuple[dict, dict]]) -> None:
        """The calls the web app and a worker make for one execution, in a thread pool."""
        def one(record: dict) -> None:
            final = {k: record[k] for k in ("start_time", "finish_time", "runtime", "cpu", "io", "exit_code",
                                            "final_state")}
            stored = Execution.store_new({**record, "status": ExecutionStatus.SUBMITTED, "start_time": None,
                                          "runtime": 0, "cpu": 0, "io": 0, "exit_code": None,
                                          "final_state": None, "worker_id": None})
            dbid = stored["actor_id"]
            Execution.set_status(dbid, stored["id"], ExecutionStatus.RUNNING, worker_id=record["worker_id"],
                                 start_time=final["start_time"], attempts=1)
            Execution.set_status(dbid, stored["id"], ExecutionStatus.COMPLETE, **final)

        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(one, [record for _, record in batch]))
        self._note(batch)


def real_executions(actor: dict, count: int) -> None:
    """Executions written by the very calls the web app (store_new) and the worker (set_status,
    finalize) make, one after another."""
    for _ in range(count):
        record = complete_record(actor, time.time())
        stored = Execution.create(actor, "anonymous")
        Execution.set_status(actor["db_id"], stored["id"], ExecutionStatus.RUNNING, worker_id="benchWorker01",
                             start_time=record["start_time"], attempts=1)
        Execution.finalize(actor["db_id"], stored["id"], **{k: record[k] for k in (
            "finish_time", "runtime", "cpu", "io", "exit_code", "final_state")})
        note_added({n: int(record[n]) for n in USAGE_NAMES})


def create_actors(count: int, prefix: str, owners: list[str], threads: int = 8) -> tuple[list[dict], float]:
    """``count`` actors by Actor.create in a thread pool; returns them and the actors per second."""
    started, last, made = time.monotonic(), time.monotonic(), []
    lock = threading.Lock()

    def one(i: int) -> dict:
        nonlocal last
        actor = new_actor(f"{prefix}-{i}", owners[i % len(owners)])
        with lock:
            made.append(actor)
            if time.monotonic() - last > 2:
                last = time.monotonic()
                log(f"actors {prefix}: {len(made):,}/{count:,} ({len(made) / (last - started):,.0f}/s)")
        return actor

    with ThreadPoolExecutor(threads) as pool:
        actors = list(pool.map(one, range(count)))
    seconds = time.monotonic() - started
    log(f"actors {prefix}: {count:,} in {seconds:.1f}s ({count / seconds:,.0f}/s)")
    return actors, count / seconds


# -- clean-up -------------------------------------------------------------------------------------
def is_ours(dbid: str) -> bool:
    """``<TENANT>_<hashid>``: a tenant may hold '_' too, so the rest must be one hashid."""
    return dbid.startswith(f"{TENANT}_") and "_" not in dbid[len(TENANT) + 1:]


def cleanup() -> dict:
    """Delete every record of the bench tenant and give the shared counters back what they added.
    Works from the store alone, so it also clears what an interrupted run left."""
    started = time.monotonic()
    r, idx = execution_redis(), index_redis()
    actor_ids = {d for d in stores.index_store.members(ACTORS_OF_TENANT.format(TENANT))}
    actor_ids |= {k for k in stores.actors_store.keys_with_prefix(f"{TENANT}_") if is_ours(k)}
    with_executions = {d for d in idx.zrange(ACTORS_WITH_EXECUTIONS, 0, -1) if is_ours(d)}
    execution_actors = actor_ids | with_executions
    removed, given = 0, Counter()
    for dbid in sorted(execution_actors):
        ids = stores.index_store.members(EXECUTIONS_OF.format(dbid))
        keys = [Execution.key(dbid, i) for i in ids]
        removed += _delete_executions(keys, given)
        r.delete(*[TOTALS_OF.format(dbid, n) for n in TOTAL_NAMES])
        stores.index_store.drop(EXECUTIONS_OF.format(dbid))
        stores.index_store.remove(ACTORS_WITH_EXECUTIONS, dbid)
    # records that never reached an index (a run stopped between the two writes)
    stray = [k for k in stores.executions_store.keys_with_prefix(f"{TENANT}_") if is_ours(k.rsplit("_", 1)[0])]
    removed += _delete_executions(stray, given)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(Actor.delete, sorted(actor_ids)))
    stores.index_store.drop(ACTORS_OF_TENANT.format(TENANT))
    removed_entries = sweep_index()
    seconds = time.monotonic() - started
    if removed or actor_ids:
        log(f"cleanup: {removed:,} executions and {len(actor_ids):,} actors of tenant {TENANT} removed "
            f"in {seconds:.1f}s" + (f" ({removed_entries} index entries left by the models)" if removed_entries else ""))
    return {"executions": removed, "actors": len(actor_ids), "seconds": seconds,
            "given_back": {k: v for k, v in given.items() if v}}


def sweep_index() -> int:
    """Whatever the models left of the tenant in the index store (an index this bench does not know
    of, e.g. one added to the models later): members ``<TENANT>_<hashid>`` of any sorted set, and
    sorted sets named after the tenant or one of its actors. Returns the entries removed."""
    idx, removed = index_redis(), 0
    for key in list(idx.scan_iter(count=1000)):
        if idx.type(key) != "zset":
            continue
        parts = key.replace(":", " ").split()
        if TENANT in parts or any(is_ours(p) for p in parts):
            removed += int(idx.zcard(key))
            idx.delete(key)
            continue
        ours = [m for m, _ in idx.zscan_iter(key, match=f"{TENANT}_*", count=1000) if is_ours(m)]
        if ours:
            removed += int(idx.zrem(key, *ours))
    return removed


def what_record_added(record: dict) -> Counter:
    """What storing ``record`` added to the shared counters (read from its status and ``counted``)."""
    from actors.lifecycle import ExecutionStatus as S
    from actors.models.execution import EVERY_ACTOR, STATUS_COUNTER, TOTALS_OF, USAGE_NAMES

    added = Counter({STATUS_COUNTER.format(S.SUBMITTED): 1})
    status = record.get("status")
    if status == S.RUNNING or (status == S.COMPLETE and record.get("start_time")):
        added[STATUS_COUNTER.format(S.RUNNING)] += 1
    if status == S.COMPLETE:
        added[STATUS_COUNTER.format(S.COMPLETE)] += 1
    counted = record.get("counted") or []
    if COUNTED_EXECUTION in counted:
        added[TOTALS_OF.format(EVERY_ACTOR, "executions")] += 1
    if COUNTED_USAGE in counted:
        for name in USAGE_NAMES:
            added[TOTALS_OF.format(EVERY_ACTOR, name)] += int(record.get(name) or 0)
    return added


def _delete_executions(keys: list[str], given: Counter) -> int:
    """Delete the records and take what each added out of the shared counters, a batch per
    MULTI/EXEC (what a record added is read from the record: its status and ``counted``)."""
    r, removed = execution_redis(), 0
    for start in range(0, len(keys), BATCH):
        batch = keys[start:start + BATCH]
        records = stores.executions_store.get_many(batch)
        give_back: Counter = Counter()
        for record in records:
            if not isinstance(record, dict) or record.get("tenant") != TENANT:
                continue
            removed += 1
            give_back.update(what_record_added(record))
        pipe = r.pipeline(transaction=True)
        pipe.delete(*[k for k, rec in zip(batch, records) if isinstance(rec, dict) and rec.get("tenant") == TENANT]
                    or ["_bench_nothing_"])
        for key, amount in give_back.items():
            if amount:
                pipe.incrby(key, -amount)
        pipe.execute()
        given.update(give_back)
    return removed


# -- measuring ------------------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def timed_get(url: str, n: int, warm: int = 10, check=None) -> dict:
    """``n`` sequential GETs (after ``warm`` unmeasured ones): p50/p95/max in seconds."""
    times, last = [], None
    for i in range(warm + n):
        started = time.perf_counter()
        response = session.get(url, timeout=300)
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        if i >= warm:
            times.append(elapsed)
        last = response
    if check is not None:
        check(last)
    return {"n": n, "p50": percentile(times, 50), "p95": percentile(times, 95), "max": max(times)}


def executions_url(actor: dict, query: str = "") -> str:
    return f"{BASE}/actors/{actor['id']}/executions{query}"


def result_of(response) -> object:
    return response.json()["result"]


# -- S1: one actor's executions while the store holds N others ---------------------------------------
def s1(n_other: int, filler: Filler, requests_n: int, other_actors: int = 100) -> dict:
    target = new_actor("s1-target")
    real_executions(target, 10)

    def check(response):
        assert len(result_of(response)["executions"]) == 10, "S1: the list does not hold the 10 executions"
    empty = timed_get(executions_url(target), requests_n, check=check)
    log(f"S1 empty store: p50 {empty['p50'] * 1000:.1f} ms")
    others = [new_actor(f"s1-other-{i}") for i in range(other_actors)]
    per, extra = divmod(n_other, other_actors)
    filler.fill([(a, per + (1 if i < extra else 0)) for i, a in enumerate(others)], f"S1 (N={n_other:,})")
    full = timed_get(executions_url(target), requests_n, check=check)
    log(f"S1 N={n_other:,}: p50 {full['p50'] * 1000:.1f} ms")
    return {"n_other": n_other, "other_actors": other_actors, "empty": empty, "full": full,
            "store_executions": store_executions()}


def store_executions() -> int:
    [every] = Execution.totals_of([EVERY_ACTOR])
    return every["executions"]


# -- S2: an actor with M executions ------------------------------------------------------------------
def s2(m: int, filler: Filler, requests_n: int, baseline_at: int = 100) -> dict:
    actor = new_actor("s2-big")
    first = min(baseline_at, m)
    filler.fill([(actor, first)], f"S2 first {first}")
    small = timed_get(executions_url(actor, "?limit=100"), requests_n)
    filler.fill([(actor, m - first)], f"S2 (M={m:,})")
    page = timed_get(executions_url(actor, "?limit=100"), requests_n)
    last = timed_get(executions_url(actor, f"?limit=100&skip={max(m - 100, 0)}"), max(requests_n // 4, 10))
    summary = result_of(session.get(executions_url(actor, "?limit=1"), timeout=300))
    sums = filler.sums[actor["db_id"]]
    wanted = {"total_executions": filler.written[actor["db_id"]], "total_cpu": sums["cpu"],
              "total_io": sums["io"], "total_runtime": sums["runtime"]}
    got = {k: summary.get(k, summary.get(camel(k))) for k in wanted}
    log(f"S2 M={m:,}: first page p50 {page['p50'] * 1000:.1f} ms; totals {'ok' if got == wanted else got}")
    return {"m": m, "baseline_m": first, "baseline_first_page": small, "first_page": page, "last_page": last,
            "totals_expected": wanted, "totals_read": got, "totals_ok": got == wanted}


def camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(p[:1].upper() + p[1:] for p in rest)


# -- S3: K registered actors, a user owning 100 ---------------------------------------------------------
def s3(k: int, requests_n: int, own: int = 100) -> dict:
    mine, _ = create_actors(own, "s3-mine", [API_USER])

    def check(response):
        listed = {a["id"] for a in result_of(response)}
        assert listed == {a["id"] for a in mine}, f"S3: GET /actors lists {len(listed)} actors, not the user's {own}"

    small = measure_s3(requests_n, check)
    log(f"S3 {own} actors: GET /actors p50 {small['user_list']['p50'] * 1000:.1f} ms, "
        f"/metrics {small['metrics']['p50'] * 1000:.0f} ms")
    _, rate = create_actors(max(k - own, 0), "s3-other", [f"bench-user-{i}" for i in range(50)])
    full = measure_s3(requests_n, check)
    log(f"S3 K={k:,}: GET /actors p50 {full['user_list']['p50'] * 1000:.1f} ms, "
        f"admin page {full['admin_page']['p50'] * 1000:.1f} ms, /metrics {full['metrics']['p50'] * 1000:.0f} ms")
    return {"k": k, "own": own, "create_rate": rate, "baseline": small, "full": full,
            "registered_actors": stores.index_store.size("actors")}


def measure_s3(requests_n: int, check) -> dict:
    user = timed_get(f"{BASE}/actors", requests_n, check=check)
    admin = timed_get(f"{BASE}/actors/admin?limit=100", max(requests_n // 4, 10), warm=3)
    scrapes = []
    for i in range(6):
        started = time.perf_counter()
        response = requests.get(METRICS_URL, timeout=600)
        response.raise_for_status()
        if i:
            scrapes.append(time.perf_counter() - started)
    metrics = {"n": len(scrapes), "p50": percentile(scrapes, 50), "p95": percentile(scrapes, 95), "max": max(scrapes),
               "bytes": len(response.content)}
    return {"user_list": user, "admin_page": admin, "metrics": metrics}


# -- the sweep: S1 (and S2) at several store sizes ------------------------------------------------------
def sweep(sizes: list[int], filler: Filler, requests_n: int, with_s2: bool = True, other_actors: int = 100) -> dict:
    """Grow the store through ``sizes`` (executions of other actors) and measure S1 at each; the S2
    actor grows to each size too (its first page and its totals)."""
    target = new_actor("sweep-target")
    real_executions(target, 10)
    big = new_actor("sweep-s2-big") if with_s2 else None
    others = [new_actor(f"sweep-other-{i}") for i in range(other_actors)]
    points, have = [], 0
    for size in sorted(sizes):
        grow = size - have
        per, extra = divmod(grow, other_actors)
        plan = [(a, per + (1 if i < extra else 0)) for i, a in enumerate(others)]
        if big is not None:
            plan.append((big, grow))
        filler.fill(plan, f"sweep to {size:,}")
        have = size
        point = {"size": size, "s1": timed_get(executions_url(target), requests_n)}
        if big is not None:
            point["s2_first_page"] = timed_get(executions_url(big, "?limit=100"), requests_n)
            got = result_of(session.get(executions_url(big, "?limit=1"), timeout=300)).get("total_executions")
            point["s2_totals_ok"] = got == filler.written[big["db_id"]] == size
        log(f"sweep {size:,}: S1 p50 {point['s1']['p50'] * 1000:.1f} ms"
            + (f", S2 first page p50 {point['s2_first_page']['p50'] * 1000:.1f} ms" if big else ""))
        points.append(point)
    return {"points": points, "store_executions": store_executions()}


def plot_sweep(result: dict, out: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; no plot", file=sys.stderr)
        return None
    points = result["points"]
    sizes = [p["size"] for p in points]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, label, marker, color in (("s1", "S1: GET executions of an actor with 10 (others: N)", "o", "tab:blue"),
                                      ("s2_first_page", "S2: first page (?limit=100) of an actor with N", "s",
                                       "tab:green")):
        if key not in points[0]:
            continue
        ax.plot(sizes, [p[key]["p50"] * 1000 for p in points], marker=marker, ls="-", color=color, label=f"{label}, p50")
        ax.plot(sizes, [p[key]["p95"] * 1000 for p in points], marker=marker, ls=":", color=color, alpha=0.6,
                label=f"{label}, p95")
    ax.axhline(10, color="grey", lw=0.8, ls="--")
    ax.axhline(20, color="grey", lw=0.8, ls="-.")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    both = "s2_first_page" in points[0]
    ax.set_xlabel("N (log): executions of other actors" + (" = executions of the S2 actor (the store holds 2N)"
                                                          if both else " (the store holds N)"))
    ax.set_ylabel("milliseconds")
    ax.set_title("Listing cost against store size (goals: S1 10 ms, S2 20 ms)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "scale_latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(name: str, fn):
    """One scale row between two clean-ups of the bench tenant (also on failure)."""
    check_layout()
    cleanup()
    ADDED.clear()
    try:
        return fn()
    finally:
        given = cleanup()["given_back"]
        added = {k: v for k, v in ADDED.items() if v}
        if given != added:
            log(f"WARNING: {name}: the clean-up gave back {given} to the shared counters; this run added {added}")
        ADDED.clear()


if __name__ == "__main__":
    if sys.argv[1:] == ["--cleanup"]:
        print(json.dumps(cleanup()))
    else:
        print("usage: python bench/scale.py --cleanup   (the rows run from bench/bench.py --only s1,s2,s3)",
              file=sys.stderr)
        sys.exit(2)
