"""wrk, the C load generator (`apt-get install wrk`), run once and its summary read: P3's GET /actors
load and S5's second pass of POSTs use it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def run(url: str, seconds: int, connections: int = 16, script: Path | None = None,
        env: dict[str, str] | None = None) -> dict | None:
    """``wrk -t2`` against ``url`` (with a Lua ``script`` and extra environment for it, if given);
    None when wrk is not installed. The figures wrk prints: ``per_s``, ``requests``, ``non_2xx``,
    ``socket_errors`` (the line, "" when none), ``latency_avg`` (as wrk writes it)."""
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return None
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s"] + (["-s", str(script)] if script else []) + [url]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    out: dict = {"seconds": seconds, "connections": connections, "non_2xx": 0, "socket_errors": ""}
    for line in result.stdout.splitlines():
        line = line.strip()
        if line.startswith("Requests/sec:"):
            out["per_s"] = float(line.split()[1])
        elif "requests in" in line:
            out["requests"] = int(line.split()[0])
        elif line.startswith("Non-2xx"):
            out["non_2xx"] = int(line.split()[-1])
        elif line.startswith("Socket errors"):
            out["socket_errors"] = line
        elif line.startswith("Latency"):
            out["latency_avg"] = line.split()[1]
    return out
