"""The SQLite task store opens files written by earlier versions and moves them forward."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from skalds.backends.local.task_store import SCHEMA_VERSION, SqliteTaskStore
from skalds.core.task import Task
from skalds.ports.task_store import TaskQuery

#: The table and the pinned-node index as version 3 wrote them.
V3 = """
CREATE TABLE tasks (id TEXT PRIMARY KEY, class_name TEXT NOT NULL, status TEXT NOT NULL, executor TEXT,
    source TEXT, created INTEGER NOT NULL, updated INTEGER, doc TEXT NOT NULL);
CREATE INDEX tasks_pinned ON tasks (json_extract(doc, '$.pinnedNode'));
PRAGMA user_version = 3;
"""


def test_a_version_3_file_is_migrated_and_a_damaged_row_no_longer_blocks_writes(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    db = sqlite3.connect(path)
    db.executescript(V3)
    for task in (Task(id="pinned", class_name="C", pinned_node="edge-1"), Task(id="free", class_name="C")):
        doc = task.to_doc()
        db.execute(
            "INSERT INTO tasks VALUES (?, ?, ?, NULL, NULL, ?, ?, ?)",
            (
                task.id,
                task.class_name,
                doc["lifecycleStatus"],
                task.create_date_time,
                task.update_date_time,
                json.dumps(doc),
            ),
        )
    db.commit()
    db.close()

    store = SqliteTaskStore(path)
    assert [t.id for t in store.find(TaskQuery(pinned_node="edge-1")).items] == ["pinned"]
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute("UPDATE tasks SET doc = '{damaged' WHERE id = 'free'")  # refused under version 3
    db.commit()
    db.close()
    store = SqliteTaskStore(path)
    assert store.get("free").lifecycle_status.value == "Failed"
    assert [t.id for t in store.find(TaskQuery(pinned_node="edge-1")).items] == ["pinned"]
    store.close()


def test_what_the_monitor_and_the_dispatcher_read_on_timers_is_served_by_an_index(tmp_path: Path) -> None:
    from skalds.core.lifecycle import Action, plan
    from skalds.core.task import TaskLifecycleStatus

    store = SqliteTaskStore(tmp_path / "tasks.db")
    for i in range(30):
        task = store.create(Task(id=f"t{i}", class_name="C"))
        if i % 3:
            store.apply(plan(store.apply(plan(task, Action.ASSIGN, executor="n1")), Action.FINISH))
    sent: list[str] = []
    store._db.set_trace_callback(sent.append)
    store.find(TaskQuery(unplaced=True, limit=100_000))  # the monitor's sweep
    store.count_active_by_executor()  # the monitor's check
    store.active_usage()  # every dispatch round
    store.find(TaskQuery(lifecycle_status=[TaskLifecycleStatus.RUNNING], executor="n1"))  # preemption
    active = sorted({TaskLifecycleStatus.ASSIGNING, TaskLifecycleStatus.RUNNING, TaskLifecycleStatus.PAUSED})
    store.find(TaskQuery(lifecycle_status=active, executor="n1", limit=1_000_000))  # a node's reconcile sweep
    store.find(TaskQuery(unplaced=True, pinned_node="n1", limit=1_000_000))  # a node's own waiting tasks
    store._db.set_trace_callback(None)
    selects = [q for q in sent if q.lstrip().upper().startswith("SELECT")]
    assert len(selects) >= 6
    for query in selects:
        steps = [row[3] for row in store._db.execute(f"EXPLAIN QUERY PLAN {query}")]
        scans = [s for s in steps if s.startswith("SCAN tasks")]
        assert scans == [], f"{query}: {steps}"
    store.close()


def test_text_utf8_cannot_hold_is_stored_readable_and_the_rest_exactly(tmp_path: Path) -> None:
    # A worker's error message may carry a lone surrogate (bytes decoded with surrogateescape):
    # the record must stay readable, the character replaced, everything else as written.
    store = SqliteTaskStore(tmp_path / "tasks.db")
    try:
        store.create(Task(id="t", class_name="C", attachments={"name": "café 😀"}, error="no file b'\udcff'"))
        task = store.get("t")
        assert task.error == "no file b'?'" and task.attachments == {"name": "café 😀"}
        assert task.lifecycle_status.value == "Created", "not served as an unreadable record"
        row = store._db.execute("SELECT doc FROM tasks WHERE id = 't'").fetchone()[0]
        assert json.loads(row)["attachments"] == {"name": "café 😀"}
    finally:
        store.close()
