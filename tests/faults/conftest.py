"""Fixtures of the fault suite: Skalds processes to hurt, and the observation that judges them."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from skalds.testing import wait_until
from tests.faults.observe import REPORTS, Journal, Report, Sampler, judge, keep, write_table
from tests.procs import SkaldsProcess

pytestmark = pytest.mark.faults

#: Heartbeats every half second: a false state may last at most this long once a fault settled.
HEARTBEAT_S = 0.5
#: Timings of every Skalds the fault suite starts (defaults otherwise: a 2.5 s lease).
FAULT_OVERRIDES = (
    f"node.heartbeat_interval_s={HEARTBEAT_S}",
    "node.heartbeat_timeout_s=4",
    "node.cancel_grace_s=1",
    "node.terminate_grace_s=1",
    "node.fence_check_interval_s=1",
    "log_level=INFO",
)


class Watch:
    """A journal of what really runs plus samples of what the API shows, for one test."""

    def __init__(self, tmp: Path, api_url: str) -> None:
        self.journal_path = tmp / "journal.jsonl"
        self.journal = Journal(self.journal_path)
        self.sampler = Sampler(api_url)
        self.api = httpx.Client(base_url=api_url, timeout=10)
        self.tasks: set[str] = set()

    def create(self, task_id: str, **attachments: object) -> dict:
        """Create a FaultWorker task; it must be accepted."""
        body = {
            "id": task_id,
            "className": "FaultWorker",
            "attachments": {"journal": str(self.journal_path), **attachments},
        }
        r = self.api.post("/api/tasks", json=body)
        assert r.status_code == 201, r.text
        self.tasks.add(task_id)
        return r.json()

    def running(self, count: int | None = None, timeout_s: float = 30) -> None:
        """Wait until every task (or ``count`` of them) has a live copy and shows Running."""
        want = len(self.tasks) if count is None else count

        def ok() -> bool:
            live = {c.task for c in self.journal.live()}
            shown = self.api.get("/api/tasks", params={"limit": 1000, "lifecycleStatus": "Running"}).json()["items"]
            return len(live & {t["id"] for t in shown} & self.tasks) >= want

        wait_until(ok, timeout_s=timeout_s, interval_s=0.1, message=f"{want} task(s) running")

    def final(self) -> dict[str, dict]:
        """Every created task as the API shows it now (missing ones are lost)."""
        out = {}
        for task_id in self.tasks:
            r = self.api.get(f"/api/tasks/{task_id}")
            if r.status_code == 200:
                out[task_id] = r.json()
        return out

    def report(self, name: str, fault: tuple[float, float], settle_s: float = 2.0) -> Report:
        """Judge the run after letting it settle for ``settle_s`` past the fault."""
        time.sleep(max(0.0, fault[1] + settle_s - time.monotonic()))
        report = judge(name, self.journal, self.sampler, self.tasks, fault, self.final())
        print(report.row(), *report.notes, sep="\n")
        return keep(report)

    def close(self) -> None:
        self.sampler.close()
        self.journal.close()
        self.api.close()


def assert_truthful(report: Report, *, attempts: int | None = 0) -> None:
    """The invariants: no overlap, nothing lost, false states no longer than a heartbeat
    interval after the fault settled (plus one sample), and the retries a fault may cost."""
    assert report.overlap_s == 0, f"{report.name}: two copies ran at once for {report.overlap_s:.3f}s"
    assert report.lost == [], f"{report.name}: lost {report.lost}"
    assert report.max_false_s <= HEARTBEAT_S + 0.15, f"{report.name}: false state for {report.max_false_s:.2f}s"
    if attempts is not None:
        assert report.attempts == attempts, f"{report.name}: {report.attempts} retries consumed"


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[SkaldsProcess]:
    """``python -m skalds`` (controller + node, embedded backends) with the fault timings."""
    p = SkaldsProcess(tmp_path, *FAULT_OVERRIDES, name="standalone")
    try:
        yield p
    finally:
        if p.proc.poll() is None:
            p.kill()
        print(f"----- {p.name} ({p.log}) -----\n" + "\n".join(p.log.read_text().splitlines()[-60:]))


@pytest.fixture
def watch(tmp_path: Path, standalone: SkaldsProcess) -> Iterator[Watch]:
    w = Watch(tmp_path, str(standalone.http.base_url))
    try:
        yield w
    finally:
        w.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("SKALDS_FAULT_REPORT")
    if path and REPORTS:
        write_table(Path(path))
