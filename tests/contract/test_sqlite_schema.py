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
