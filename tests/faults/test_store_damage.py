"""A damaged embedded task store: one bad row is contained, a corrupt file stops the start with
one clear message."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.conftest import FAULT_OVERRIDES, Watch, assert_truthful
from tests.procs import SkaldsProcess

pytestmark = pytest.mark.faults


def test_unreadable_rows_are_shown_failed_with_the_reason_and_never_stop_a_start(
    tmp_path: Path, standalone: SkaldsProcess, watch: Watch
) -> None:
    # Observed before: one row with a bad status or bad JSON stopped `python -m skalds` from
    # starting (a pydantic ValidationError in the requeue).
    for task_id in ("good", "bad-json", "bad-status"):
        watch.create(task_id)
    watch.running()
    assert standalone.stop(signal.SIGINT) == 0
    db = sqlite3.connect(tmp_path / ".skalds" / "tasks.db")
    db.execute("UPDATE tasks SET doc = '{not json' WHERE id = 'bad-json'")
    (doc,) = db.execute("SELECT doc FROM tasks WHERE id = 'bad-status'").fetchone()
    db.execute(
        "UPDATE tasks SET doc = ?, status = 'Sleeping' WHERE id = 'bad-status'",
        (json.dumps({**json.loads(doc), "lifecycleStatus": "Sleeping"}),),
    )
    db.commit()
    db.close()
    started = time.monotonic()
    standalone.start()
    watch.tasks.discard("bad-json")
    watch.tasks.discard("bad-status")
    watch.running()
    for task_id, reason in (("bad-json", "unreadable task record"), ("bad-status", "lifecycleStatus")):
        task = watch.api.get(f"/api/tasks/{task_id}").json()
        assert task["lifecycleStatus"] == "Failed" and "unreadable" in task["error"] and reason in task["error"], task
    assert watch.api.get("/api/tasks").status_code == 200
    log = standalone.log.read_text()
    assert "bad-json: its record in" in log and "Traceback" not in log
    report = watch.report("unreadable SQLite rows", (started, time.monotonic()), settle_s=0.5)
    assert_truthful(report)


def test_a_corrupt_database_file_stops_the_start_with_one_message(tmp_path: Path) -> None:
    # Observed before: random bytes in the middle of the file gave an uncaught
    # sqlite3.DatabaseError traceback.
    data = tmp_path / ".skalds"
    data.mkdir()
    db = sqlite3.connect(data / "tasks.db")
    db.execute("CREATE TABLE filler (x TEXT)")
    db.executemany("INSERT INTO filler VALUES (?)", [("y" * 500,)] * 200)
    db.commit()
    db.close()
    raw = bytearray((data / "tasks.db").read_bytes())
    raw[4096 : 4096 + 2048] = bytes(range(256)) * 8
    (data / "tasks.db").write_bytes(raw)
    pool = tmp_path / "pool.yaml"
    from tests.conftest import write_pool

    write_pool(pool)
    r = subprocess.run(
        [sys.executable, "-m", "skalds", "controller.port=0", *FAULT_OVERRIDES, f"reload.pool_file={pool}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "tasks.db is not a readable SQLite database" in errors[0], r.stderr
    assert "Traceback" not in r.stderr
