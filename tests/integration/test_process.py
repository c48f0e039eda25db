"""``python -m skalds`` as a user runs it: a real process, real HTTP, signals, restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from skalds.testing import process_gone, wait_until
from tests.procs import SkaldsProcess

pytestmark = pytest.mark.integration

GOOD = {"rtspUrl": "rtsp://example.com/stream", "fixFrame": 10}


@pytest.fixture
def run(tmp_path: Path) -> Iterator:
    started: list[SkaldsProcess] = []

    def start(*overrides: str) -> SkaldsProcess:
        p = SkaldsProcess(tmp_path, *overrides)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def task_status(p: SkaldsProcess, tid: str) -> str:
    return p.http.get(f"/api/tasks/{tid}").json()["lifecycleStatus"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_skalds_with_exit_0_and_no_process_left(run, sig: int) -> None:
    p = run()
    for i in range(3):
        assert (
            p.http.post("/api/tasks", json={"id": f"c{i}", "className": "MyWorker", "attachments": GOOD}).status_code
            == 201
        )
    wait_until(lambda: all(task_status(p, f"c{i}") == "Running" for i in range(3)), timeout_s=20, message="running")
    family = p.descendants()
    zygotes = [q for q in family if "zygote" in q.name()]
    assert len(zygotes) <= 2 and len(family) - len(zygotes) == 4, "the launcher, one process per task, zygotes"
    assert p.stop(sig) == 0
    wait_until(
        lambda: all(process_gone(q.pid) for q in family),
        timeout_s=5,
        message="every child gone",
    )
    assert "stopped" in p.log.read_text()


def test_a_restart_loses_nothing(run, tmp_path: Path) -> None:
    p = run()
    post = p.http.post
    post("/api/tasks", json={"id": "cam", "className": "MyWorker", "attachments": GOOD})
    post("/api/tasks", json={"id": "paused", "className": "MyWorker", "attachments": GOOD})
    post("/api/tasks", json={"id": "done", "className": "CountdownWorker", "attachments": {"steps": 1, "stepS": 0}})
    post("/api/tasks", json={"id": "broken", "className": "AlwaysFailWorker", "attachments": {}})
    wait_until(
        lambda: task_status(p, "done") == "Finished" and task_status(p, "broken") == "Failed",
        timeout_s=20,
        message="terminal tasks",
    )
    wait_until(
        lambda: task_status(p, "cam") == "Running" and task_status(p, "paused") == "Running",
        timeout_s=20,
        message="running",
    )
    p.http.patch("/api/tasks/cam/attachments", json={"attachments": {"fixFrame": 99}})
    p.http.post("/api/tasks/paused/pause")
    wait_until(lambda: p.http.get("/api/tasks/cam").json()["appliedVersion"] == 1, timeout_s=10, message="applied")
    before = {t["id"]: t for t in p.http.get("/api/tasks").json()["items"]}
    assert p.stop() == 0

    q = run()
    wait_until(lambda: task_status(q, "cam") == "Running", timeout_s=20, message="cam running again")
    after = {t["id"]: t for t in q.http.get("/api/tasks").json()["items"]}
    assert after["cam"]["attachments"] == {**GOOD, "fixFrame": 99}
    assert after["cam"]["epoch"] > before["cam"]["epoch"]
    assert after["paused"]["lifecycleStatus"] == "Paused"
    wait_until(
        lambda: q.http.get("/api/tasks/paused").json()["executor"] == "proc-node",
        timeout_s=10,
        message="paused task held by a worker again",
    )
    for tid in ("done", "broken"):
        assert after[tid] == before[tid]
    assert len([d for d in q.descendants() if "zygote" not in d.name()]) == 3, "launcher + cam + paused"
    assert q.stop() == 0


def test_a_config_error_names_the_key_and_exits_2(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "skalds", "node.capacity=0"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert "node.capacity: must be >= 1 (got 0)" in r.stderr


def test_cfg_job_prints_the_composed_config(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "skalds", "--cfg", "job", "node.capacity=5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "capacity: 5" in r.stdout and "MyWorker: skalds.workers.demo:MyWorker" in r.stdout


def test_the_seed_standalone_worker_run_still_works(tmp_path: Path) -> None:
    script = tmp_path / "my_worker.py"
    script.write_text(
        "from skalds.workers.demo import CountdownWorker, CountdownModel\n"
        "if __name__ == '__main__':\n"
        "    w = CountdownWorker()\n"
        "    w.initialize(CountdownModel(steps=2, step_s=0.01))\n"
        "    w.start()\n"
        "    print('progress', w._control.progress)\n"
    )
    r = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60, env={**os.environ}
    )
    assert r.returncode == 0, r.stderr
    assert "progress 1.0" in r.stdout
