"""The launcher keeps zygotes ready (forks of it that ran nothing yet), hands each start to one,
re-forks them after importing new worker modules, and tells the node only about workers."""

from __future__ import annotations

import os
import select
import time
from pathlib import Path

import psutil
import pytest

from skalds.node.launcher import LauncherClient
from skalds.testing import wait_until
from skalds.worker.protocol import Exited, Launched, Started, WorkerSpec
from tests.conftest import PROBE
from tests.probe_workers import read

pytestmark = pytest.mark.integration


def zygotes(launcher: LauncherClient) -> set[int]:
    assert launcher.pid is not None
    return {p.pid for p in psutil.Process(launcher.pid).children() if "zygote" in p.name()}


def messages(launcher: LauncherClient, seconds: float) -> list[object]:
    """What the launcher says within ``seconds``."""
    found = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if select.select([launcher.fileno()], [], [], left)[0]:
            found.append(launcher.receive())
    return found


def spec(task_id: str, journal: Path) -> WorkerSpec:
    return WorkerSpec(
        task_id=task_id,
        class_name="ProbeWorker",
        class_path=PROBE,
        attachments={"journal": str(journal), "mode": "finish", "steps": 1},
        version=0,
        epoch=1,
        node_id="n",
        paused=False,
        heartbeat_interval_s=0.2,
        log_level="INFO",
    )


def test_a_start_goes_to_a_ready_zygote_and_new_modules_replace_the_zygotes(tmp_path: Path) -> None:
    launcher = LauncherClient(["skalds.workers.demo"], title="skalds launcher test", prefork=2)
    launcher.start()
    try:
        ready = wait_until(lambda: len(zygotes(launcher)) == 2 and zygotes(launcher), message="two zygotes")
        conn, out, err = launcher.launch(1, spec("z-1", tmp_path / "j"))
        said = messages(launcher, 0.5)
        launched = next(m for m in said if isinstance(m, Launched))
        assert launched.pid in ready, "the worker is one of the zygotes made before"
        assert conn.poll(10) and isinstance(conn.recv(), Started)
        wait_until(lambda: [e for e in read(str(tmp_path / "j")) if e["event"] == "release"], message="it ran")
        assert [e["pid"] for e in read(str(tmp_path / "j")) if e["event"] == "main"] == [launched.pid]
        wait_until(lambda: len(zygotes(launcher) - ready) == 1, message="a new zygote replaces it")

        before = zygotes(launcher)
        launcher.preload(["skalds.workers.complex"])
        wait_until(lambda: len(zygotes(launcher)) == 2 and not (zygotes(launcher) & before), message="renewed")
        exits = [m for m in messages(launcher, 1.0) if isinstance(m, Exited)]
        assert {e.pid for e in exits} <= {launched.pid}, "retired zygotes are no worker the node knows"
        for fd in (out, err):
            os.close(fd)
        conn.close()
    finally:
        launcher.stop()


def test_a_zygote_starts_its_workers_threads_while_it_waits_and_the_worker_runs_on_them(tmp_path: Path) -> None:
    # The rehearsal: a zygote starts the two threads a worker needs (its channel and its
    # updates) before its task is known; the worker takes them instead of starting its own.
    launcher = LauncherClient(["skalds.workers.demo"], title="skalds launcher test", prefork=1)
    launcher.start()
    try:

        def rehearsed() -> set[int]:
            found = zygotes(launcher)
            return found if found and all(psutil.Process(p).num_threads() == 3 for p in found) else set()

        (zygote,) = wait_until(rehearsed, message="a zygote with its two spare threads")
        spare = {t.id for t in psutil.Process(zygote).threads()}
        task = spec("z-2", tmp_path / "j")
        task.attachments["mode"] = "loop"
        conn, out, err = launcher.launch(1, task)
        launched = next(m for m in messages(launcher, 0.5) if isinstance(m, Launched))
        assert launched.pid == zygote
        assert conn.poll(10) and isinstance(conn.recv(), Started)
        wait_until(lambda: [e for e in read(str(tmp_path / "j")) if e["event"] == "main"], message="it runs")
        assert {t.id for t in psutil.Process(zygote).threads()} == spare, "no thread started after the task came"
        assert conn.poll(5), "heartbeats come from the channel thread it was given"
        for fd in (out, err):
            os.close(fd)
        conn.close()
    finally:
        launcher.stop()
