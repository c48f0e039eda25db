"""Watching a Skalds under faults, and judging it from what really ran.

- :class:`Journal` tails the records :class:`~tests.faults.workers.FaultWorker` copies write,
  and watches each copy's process with a pidfd, so a copy killed outright (no record of its
  end) still ends at the instant the kernel says it died.
- :class:`Sampler` asks the REST API what it shows for every task, ten times a second.
- :func:`judge` computes, per fault, the four figures DESIGN's invariants bound: seconds two
  copies of one task were alive at once (overlap), the longest time the API showed a state that
  was not true (Running/Paused with no live copy, or a live copy shown otherwise), tasks lost
  and retries consumed.
"""

from __future__ import annotations

import json
import os
import select
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

#: Shown states that claim a live worker process.
LIVE_SHOWN = ("Running", "Paused")


@dataclass
class Copy:
    """One worker process that ran a task."""

    task: str
    epoch: int
    node: str | None
    pid: int
    start: float
    end: float | None = None  # monotonic; None while alive
    stopped_cleanly: bool = False  # its release handler ran


class Journal:
    """The copies that ran, from the journal file and the kernel."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.copies: list[Copy] = []
        self.updates: list[dict] = []
        self._by_pid: dict[int, Copy] = {}
        self._offset = 0
        self._poll = select.poll()
        self._fds: dict[int, Copy] = {}
        self._lock = threading.Lock()
        self._reading = threading.Lock()  # one reader of the file at a time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-journal", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._read()
            for fd, _ in self._poll.poll(10):
                died = time.monotonic()
                with self._lock:
                    copy = self._fds.pop(fd)
                    if copy.end is None or died < copy.end:
                        copy.end = died
                self._poll.unregister(fd)
                os.close(fd)

    def _read(self) -> None:
        with self._reading:
            try:
                with open(self.path, "rb") as f:
                    f.seek(self._offset)
                    data = f.read()
            except FileNotFoundError:
                return
            end = data.rfind(b"\n") + 1
            self._offset += end
            for line in data[:end].splitlines():
                self._record(json.loads(line))

    def _record(self, r: dict) -> None:
        with self._lock:
            if r["e"] == "start":
                copy = Copy(r["task"], r["epoch"], r["node"], r["pid"], r["mono"])
                self.copies.append(copy)
                self._by_pid[r["pid"]] = copy
                try:
                    fd = os.pidfd_open(r["pid"])
                except ProcessLookupError:
                    copy.end = r["mono"]  # gone before we looked: count it as ended at once
                    return
                self._fds[fd] = copy
                self._poll.register(fd, select.POLLIN)
            elif r["e"] == "stop":
                copy = self._by_pid.get(r["pid"])
                if copy is not None:
                    copy.stopped_cleanly = True
            elif r["e"].startswith("update"):
                self.updates.append(r)

    def snapshot(self) -> list[Copy]:
        """The copies seen so far (ends filled in as processes die)."""
        self._read()
        with self._lock:
            return [Copy(**vars(c)) for c in self.copies]

    def live(self) -> list[Copy]:
        """Copies whose process is alive now."""
        return [c for c in self.snapshot() if c.end is None]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class Sample:
    """What the API showed at one instant: task id -> (state, executor)."""

    at: float
    tasks: dict[str, tuple[str, str | None]]


class Sampler:
    """Polls ``GET /api/tasks`` every ``interval_s`` from a thread of its own."""

    def __init__(self, base_url: str, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self._client = httpx.Client(base_url=base_url, timeout=2.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            sent = time.monotonic()
            try:
                r = self._client.get("/api/tasks", params={"limit": 1000})
            except httpx.HTTPError:
                continue  # the API is down or frozen: it shows nothing
            took = time.monotonic() - sent
            if r.status_code != 200 or took > 3 * self.interval_s:
                continue  # which instant a slow answer describes is unknown
            items = r.json()["items"]
            self.samples.append(
                Sample(sent + took / 2, {t["id"]: (t["lifecycleStatus"], t["executor"]) for t in items})
            )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._client.close()


@dataclass
class Report:
    """The four figures of one fault (seconds; counts)."""

    name: str
    overlap_s: float
    max_false_s: float  # longest false state after the fault settled
    max_false_during_s: float  # longest false state overlapping the fault
    lost: list[str]
    attempts: int
    copies: int
    samples: int
    notes: list[str] = field(default_factory=list)

    def row(self) -> str:
        """A markdown table row."""
        return (
            f"| {self.name} | {self.overlap_s:.3f} | {self.max_false_s:.2f} | {self.max_false_during_s:.2f} "
            f"| {len(self.lost)} | {self.attempts} | {self.copies} |"
        )


def _alive(copies: list[Copy], t: float) -> list[Copy]:
    return [c for c in copies if c.start <= t and (c.end is None or t < c.end)]


def overlap_s(copies: list[Copy], until: float) -> float:
    """Total seconds during which two or more copies of one task were alive."""
    total = 0.0
    by_task: dict[str, list[tuple[float, int]]] = {}
    for c in copies:
        edges = by_task.setdefault(c.task, [])
        edges += [(c.start, 1), (c.end if c.end is not None else until, -1)]
    for edges in by_task.values():
        edges.sort(key=lambda e: (e[0], e[1]))
        alive, last = 0, 0.0
        for t, step in edges:
            if alive >= 2:
                total += t - last
            alive += step
            last = t
    return total


def false_runs(
    copies: list[Copy], samples: list[Sample], task_ids: set[str], interval_s: float
) -> list[tuple[str, float, float]]:
    """``(task, first, last)`` of every run of consecutive samples whose shown state was not
    true: Running (or Paused with an executor) with no live copy on that node, or a live copy
    while shown otherwise. A Paused task with no executor claims no process."""
    runs: list[tuple[str, float, float]] = []
    for task in task_ids:
        mine = [c for c in copies if c.task == task]
        first: float | None = None
        last = 0.0
        for s in samples:
            shown = s.tasks.get(task)
            if shown is None:
                continue
            state, executor = shown
            alive = _alive(mine, s.at)
            claims = state == "Running" or (state == "Paused" and executor is not None)
            false = (claims and not any(c.node == executor for c in alive)) or (bool(alive) and not claims)
            if false:
                first = s.at if first is None else first
                last = s.at
            elif first is not None:
                runs.append((task, first, last + interval_s))
                first = None
        if first is not None:
            runs.append((task, first, last + interval_s))
    return runs


def judge(
    name: str,
    journal: Journal,
    sampler: Sampler,
    task_ids: set[str],
    fault: tuple[float, float],
    final: dict[str, dict],
) -> Report:
    """The figures of a fault that lasted from ``fault[0]`` to ``fault[1]`` (monotonic),
    given the tasks' records as the API showed them at the end (``final``; a missing id was
    lost)."""
    copies = journal.snapshot()
    samples = list(sampler.samples)
    until = time.monotonic()
    runs = false_runs(copies, samples, task_ids, sampler.interval_s)
    after = [end - max(start, fault[1]) for _, start, end in runs if end > fault[1]]
    during = [min(end, fault[1]) - start for _, start, end in runs if start < fault[1]]
    notes = [f"false: {task} {start - fault[0]:+.2f}..{end - fault[0]:+.2f}s" for task, start, end in runs]
    overlap = overlap_s(copies, until)
    if overlap:
        notes += [
            f"copy: {c.task} epoch={c.epoch} node={c.node} pid={c.pid} {c.start - fault[0]:+.3f}.."
            f"{'alive' if c.end is None else f'{c.end - fault[0]:+.3f}'}"
            for c in sorted(copies, key=lambda c: (c.task, c.start))
        ]
    return Report(
        notes=notes,
        name=name,
        overlap_s=overlap,
        max_false_s=max(after, default=0.0),
        max_false_during_s=max(during, default=0.0),
        lost=sorted(t for t in task_ids if t not in final),
        attempts=sum(int(t.get("attempt", 0)) for t in final.values()),
        copies=len(copies),
        samples=len(samples),
    )


REPORTS: list[Report] = []


def keep(report: Report) -> Report:
    """Remember a report for the session's table (``SKALDS_FAULT_REPORT`` names the file)."""
    REPORTS.append(report)
    return report


def write_table(path: Path) -> None:
    """Write every report of the session as one markdown table."""
    lines = [
        "| fault | overlap s | false state after s | false state during s | lost | attempts | copies |",
        "|---|---|---|---|---|---|---|",
        *(r.row() for r in REPORTS),
    ]
    path.write_text("\n".join(lines) + "\n")
