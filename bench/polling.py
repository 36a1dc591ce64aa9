"""Polling with a deadline, for every bench module (bench.py, scale.py, idle.py)."""
from __future__ import annotations

import time


def wait_until(predicate, timeout: float = 120, interval: float = 0.01):
    """Poll ``predicate`` until it returns something truthy (returned), or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("benchmark condition not reached")
