"""The stack's processes, found from `.run/pids` (what `make up` writes), and what they use from /proc:
resident memory (S4) and CPU time (P3's CPU per POST)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIDS = ROOT / ".run" / "pids"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (proc(5): fields 14, 15)


def children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return []
    return [int(p) for p in out.split()]


def pid_of(name: str) -> int | None:
    """The pid `.run/pids/<name>.pid` names, if that process runs."""
    path = PIDS / f"{name}.pid"
    try:
        pid = int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def stack_pids() -> dict[str, list[int]]:
    """The stack's processes from .run/pids: the gunicorn masters with their workers, the agents,
    redis-server and RabbitMQ's beam (without epmd and dockerd: dockerd is reported apart)."""
    found = {}
    for name in ("web", "metrics", "spawner", "health", "events", "redis", "rabbitmq"):
        pid = pid_of(name)
        if pid is not None:
            found[name] = [pid] + (children(pid) if name in ("web", "metrics") else [])
    return found


def cpu_by_process(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by each named group of processes; a difference of two readings is
    what the work between them cost."""
    return {name: sum(cpu_seconds(p) for p in group) for name, group in pids.items()}
