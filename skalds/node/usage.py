"""CPU and memory of a node's process tree (the node, its launcher, its workers), from /proc.

Read at most every ``every_s`` seconds (a node with 500 workers reads 1,500 small files per
sample), and reported in the node's lease: ``cpuPercent`` (100 = one core) and ``memoryMb``
(resident). Elsewhere than Linux both stay None.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class Usage:
    """Samples the CPU and memory of the processes ``pids()`` names."""

    def __init__(self, pids: Callable[[], Iterable[int]], every_s: float = 5.0) -> None:
        self.pids = pids
        self.every_s = every_s
        self._cpu: dict[int, float] = {}
        self._at = 0.0
        self.cpu_percent: float | None = None
        self.memory_mb: float | None = None

    def sample(self) -> tuple[float | None, float | None]:
        """``(cpu_percent, memory_mb)``, re-read when the last reading is ``every_s`` old."""
        now = time.monotonic()
        if now - self._at < self.every_s or not os.path.isdir("/proc"):
            return self.cpu_percent, self.memory_mb
        pids = list(self.pids())
        cpu = {pid: c for pid in pids if (c := _cpu_s(pid)) is not None}
        if self._at:
            used = sum(c - self._cpu.get(pid, c) for pid, c in cpu.items())
            self.cpu_percent = round(max(0.0, used) / (now - self._at) * 100, 1)
        self.memory_mb = round(sum(_rss_bytes(pid) for pid in pids) / 2**20, 1)
        self._cpu, self._at = cpu, now
        return self.cpu_percent, self.memory_mb
