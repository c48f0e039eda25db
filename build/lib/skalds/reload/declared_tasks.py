"""Keeps the tasks a worker pool declares in line with its YAML, at start and on every save.

A watchdog observer watches the directories of the pool file and the seed tasks file. A write
known to be complete (the file closed after writing, or a temp file renamed onto it, as many
editors save) reloads at once; other changes are debounced, so a half-written file is not
read. Reloads run one at a time and always read the file as it is now: the last save wins. A reload parses and
validates everything first; a bad file is rejected whole, logged, and shown by
``GET /api/system/config``, while the running tasks keep their last good parameters. The
files are never written.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from skalds.core.declared import Declared, DeclaredPlan, diff
from skalds.core.task import Task
from skalds.errors import SkaldsError, TaskNotFound, ValidationFailed
from skalds.ports.task_store import TaskQuery
from skalds.reload.pool import FileProblem, load_declarations
from skalds.service.requests import CreateTaskRequest
from skalds.service.tasks import TaskService

logger = logging.getLogger(__name__)


@dataclass
class ReloadResult:
    """The outcome of the last reload of a set of files."""

    files: list[str]
    ok: bool
    at: float
    applied: dict[str, list[str]] = field(default_factory=dict)
    error: FileProblem | None = None
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the API."""
        error = None
        if self.error is not None:
            error = {
                "file": self.error.file,
                "line": self.error.line,
                "field": self.error.field,
                "message": self.error.message,
                "text": str(self.error),
            }
        return {
            "files": self.files,
            "ok": self.ok,
            "at": self.at,
            "applied": self.applied,
            "error": error,
            "elapsedMs": round(self.elapsed_ms, 3),
        }


class DeclaredTasks:
    """The owner of one pool's declared tasks (in standalone, edge and controller modes)."""

    def __init__(
        self,
        service: TaskService,
        pool_file: Path | None,
        tasks_file: Path | None = None,
        *,
        source: str,
        pinned_node: str | None = None,
        debounce_s: float = 0.05,
        watch: bool = True,
    ) -> None:
        self.service = service
        self.pool_file = pool_file.resolve() if pool_file else None
        self.tasks_file = tasks_file.resolve() if tasks_file else None
        self.source = source
        self.pinned_node = pinned_node
        self.debounce_s = debounce_s
        self.watch = watch
        self.last: ReloadResult | None = None
        self._known: set[str] = set()  # ids this source declared at some point
        self._lock = threading.Lock()  # one reload at a time
        self._due: float | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._observer: Any = None
        self._thread = threading.Thread(target=self._debounce_loop, name="skalds-reload", daemon=True)

    @property
    def files(self) -> list[Path]:
        """The watched files."""
        return [p for p in (self.pool_file, self.tasks_file) if p is not None]

    def start(self) -> ReloadResult:
        """Adopt the tasks a previous run declared, reconcile once, then watch the files."""
        self._known = {t.id for t in self._stored_of_source()}
        result = self.reload()
        if self.watch and self.files:
            self._thread.start()
            observer = Observer()
            handler = _Handler(self, {str(p) for p in self.files})
            for directory in {p.parent for p in self.files}:
                observer.schedule(handler, str(directory), recursive=False)
            observer.start()
            self._observer = observer
        return result

    def stop(self) -> None:
        """Stop watching."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def changed(self, complete: bool = False) -> None:
        """A watched file changed: reload after the debounce delay (later changes push it
        back, so a burst of writes costs one reload), or at once when the write is known to
        be ``complete`` (the file was closed after writing, or renamed into place)."""
        with self._cond:
            self._due = time.monotonic() + (0.0 if complete else self.debounce_s)
            self._cond.notify()

    def _debounce_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (self._due is None or self._due > time.monotonic()):
                    self._cond.wait(None if self._due is None else max(0.0, self._due - time.monotonic()))
                if self._stopping:
                    return
                self._due = None
            try:
                self.reload()
            except Exception:
                logger.exception("reload of %s failed", [str(p) for p in self.files])

    def reload(self) -> ReloadResult:
        """Load, validate, diff and apply the files now."""
        started = time.perf_counter()
        files = [str(p) for p in self.files]
        with self._lock:
            missing = [p for p in self.files if not p.exists()]
            if missing:
                problem = FileProblem(str(missing[0]), "file is missing; running tasks keep their parameters")
                return self._record(ReloadResult(files, False, time.time(), error=problem), started)
            try:
                declared = load_declarations(self.pool_file, self.tasks_file, self.service.catalog)
                existing = self._existing(declared)
            except ValidationFailed as exc:
                problem = exc.detail.get("problem") or FileProblem(files[0] if files else "?", exc.message)
                return self._record(ReloadResult(files, False, time.time(), error=problem), started)
            plan = diff(declared, existing)
            self._apply(plan)
            self._known |= set(declared)
            return self._record(ReloadResult(files, True, time.time(), applied=plan.summary()), started)

    def _record(self, result: ReloadResult, started: float) -> ReloadResult:
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        self.last = result
        if result.error is not None:
            logger.error("rejected edit, running tasks untouched: %s", result.error)
        elif any(result.applied.values()):
            logger.info(
                "declared tasks reconciled in %.1f ms: %s",
                result.elapsed_ms,
                {k: v for k, v in result.applied.items() if v},
            )
        return result

    def _stored_of_source(self) -> list[Task]:
        return self.service.store.find(TaskQuery(source=self.source, limit=1_000_000)).items

    def _existing(self, declared: dict[str, Declared]) -> dict[str, Task]:
        existing: dict[str, Task] = {}
        for task_id in self._known | set(declared):
            try:
                task = self.service.store.get(task_id)
            except TaskNotFound:
                continue
            if task.source != self.source:
                raise ValidationFailed(
                    f"task id {task_id!r} is taken by a task from {task.source!r}",
                    problem=FileProblem(
                        str(self.files[0]),
                        f"task id {task_id!r} is taken by a task created by {task.source!r}",
                        field=task_id,
                    ),
                )
            existing[task_id] = task
        return existing

    def _apply(self, plan: DeclaredPlan) -> None:
        svc = self.service
        for d in plan.create:
            self._guard(
                d.id, "create", lambda d=d: svc.create(_request(d), source=self.source, pinned_node=self.pinned_node)
            )
        for d in plan.update:
            self._guard(d.id, "update", lambda d=d: svc.update_attachments(d.id, d.attachments, merge=False))
        for d in plan.replace:
            self._guard(d.id, "replace", lambda d=d: svc.replace(_request(d), pinned_node=self.pinned_node))
        for task_id in plan.cancel:
            self._guard(task_id, "cancel", lambda t=task_id: svc.cancel(t))

    @staticmethod
    def _guard(task_id: str, what: str, action: Any) -> None:
        # One task's race (e.g. it ended a moment ago) must not stop the rest of the edit.
        try:
            action()
        except SkaldsError as exc:
            logger.warning("declared task %s: %s skipped: %s", task_id, what, exc)


def _request(d: Declared) -> CreateTaskRequest:
    return CreateTaskRequest(
        id=d.id, class_name=d.class_name, attachments=d.attachments, priority=d.priority, name=d.name
    )


class _Handler(FileSystemEventHandler):
    def __init__(self, owner: DeclaredTasks, paths: set[str]) -> None:
        self.owner = owner
        self.paths = paths

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.event_type == "moved":
            if str(event.dest_path) in self.paths:  # a temp file renamed onto ours: complete
                self.owner.changed(complete=True)
            elif str(event.src_path) in self.paths:
                self.owner.changed()
        elif str(event.src_path) in self.paths:
            self.owner.changed(complete=event.event_type == "closed")
