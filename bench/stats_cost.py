"""What per-execution resource accounting costs, cgroup counters against the Docker stats API.

The worker reads cpu/io of an execution from the cgroup v1 counters of a parent cgroup it owns
(``actors.accounting.CgroupAccounting``: read before start, read after exit) and falls back to
the stats API where those files are out of reach (``StatsSampler``: follows the stats stream while
the container runs). This script runs small busybox containers the way the worker does and prints,
per execution:

* the time the cgroup reads add to an execution (two reads + a memory-peak reset);
* the time of one stats API call on a running container (``stream=False``, and ``one_shot=True``
  where the engine supports it), i.e. what the fallback would add if it asked once;
* the time to the first sample of the stats stream the fallback follows, and how much of the CPU
  time it saw compared with the cgroup counters of the same run (it misses the tail).

    ABACO_CONF=local-dev.conf .venv/bin/python bench/stats_cost.py [--runs 10] [--json out.json]

Needs root (it writes under /sys/fs/cgroup) and the local busybox image. Talks only to the local
Docker daemon.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ABACO_CONF", str(ROOT / "local-dev.conf"))

from actors import docker_utils  # noqa: E402
from actors.accounting import CgroupAccounting  # noqa: E402
from actors.docker_utils import StatsSampler, usage_from_stats  # noqa: E402

IMAGE = os.environ.get("ABACO_BENCH_BUSYBOX", "abaco/busybox:local")
# about 0.3 s of CPU in busybox sh, then a short sleep so the stats stream has a chance
BURN = "i=0; while [ $i -lt 60000 ]; do i=$((i+1)); done; sleep {sleep}"


def ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return f"median {statistics.median(values) * 1000:9.3f} ms   p95 {p95 * 1000:9.3f} ms   (n={len(values)})"


def run_container(parent: str | None, sleep: float, label: str):
    kwargs = {"cgroup_parent": f"/{parent}"} if parent else {}
    container = docker_utils.client().containers.create(
        IMAGE, ["sh", "-c", BURN.format(sleep=sleep)], labels={"org.abaco.bench": label},
        network_mode="none", detach=True, **kwargs)
    return container


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    label = f"stats-cost-{uuid.uuid4().hex[:6]}"
    parent = f"abaco/bench_{label}"
    accounting = CgroupAccounting("/sys/fs/cgroup", parent)
    if not accounting.available():
        sys.exit("cgroup v1 cpuacct is not at /sys/fs/cgroup: nothing to compare")
    api = docker_utils.client().api
    figures: dict[str, list[float]] = {k: [] for k in (
        "cgroup_before", "cgroup_after", "stats_call", "stats_one_shot", "first_sample")}
    cpu_seen: list[float] = []
    cpu_seen_short: list[float] = []
    one_shot_ok = True
    try:
        for _ in range(args.runs):
            # 1. the cgroup path, exactly as the worker does it
            t0 = time.perf_counter()
            before = accounting.read()
            accounting.reset_memory_peak()
            figures["cgroup_before"].append(time.perf_counter() - t0)
            container = run_container(parent, 1.5, label)
            container.start()
            sampler = StatsSampler(container.id)  # 3. the fallback, on the same run
            # 2. one stats call on the running container
            t0 = time.perf_counter()
            api.stats(container.id, stream=False)
            figures["stats_call"].append(time.perf_counter() - t0)
            if one_shot_ok:
                t0 = time.perf_counter()
                try:
                    usage_from_stats(api.stats(container.id, stream=False, one_shot=True))
                    figures["stats_one_shot"].append(time.perf_counter() - t0)
                except Exception as e:  # older engine or SDK
                    one_shot_ok = False
                    print(f"one_shot stats unavailable: {e}")
            container.wait(timeout=60)
            usage = sampler.finish()
            t0 = time.perf_counter()
            exact = accounting.usage_since(before)
            figures["cgroup_after"].append(time.perf_counter() - t0)
            if exact.cpu:
                cpu_seen.append(usage.cpu / exact.cpu)
            container.remove(force=True)
        # the fallback on short runs (the CPU burn, then exit): what does the stream see?
        for _ in range(args.runs):
            before = accounting.read()
            container = run_container(parent, 0, label)
            container.start()
            sampler = StatsSampler(container.id)
            container.wait(timeout=60)
            usage = sampler.finish()
            exact = accounting.usage_since(before)
            if exact.cpu:
                cpu_seen_short.append(usage.cpu / exact.cpu)
            container.remove(force=True)
        # time to the first sample of a stream, on its own
        for _ in range(max(3, args.runs // 3)):
            container = run_container(None, 3, label)
            container.start()
            t0 = time.perf_counter()
            stream = api.stats(container.id, decode=True, stream=True)
            next(stream)
            figures["first_sample"].append(time.perf_counter() - t0)
            if hasattr(stream, "close"):
                stream.close()
            container.remove(force=True)
    finally:
        for c in docker_utils.client().containers.list(ignore_removed=True, all=True, filters={"label": f"org.abaco.bench={label}"}):
            c.remove(force=True)
        accounting.remove()

    print(f"Per-execution accounting cost ({args.runs} runs of {IMAGE}, docker {api.version()['Version']}):")
    print(f"  cgroup read+reset before start   {ms(figures['cgroup_before'])}")
    print(f"  cgroup read after exit           {ms(figures['cgroup_after'])}")
    print(f"  one stats API call (stream=False) {ms(figures['stats_call'])}")
    if figures["stats_one_shot"]:
        print(f"  one stats API call (one_shot)    {ms(figures['stats_one_shot'])}")
    print(f"  stats stream: first sample after {ms(figures['first_sample'])}")
    for name, shares in (("runs ending 1.5 s after the work", cpu_seen), ("runs ending with the work", cpu_seen_short)):
        if shares:
            print(f"  CPU time the stats stream saw, share of the cgroup counters, {name}: "
                  f"median {statistics.median(shares) * 100:.0f}% (min {min(shares) * 100:.0f}%)")
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": figures, "cpu_share_seen_by_stats": cpu_seen,
                                                "cpu_share_seen_by_stats_short_runs": cpu_seen_short}, indent=2))


if __name__ == "__main__":
    main()
