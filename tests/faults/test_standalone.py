"""Faults of a standalone ``python -m skalds`` (embedded backends), judged from what really ran.

Each test starts the process, runs FaultWorker tasks, hurts it, and checks the invariants of
DESIGN from the workers' own records and the kernel's word on their processes: no overlap,
nothing lost, false states shorter than a heartbeat interval after the fault settled, and no
retry consumed by anything but a real loss.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skalds.testing import wait_until
from tests.faults.conftest import FAULT_OVERRIDES, Watch, assert_truthful
from tests.procs import SkaldsProcess

pytestmark = pytest.mark.faults


def test_freezing_the_whole_process_again_and_again_moves_and_kills_nothing(
    standalone: SkaldsProcess, watch: Watch
) -> None:
    # Observed before: a 3.5-4 s SIGSTOP made the monitor declare its own node lost; every
    # worker was SIGKILLed, and after four freezes every task was Failed.
    for i in range(12):
        watch.create(f"t{i}")
    watch.running()
    started = time.monotonic()
    for _ in range(4):
        standalone.proc.send_signal(signal.SIGSTOP)
        time.sleep(3.8)  # longer than the 2.5 s lease
        standalone.proc.send_signal(signal.SIGCONT)
        time.sleep(1.0)
    report = watch.report("standalone SIGSTOP 3.8 s x4", (started, time.monotonic()))
    assert_truthful(report)
    assert report.copies == 12, "no worker was restarted"
    assert all(t["lifecycleStatus"] == "Running" for t in watch.final().values())
    assert "lost its lease" not in standalone.log.read_text()


def test_ctrl_c_while_a_worker_outlasts_the_lease_then_restarts_in_a_loop_cost_nothing(
    standalone: SkaldsProcess, watch: Watch
) -> None:
    # Observed before: a worker slower to stop than node.lease_ttl_s made the next start see
    # "node lost its lease", attempt +1; the third restart left the task Failed.
    watch.create("slow", stop_delay_s=3.5)
    watch.create("plain")
    watch.create("paused")
    watch.running()
    assert watch.api.post("/api/tasks/paused/pause").status_code == 200
    started = time.monotonic()
    for _ in range(3):
        assert standalone.stop(signal.SIGINT, timeout_s=30) == 0
        standalone.start()
        wait_until(
            lambda: watch.api.get("/api/tasks/slow").json()["lifecycleStatus"] == "Running", message="running again"
        )
    watch.running(count=2)
    report = watch.report("standalone Ctrl-C with a slow worker, 3 restarts", (started, time.monotonic()))
    assert_truthful(report)
    final = watch.final()
    assert final["paused"]["lifecycleStatus"] == "Paused", "paused stays paused"
    assert [c.stopped_cleanly for c in watch.journal.snapshot() if c.task == "slow"][:3] == [True] * 3
    assert all(a["outcome"] == "handed_back" for t in final.values() for a in t["attempts"])


def test_a_second_skalds_on_the_same_data_dir_is_refused_and_changes_nothing(
    tmp_path: Path, standalone: SkaldsProcess, watch: Watch
) -> None:
    # Observed before: the second took every task over (a 2.4 s double run), failed to bind
    # the port and exited, leaving the first showing Running tasks with no process.
    for i in range(3):
        watch.create(f"t{i}")
    watch.running()
    started = time.monotonic()
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "skalds",
            "controller.port=0",
            *FAULT_OVERRIDES,
            f"reload.pool_file={tmp_path / 'pool.yaml'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2
    assert f"pid {standalone.proc.pid}" in second.stderr and "data_dir" in second.stderr
    report = watch.report("second standalone on one data_dir", (started, time.monotonic()))
    assert_truthful(report)
    assert report.copies == 3


def test_workers_killed_terminated_or_frozen_from_outside_are_retried_with_backoff(
    standalone: SkaldsProcess, watch: Watch
) -> None:
    # Observed before: SIGKILL -> Failed at once, no retry; SIGTERM -> three retries at once,
    # no backoff; a running task kept the previous attempt's error.
    for task_id in ("killed", "terminated", "frozen"):
        watch.create(task_id)
    watch.running()
    pids = {c.task: c.pid for c in watch.journal.live()}
    started = time.monotonic()
    os.kill(pids["killed"], signal.SIGKILL)
    os.kill(pids["terminated"], signal.SIGTERM)
    os.kill(pids["frozen"], signal.SIGSTOP)
    wait_until(lambda: len(watch.journal.snapshot()) == 6, timeout_s=30, message="all three ran again")
    watch.running()
    report = watch.report("worker SIGKILL / SIGTERM / SIGSTOP", (started, time.monotonic()))
    assert_truthful(report, attempts=3)
    final = watch.final()
    for task_id, reason in (("killed", "SIGKILL"), ("terminated", "SIGTERM"), ("frozen", "no heartbeat")):
        task = final[task_id]
        assert task["attempt"] == 1 and task["error"] is None, task
        (lost,) = task["attempts"]
        assert lost["outcome"] == "worker_lost" and reason in lost["error"], lost
    copies = {c.task: c for c in watch.journal.snapshot() if c.pid not in pids.values()}
    for task_id in ("killed", "terminated"):
        old = next(c for c in watch.journal.snapshot() if c.pid == pids[task_id])
        assert old.end is not None and copies[task_id].start - old.end >= 0.45, "first retry waits retry_backoff_s"


def test_a_long_update_handler_neither_kills_its_worker_nor_delays_a_cancel(
    standalone: SkaldsProcess, watch: Watch
) -> None:
    # Observed before: a 12 s update handler got its worker killed ("no heartbeat") and the
    # task restarted; a cancel during a 6 s handler waited for it and ended by SIGTERM.
    watch.create("slow-update")
    watch.running()
    started = time.monotonic()
    r = watch.api.patch("/api/tasks/slow-update/attachments", json={"attachments": {"label": "v1", "update_s": 6}})
    assert r.status_code == 200, r.text
    wait_until(lambda: any(u["e"] == "update_begin" for u in watch.journal.updates), message="handler running")
    time.sleep(5.5)  # longer than node.heartbeat_timeout_s=4: the handler must not silence heartbeats
    assert [c.end for c in watch.journal.snapshot()] == [None], "the worker was not killed"
    # a second, long update, cancelled while it runs
    watch.api.patch("/api/tasks/slow-update/attachments", json={"attachments": {"label": "v2", "update_s": 20}})
    wait_until(lambda: any(u.get("label") == "v2" for u in watch.journal.updates), timeout_s=10, message="v2 running")
    cancelled = time.monotonic()
    assert watch.api.post("/api/tasks/slow-update/cancel").status_code == 200
    wait_until(lambda: watch.journal.snapshot()[0].end is not None, timeout_s=10, message="worker gone")
    copy = watch.journal.snapshot()[0]
    assert copy.stopped_cleanly and copy.end is not None and copy.end - cancelled < 1.0, "no grace period waited out"
    report = watch.report("12 s update handler, cancel during a handler", (started, time.monotonic()), settle_s=1)
    assert_truthful(report)
    assert watch.final()["slow-update"]["appliedVersion"] == 1


def test_an_update_racing_a_cancel_never_reaches_a_worker_after_the_cancel(
    standalone: SkaldsProcess, watch: Watch
) -> None:
    # Observed before: the update built its own transition; it won on a Cancelled task and an
    # update event went to a dead worker.
    import threading

    for i in range(8):
        watch.create(f"race-{i}")
    watch.running()
    started = time.monotonic()
    answers: dict[str, list[int]] = {}

    def patch(task_id: str) -> None:
        codes = answers.setdefault(task_id, [])
        for n in range(20):
            body = {"attachments": {"label": f"n{n}"}}
            codes.append(watch.api.patch(f"/api/tasks/{task_id}/attachments", json=body).status_code)

    threads = [threading.Thread(target=patch, args=(f"race-{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for i in range(8):
        assert watch.api.post(f"/api/tasks/race-{i}/cancel").status_code == 200
    for t in threads:
        t.join()
    report = watch.report("PATCH racing cancel", (started, time.monotonic()), settle_s=1)
    assert_truthful(report)
    final = watch.final()
    for task_id, codes in answers.items():
        assert set(codes) <= {200, 409}, codes
        task = final[task_id]
        assert task["lifecycleStatus"] == "Cancelled"
        assert codes.count(200) == task["desiredVersion"], "every 200 is a version, every 409 stored nothing"
    ended = {c.task: c.end for c in watch.journal.snapshot()}
    late = [
        u
        for u in watch.journal.updates
        if u["e"] == "update_begin" and ended[u["task"]] and u["mono"] > ended[u["task"]]
    ]
    assert late == []
