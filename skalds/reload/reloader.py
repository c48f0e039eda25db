"""Keeps a process in line with its worker pool's YAML, at start and on every save.

What a save changes depends on the process: every process with a pool applies its
``classes:`` (a node imports new classes and tells its launcher to, so the next task of a new
class starts; a controller validates against them); the owner of the pool's declared tasks
(standalone, edge, controller) also creates, updates, replaces and cancels them.

A watchdog observer watches the directories of the pool file and the seed tasks file. A write
known to be complete (the file closed after writing, or a temp file renamed onto it, as many
editors save) reloads at once; other changes are debounced, so a half-written file is not read.
Reloads run one at a time and always read the file as it is now: the last save wins. A reload
validates everything first (YAML, schema, class imports, each task's attachments); a bad file is
rejected whole, logged with file, line and field, and shown by ``GET /api/system/config``,
while the running tasks and classes keep their last good state. The files are never written.

Which edit wins: the YAML declares a task's attachments; a ``PATCH`` through the API changes the
running task, and that change lasts until the task's entry in the YAML is edited (restarts do
not undo it): the last edit wins.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from skalds.core.declared import Declared, DeclaredPlan, diff
from skalds.core.task import Task, TaskMode, now_ms
from skalds.errors import SkaldsError, TaskNotFound, ValidationFailed
from skalds.ports.task_store import TaskQuery
from skalds.reload.pool import FileProblem, load_pool
from skalds.service.catalog import Catalog
from skalds.service.requests import CreateTaskRequest
from skalds.service.tasks import TaskService
from skalds.worker.registry import WorkerCatalog

logger = logging.getLogger(__name__)


@dataclass
class ReloadResult:
    """The outcome of the last reload of a set of files."""

    files: list[str]
    ok: bool
    at: int  # epoch ms
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


@dataclass(frozen=True)
class DeclaredOwner:
    """What the owner of the declared tasks needs: the service that writes them, the
    ``source`` their records carry and, for an edge, the node they are pinned to."""

    service: TaskService
    source: str
    pinned_node: str | None = None

    @property
    def mode(self) -> TaskMode:
        """The seed's mode of the declared tasks: an edge's own tasks are ``Active`` (it
        places and runs them itself); a controller's or a standalone's are ``Passive``."""
        return TaskMode.ACTIVE if self.pinned_node is not None else TaskMode.PASSIVE


class PoolReloader:
    """Applies one pool's files: classes always, declared tasks when ``owner`` is given."""

    def __init__(
        self,
        catalog: WorkerCatalog,
        pool_file: Path | None,
        tasks_file: Path | None = None,
        *,
        owner: DeclaredOwner | None = None,
        validation: Callable[[WorkerCatalog], Catalog] = lambda c: c,
        on_classes: Callable[[list[str], list[str]], None] | None = None,
        on_reloaded: Callable[[ReloadResult], None] | None = None,
        debounce_s: float = 0.05,
        watch: bool = True,
    ) -> None:
        self.catalog = catalog
        self.pool_file = pool_file.resolve() if pool_file else None
        self.tasks_file = tasks_file.resolve() if tasks_file else None
        self.owner = owner
        self.validation = validation
        self.on_classes = on_classes
        self.on_reloaded = on_reloaded
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

    @property
    def source(self) -> str | None:
        """The source of the declared tasks, when this process owns them."""
        return self.owner.source if self.owner else None

    def status(self) -> list[dict[str, Any]]:
        """Each watched file with the result of its last reload (what nodes advertise)."""
        last = self.last.to_dict() if self.last else None
        error = last["error"] if last else None
        return [
            {
                "path": str(p),
                "ok": not (error and error["file"] == str(p)),
                "error": error if error and error["file"] == str(p) else None,
                "at": last["at"] if last else None,
            }
            for p in self.files
        ]

    def start(self) -> ReloadResult:
        """Adopt the tasks a previous run declared, reconcile once, then watch the files."""
        if self.owner is not None:
            query = TaskQuery(source=self.owner.source, limit=1_000_000)
            self._known = {t.id for t in self.owner.service.store.find(query).items}
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
        """Load, validate and apply the files now."""
        started = time.perf_counter()
        files = [str(p) for p in self.files]
        with self._lock:
            missing = [p for p in self.files if not p.exists()]
            if missing:
                problem = FileProblem(str(missing[0]), "file is missing; running tasks keep their parameters")
                return self._record(ReloadResult(files, False, now_ms(), error=problem), started)
            try:
                view = load_pool(
                    self.pool_file, self.tasks_file, self.catalog, self.validation, with_tasks=self.owner is not None
                )
                existing = self._existing(view.tasks)
            except ValidationFailed as exc:
                problem = exc.detail.get("problem") or FileProblem(files[0] if files else "?", exc.message)
                return self._record(ReloadResult(files, False, now_ms(), error=problem), started)
            applied = self._apply_classes(view.catalog)
            if self.owner is not None:
                plan = diff(view.tasks, existing)
                self._apply(plan)
                self._known |= set(view.tasks)
                applied.update(plan.summary())
            return self._record(ReloadResult(files, True, now_ms(), applied=applied), started)

    def _apply_classes(self, catalog: WorkerCatalog) -> dict[str, list[str]]:
        if catalog is self.catalog:
            return {}
        changed, removed = self.catalog.adopt(catalog)
        if (changed or removed) and self.on_classes is not None:
            self.on_classes(changed, removed)
        return {"classesChanged": changed, "classesRemoved": removed} if changed or removed else {}

    def _record(self, result: ReloadResult, started: float) -> ReloadResult:
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        # The log comes first: whoever sees the result published may look for its line.
        if result.error is not None:
            logger.error("rejected edit, running tasks untouched: %s", result.error)
        else:
            if self.last is not None and not self.last.ok:
                logger.info("%s: good again; applied", ", ".join(result.files))
            if any(result.applied.values()):
                logger.info(
                    "pool reloaded in %.1f ms: %s", result.elapsed_ms, {k: v for k, v in result.applied.items() if v}
                )
        self.last = result
        if self.on_reloaded is not None:
            self.on_reloaded(result)
        return result

    def _existing(self, declared: dict[str, Declared]) -> dict[str, Task]:
        if self.owner is None:
            return {}
        existing: dict[str, Task] = {}
        for task_id in self._known | set(declared):
            try:
                task = self.owner.service.store.get(task_id)
            except TaskNotFound:
                continue
            if task.source != self.owner.source:
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
        if self.owner is None:
            return
        svc, source, pinned, mode = self.owner.service, self.owner.source, self.owner.pinned_node, self.owner.mode
        for d in plan.create:
            self._guard(
                d.id,
                "create",
                lambda d=d: svc.create(
                    _request(d), source=source, pinned_node=pinned, declared=True, mode=mode, actor=source
                ),
            )
        for d in plan.update:
            self._guard(
                d.id,
                "update",
                lambda d=d: svc.update_attachments(d.id, d.attachments, merge=False, declared=True, actor=source),
            )
        for d in plan.replace:
            self._guard(
                d.id,
                "replace",
                lambda d=d: svc.replace(_request(d), pinned_node=pinned, declared=True, mode=mode, actor=source),
            )
        for task_id in plan.cancel:
            self._guard(task_id, "cancel", lambda t=task_id: svc.cancel(t, actor=source))

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
    def __init__(self, owner: PoolReloader, paths: set[str]) -> None:
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
