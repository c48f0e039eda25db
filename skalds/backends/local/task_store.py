"""SQLite task store: the embedded default, durable across restarts."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from skalds.core.lifecycle import Transition
from skalds.core.task import ACTIVE_STATES, Task
from skalds.errors import BackendUnavailable, StaleWrite, TaskAlreadyExists, TaskNotFound
from skalds.ports.task_store import TaskPage, TaskQuery, TaskStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id          TEXT PRIMARY KEY,
    class_name  TEXT NOT NULL,
    status      TEXT NOT NULL,
    executor    TEXT,
    created     REAL NOT NULL,  -- UNIX seconds: orders correctly, unlike ISO strings of mixed precision
    doc         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status);
CREATE INDEX IF NOT EXISTS tasks_executor ON tasks (executor);
CREATE INDEX IF NOT EXISTS tasks_class ON tasks (class_name);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created, id);
"""


def _matches(task: Task, expect: dict[str, Any]) -> bool:
    return all(getattr(task, name) == value for name, value in expect.items())


class SqliteTaskStore(TaskStore):
    """Tasks in one SQLite file (WAL mode): the whole JSON document plus indexed columns
    for the queries the controller makes. One connection, serialized by a lock; SQLite
    itself is faster than the lock is contended at Skalds' write rates."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"cannot open task store {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def _write(self, task: Task, *, insert: bool) -> None:
        doc = task.to_doc()
        created = task.create_date_time.timestamp()
        row = (task.class_name, doc["lifecycleStatus"], task.executor, created, json.dumps(doc), task.id)
        if insert:
            self._db.execute(
                "INSERT INTO tasks (class_name, status, executor, created, doc, id) VALUES (?, ?, ?, ?, ?, ?)", row
            )
        else:
            self._db.execute("UPDATE tasks SET class_name=?, status=?, executor=?, created=?, doc=? WHERE id=?", row)

    def _read(self, task_id: str) -> Task:
        row = self._db.execute("SELECT doc FROM tasks WHERE id=?", (task_id,)).fetchone()
        if row is None:
            raise TaskNotFound(f"task {task_id!r} not found", task_id=task_id)
        return Task.from_doc(json.loads(row[0]))

    def create(self, task: Task) -> Task:
        with self._lock:
            try:
                self._write(task, insert=True)
            except sqlite3.IntegrityError as exc:
                raise TaskAlreadyExists(f"task {task.id!r} already exists", task_id=task.id) from exc
        return task

    def get(self, task_id: str) -> Task:
        with self._lock:
            return self._read(task_id)

    def find(self, query: TaskQuery) -> TaskPage:
        where, args = [], []
        if query.lifecycle_status:
            statuses = [getattr(s, "value", s) for s in query.lifecycle_status]
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args += statuses
        if query.class_name is not None:
            where.append("class_name = ?")
            args.append(query.class_name)
        if query.executor is not None:
            where.append("executor = ?")
            args.append(query.executor)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM tasks{clause}", args).fetchone()[0]
            rows = self._db.execute(
                f"SELECT doc FROM tasks{clause} ORDER BY created, id LIMIT ? OFFSET ?",
                [*args, query.limit, query.offset],
            ).fetchall()
        return TaskPage([Task.from_doc(json.loads(r[0])) for r in rows], total)

    def apply(self, transition: Transition) -> Task:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                task = self._read(transition.task_id)
                if not _matches(task, transition.expect):
                    raise StaleWrite(
                        f"task {task.id!r} changed meanwhile (now {task.lifecycle_status.value}, epoch {task.epoch})",
                        task_id=task.id,
                    )
                task = task.model_copy(update=transition.changes)
                self._write(task, insert=False)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return task

    def count_active_by_executor(self) -> dict[str, int]:
        statuses = [s.value for s in ACTIVE_STATES]
        with self._lock:
            rows = self._db.execute(
                f"SELECT executor, COUNT(*) FROM tasks WHERE executor IS NOT NULL "
                f"AND status IN ({','.join('?' * len(statuses))}) GROUP BY executor",
                statuses,
            ).fetchall()
        return dict(rows)

    def close(self) -> None:
        with self._lock:
            self._db.close()
