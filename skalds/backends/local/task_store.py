"""SQLite task store: the embedded default, durable across restarts."""

from __future__ import annotations

import functools
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skalds.core.lifecycle import Transition, keep_newest
from skalds.core.requirements import SLOTS
from skalds.core.task import ACTIVE_STATES, Task, TaskLifecycleStatus, record_problem, unreadable_task
from skalds.errors import BackendUnavailable, StaleWrite, TaskAlreadyExists, TaskNotFound
from skalds.ports.task_store import TaskPage, TaskQuery, TaskStore, taken_ids

logger = logging.getLogger(__name__)

#: Bumped whenever the table changes; older files are migrated on open.
SCHEMA_VERSION = 6

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id          TEXT PRIMARY KEY,
    class_name  TEXT NOT NULL,
    status      TEXT NOT NULL,
    executor    TEXT,
    source      TEXT,
    created     INTEGER NOT NULL,  -- epoch milliseconds
    updated     INTEGER,           -- epoch milliseconds
    pinned      TEXT,              -- the node a task is bound to, if any
    holds       TEXT,              -- JSON: what a placed task holds on its executor
    doc         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status, executor);
CREATE INDEX IF NOT EXISTS tasks_executor ON tasks (executor);
CREATE INDEX IF NOT EXISTS tasks_class ON tasks (class_name);
CREATE INDEX IF NOT EXISTS tasks_source ON tasks (source);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created, id);
CREATE INDEX IF NOT EXISTS tasks_updated ON tasks (updated);
-- A node's own waiting tasks: the pin alone would visit every ended task pinned there.
CREATE INDEX IF NOT EXISTS tasks_pinned_state ON tasks (pinned, status, executor);
CREATE TABLE IF NOT EXISTS node_marks (
    id          TEXT PRIMARY KEY,
    instance    TEXT NOT NULL,
    seq         INTEGER NOT NULL
);
"""

# Written so the status index serves it: an OR across columns would scan the table.
_UNPLACED = "(status IN ('Created', 'Paused') AND (status = 'Created' OR executor IS NULL))"
_ACTIVE = [s.value for s in sorted(ACTIVE_STATES)]


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _regexp(pattern: str, value: str | None) -> bool:
    """SQLite's REGEXP: whether ``value`` contains a match of ``pattern`` (any case)."""
    return value is not None and _compiled(pattern).search(value) is not None


def _matches(task: Task, expect: dict[str, Any]) -> bool:
    return all(getattr(task, name) == value for name, value in expect.items())


class SqliteTaskStore(TaskStore):
    """Tasks in one SQLite file (WAL mode): the whole JSON document plus indexed columns
    for the queries the controller makes. One connection, serialized by a lock; SQLite
    itself is faster than the lock is contended at Skalds' write rates.

    A row whose document cannot be read as a task is served as a ``Failed`` task that says
    why (and logged once); a file that is not a SQLite database stops the open with one
    message naming it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.create_function("regexp", 2, _regexp, deterministic=True)
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"cannot open task store {self.path}: {exc}", backend="sqlite") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise sqlite3.DatabaseError("; ".join(problems))
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise BackendUnavailable(
                f"task store {self.path} is not a readable SQLite database ({exc}); "
                "restore it from a backup, or move it away to start with no tasks",
                backend="sqlite",
            ) from exc

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        exists = self._db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='tasks'").fetchone()
        if exists and version < 2:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(tasks)")}
            if "source" not in columns:
                self._db.execute("ALTER TABLE tasks ADD COLUMN source TEXT")
                self._db.execute("UPDATE tasks SET source = json_extract(doc, '$.source') WHERE json_valid(doc)")
            # Version 1 kept UNIX seconds.
            self._db.execute("UPDATE tasks SET created = CAST(created * 1000 AS INTEGER) WHERE created < 100000000000")
        if exists and version < 3:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(tasks)")}
            if "updated" not in columns:
                self._db.execute("ALTER TABLE tasks ADD COLUMN updated INTEGER")
                self._db.execute(
                    "UPDATE tasks SET updated = json_extract(doc, '$.updateDateTime') WHERE json_valid(doc)"
                )
        if exists and version < 4:
            # Version 3 indexed json_extract(doc, ...), which made every write of a row whose
            # document is damaged fail; the column keeps damage to the row itself.
            self._db.execute("DROP INDEX IF EXISTS tasks_pinned")
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(tasks)")}
            if "pinned" not in columns:
                self._db.execute("ALTER TABLE tasks ADD COLUMN pinned TEXT")
                self._db.execute("UPDATE tasks SET pinned = json_extract(doc, '$.pinnedNode') WHERE json_valid(doc)")
        if exists and version < 5:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(tasks)")}
            if "holds" not in columns:
                # Tasks placed before version 5 recorded no holds: each counts one slot.
                self._db.execute("ALTER TABLE tasks ADD COLUMN holds TEXT")
        if exists and version < 6:
            # Version 5 indexed the pin alone (see tasks_pinned_state); it is a prefix of the new one.
            self._db.execute("DROP INDEX IF EXISTS tasks_pinned_node")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _translated(self, operation: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"{operation} in task store {self.path} failed: {exc}", backend="sqlite") from exc

    @staticmethod
    def _row(task: Task) -> tuple[Any, ...]:
        try:
            # pydantic writes the JSON itself: a third of the time of dumping the document
            # form with json (0.11 vs 0.33 ms for a task with 200 history entries).
            doc = task.model_dump_json(by_alias=True)
        except ValueError:  # text UTF-8 cannot hold (a lone surrogate in a worker's error message)
            doc = json.dumps(task.to_doc(), ensure_ascii=False).encode("utf-8", "replace").decode()
        return (
            task.class_name,
            task.lifecycle_status.value,
            task.executor,
            task.source,
            task.create_date_time,
            task.update_date_time,
            task.pinned_node,
            json.dumps(task.holds) if task.holds else None,
            doc,
            task.id,
        )

    _INSERT = (
        "INSERT INTO tasks (class_name, status, executor, source, created, updated, pinned, holds, doc, id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def _write(self, task: Task, *, insert: bool) -> None:
        row = self._row(task)
        if insert:
            self._db.execute(self._INSERT, row)
        else:
            self._db.execute(
                "UPDATE tasks SET class_name=?, status=?, executor=?, source=?, created=?, updated=?, pinned=?, "
                "holds=?, doc=? WHERE id=?",
                row,
            )

    def _task(self, task_id: str, class_name: str | None, doc: str) -> Task:
        try:
            # pydantic parses the JSON itself: half the time of json.loads and then validating,
            # which counts once a task has a long history (every read of it, on hot paths too).
            return Task.model_validate_json(doc)
        except ValueError as exc:  # bad JSON, or a document pydantic refuses
            problem = record_problem(exc)
            if task_id not in self._reported:
                self._reported.add(task_id)
                logger.error(
                    "task %s: its record in %s cannot be read (%s); shown as Failed", task_id, self.path, problem
                )
            return unreadable_task(task_id, class_name, problem)

    def _read(self, task_id: str) -> Task:
        row = self._db.execute("SELECT class_name, doc FROM tasks WHERE id=?", (task_id,)).fetchone()
        if row is None:
            raise TaskNotFound(f"task {task_id!r} not found", task_id=task_id)
        return self._task(task_id, row[0], row[1])

    def create(self, task: Task) -> Task:
        with self._lock, self._translated(f"creating task {task.id!r}"):
            try:
                self._write(task, insert=True)
            except sqlite3.IntegrityError as exc:
                raise TaskAlreadyExists(f"task {task.id!r} already exists", task_id=task.id) from exc
        return task

    def create_many(self, tasks: Sequence[Task]) -> list[Task]:
        if not tasks:
            return []
        with self._lock, self._translated(f"creating {len(tasks)} tasks"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(self._INSERT, [self._row(t) for t in tasks])
            except sqlite3.IntegrityError as exc:
                self._db.execute("ROLLBACK")
                taken = taken_ids(tasks, self._stored_ids([t.id for t in tasks]))
                raise TaskAlreadyExists(f"task ids taken: {', '.join(taken)}", task_ids=taken) from exc
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return list(tasks)

    def _stored_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), 500):  # well under SQLite's limit of bound variables
            chunk = ids[i : i + 500]
            rows = self._db.execute(f"SELECT id FROM tasks WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            found.update(r[0] for r in rows)
        return found

    def get(self, task_id: str) -> Task:
        with self._lock, self._translated(f"reading task {task_id!r}"):
            return self._read(task_id)

    def find(self, query: TaskQuery) -> TaskPage:
        where, args = [], []
        if query.lifecycle_status:
            statuses = [getattr(s, "value", s) for s in query.lifecycle_status]
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args += statuses
        for column, value in (("class_name", query.class_name), ("executor", query.executor), ("source", query.source)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if query.pinned_node is not None:
            where.append("pinned = ?")
            args.append(query.pinned_node)
        if query.unplaced:
            where.append(_UNPLACED)
        patterns = (("id", query.id_pattern), ("class_name", query.class_pattern), ("status", query.status_pattern))
        for column, pattern in patterns:
            if pattern is not None:
                where.append(f"regexp(?, {column})")
                args.append(pattern)
        for column, since in (("created", query.created_after), ("updated", query.updated_after)):
            if since is not None:
                where.append(f"{column} >= ?")
                args.append(since)
        for column, until in (("created", query.created_before), ("updated", query.updated_before)):
            if until is not None:
                where.append(f"{column} < ?")
                args.append(until)
        if query.after is not None:
            where.append(
                "(created < ? OR (created = ? AND id < ?))"
                if query.newest_first
                else "(created > ? OR (created = ? AND id > ?))"
            )
            args += [query.after[0], query.after[0], query.after[1]]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        order = "created DESC, id DESC" if query.newest_first else "created, id"
        with self._lock, self._translated("finding tasks"):
            total = self._db.execute(f"SELECT COUNT(*) FROM tasks{clause}", args).fetchone()[0]
            rows = self._db.execute(
                f"SELECT id, class_name, doc FROM tasks{clause} ORDER BY {order} LIMIT ? OFFSET ?",
                [*args, query.limit, query.offset],
            ).fetchall()
            return TaskPage([self._task(r[0], r[1], r[2]) for r in rows], total)

    def apply(self, transition: Transition) -> Task:
        with self._lock, self._translated(f"updating task {transition.task_id!r}"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                task = self._read(transition.task_id)
                if not _matches(task, transition.expect):
                    raise StaleWrite(
                        f"task {task.id!r} changed meanwhile (now {task.lifecycle_status.value}, epoch {task.epoch})",
                        task_id=task.id,
                    )
                update = dict(transition.changes)
                for name, item in transition.push.items():
                    update[name] = keep_newest(name, [*getattr(task, name), item])
                task = task.model_copy(update=update)
                self._write(task, insert=False)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return task

    def delete(self, task_id: str, expect: dict[str, Any]) -> None:
        with self._lock, self._translated(f"deleting task {task_id!r}"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                task = self._read(task_id)
                if not _matches(task, expect):
                    raise StaleWrite(
                        f"task {task.id!r} changed meanwhile (now {task.lifecycle_status.value})", task_id=task.id
                    )
                self._db.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def count_by_status_and_class(self) -> dict[tuple[TaskLifecycleStatus, str], int]:
        with self._lock, self._translated("counting tasks by state"):
            rows = self._db.execute(
                "SELECT status, class_name, COUNT(*) FROM tasks GROUP BY status, class_name"
            ).fetchall()
        known = {s.value: s for s in TaskLifecycleStatus}
        return {(known[status], cls): count for status, cls, count in rows if status in known}

    def class_names(self) -> list[str]:
        with self._lock, self._translated("listing class names"):
            rows = self._db.execute(
                "SELECT DISTINCT class_name FROM tasks WHERE class_name != '' ORDER BY 1"
            ).fetchall()
        return [r[0] for r in rows]

    def count_active_by_executor(self) -> dict[str, int]:
        with self._lock, self._translated("counting active tasks"):
            rows = self._db.execute(
                f"SELECT executor, COUNT(*) FROM tasks WHERE status IN ({','.join('?' * len(_ACTIVE))}) "
                "AND executor IS NOT NULL GROUP BY executor",
                _ACTIVE,
            ).fetchall()
        return dict(rows)

    def active_usage(self) -> dict[str, dict[str, float]]:
        active = f"status IN ({','.join('?' * len(_ACTIVE))}) AND executor IS NOT NULL"
        with self._lock, self._translated("summing what placed tasks hold"):
            bare = self._db.execute(
                f"SELECT executor, COUNT(*) FROM tasks WHERE {active} AND holds IS NULL GROUP BY executor", _ACTIVE
            ).fetchall()
            held = self._db.execute(
                f"SELECT executor, h.key, SUM(h.value) FROM tasks, json_each(tasks.holds) AS h "
                f"WHERE {active} AND holds IS NOT NULL GROUP BY executor, h.key",
                _ACTIVE,
            ).fetchall()
        usage: dict[str, dict[str, float]] = {}
        for executor, count in bare:
            usage.setdefault(executor, {})[SLOTS] = float(count)
        for executor, name, amount in held:
            mine = usage.setdefault(executor, {})
            mine[name] = mine.get(name, 0.0) + float(amount)
        return usage

    def touch_node(self, node_id: str, instance: str) -> None:
        with self._lock, self._translated(f"touching node {node_id!r}"):
            self._db.execute(
                "INSERT INTO node_marks (id, instance, seq) VALUES (?, ?, 1) "
                "ON CONFLICT(id) DO UPDATE SET instance = excluded.instance, seq = seq + 1",
                (node_id, instance),
            )

    def node_marks(self) -> dict[str, str]:
        with self._lock, self._translated("reading node marks"):
            rows = self._db.execute("SELECT id, instance, seq FROM node_marks").fetchall()
        return {r[0]: f"{r[1]}:{r[2]}" for r in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
