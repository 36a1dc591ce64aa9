"""What an execution used: CPU time, block I/O and peak memory (docs/architecture.md, "Accounting").

Docker's stats API takes one to two seconds per call, and a container's own cgroup folder vanishes the
moment it exits, so sampling either misses the end of a short execution. Instead actor containers
start with a ``cgroup_parent`` the worker owns: a cgroup v1 parent keeps the totals of its children
after they exit, so the difference of the parent's counters read before the container starts and
after it exited is exactly the execution's usage. Where the cgroup files are out of reach, the
worker falls back to the stats stream (``docker_utils.StatsSampler``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class Usage:
    cpu: int = 0  # nanoseconds of CPU time (cpuacct.usage)
    io: int = 0  # bytes read and written on block devices
    memory: int = 0  # peak memory in bytes


class CgroupAccounting:
    """Exact resource use of the actor containers one worker runs, read from their cgroup parent.
    ``root`` is where the host's ``/sys/fs/cgroup`` is visible to this process."""

    CONTROLLERS = ("cpuacct", "blkio", "memory")

    def __init__(self, root: str, parent: str):
        self.root = root
        self.parent = parent.strip("/")

    def available(self) -> bool:
        return os.path.isfile(os.path.join(self.root, "cpuacct", "cpuacct.usage"))

    def path(self, controller: str, name: str) -> str:
        return os.path.join(self.root, controller, self.parent, name)

    def read_int(self, controller: str, name: str) -> int:
        try:
            with open(self.path(controller, name)) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0  # the parent folder appears with the first container

    def io_bytes(self) -> int:
        try:
            with open(self.path("blkio", "blkio.throttle.io_service_bytes")) as f:
                for line in f:
                    if line.startswith("Total"):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def read(self) -> Usage:
        return Usage(
            cpu=self.read_int("cpuacct", "cpuacct.usage"),
            io=self.io_bytes(),
            memory=self.read_int("memory", "memory.max_usage_in_bytes"),
        )

    def reset_memory_peak(self) -> None:
        try:
            with open(self.path("memory", "memory.max_usage_in_bytes"), "w") as f:
                f.write("0")
        except OSError:
            pass

    def usage_since(self, before: Usage) -> Usage:
        after = self.read()
        return Usage(cpu=max(0, after.cpu - before.cpu), io=max(0, after.io - before.io), memory=after.memory)

    def remove(self) -> None:
        """Remove the parent folders once the worker stops (they only go when empty)."""
        for controller in os.listdir(self.root) if os.path.isdir(self.root) else []:
            folder = os.path.join(self.root, controller, self.parent)
            if os.path.isdir(folder):
                for child in sorted(os.listdir(folder), reverse=True):
                    if os.path.isdir(os.path.join(folder, child)):
                        try:
                            os.rmdir(os.path.join(folder, child))
                        except OSError:
                            pass
                try:
                    os.rmdir(folder)
                except OSError:
                    pass
