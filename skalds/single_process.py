"""``skald_mode="single_process"``: one task in this process, the seed's shape for one
Kubernetes Pod per task (a Deployment when the task is persistent, a Job when it is not).

The first entry of the seed's tasks file (``TaskWorkers``) is built from the classes the
script registered, initialized with its attachments and run in the foreground, as
``worker.start()`` runs a worker alone: no controller, no node, no backends. The exit code
says how it went: 0 when the main handler returned, 1 when a hook raised, ``128 + signal``
when SIGTERM or SIGINT stopped it (so a Kubernetes Job runs an evicted task again).

SIGTERM or SIGINT sets the worker's stop flag (``should_stop()``, ``sleep()`` return at once);
a worker still running ``grace_s`` later gets ``TaskStopped`` raised in its main thread (its
release handler still runs), as a node's cancel does.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from skalds.errors import ConfigError
from skalds.reload.pool import TaskWorkersFile, declared_tasks, parse_file
from skalds.worker.baseclass import BaseTaskWorker, TaskStopped
from skalds.worker.protocol import StopCause
from skalds.worker.registry import WorkerCatalog

logger = logging.getLogger(__name__)

#: Exit code of a task whose hook raised.
EXIT_FAILED = 1


@dataclass(frozen=True)
class SingleTask:
    """The task a single_process Skald runs: the first entry of its tasks file."""

    id: str
    class_name: str
    attachments: BaseModel


def first_task(tasks_file: Path, catalog: WorkerCatalog) -> SingleTask:
    """The first task the seed-format file declares, its attachments validated by its
    class. The other entries are not read: their classes need not be registered here.

    Raises:
        ConfigError: the file declares no task.
        ValidationFailed: the file is bad, its class unknown, or its attachments do not fit
            (the message names the file, line and field).
    """
    data, reader = parse_file(tasks_file, TaskWorkersFile, "TaskWorkers")
    entries = data.get("TaskWorkers") or {}
    if not entries:
        raise ConfigError(f"yaml_file: {tasks_file} declares no task under TaskWorkers", key="yaml_file")
    task_id = next(iter(entries))
    first = {"TaskWorkers": {task_id: entries[task_id]}}
    declared = declared_tasks(tasks_file, first, reader, catalog, "TaskWorkers")[str(task_id)]
    model = catalog.get(declared.class_name).data_model()
    return SingleTask(declared.id, declared.class_name, model.model_validate(declared.attachments))


class _Stopper:
    """SIGTERM/SIGINT: the stop flag now, ``TaskStopped`` in the main thread after the grace
    period (by SIGALRM, whose handler runs on the main thread)."""

    def __init__(self, worker: BaseTaskWorker[Any], grace_s: float) -> None:
        self.worker = worker
        self.grace_s = grace_s
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def restore(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGALRM:
            raise TaskStopped(f"still running {self.grace_s:g}s after {signal.Signals(self.signum or signum).name}")
        if self.signum is not None:
            raise TaskStopped(f"{signal.Signals(signum).name} again")  # asked twice: stop now
        self.signum = signum
        logger.info("task %s: %s; stopping", self.worker.task_id, signal.Signals(signum).name)
        self.worker._control.request_stop(StopCause.REQUESTED)
        signal.setitimer(signal.ITIMER_REAL, max(self.grace_s, 0.001))


def run_single(task: SingleTask, catalog: WorkerCatalog, node_id: str, grace_s: float = 3.0) -> int:
    """Run ``task`` (see :func:`first_task`) in this process until it ends; return the exit
    code (0 finished, 1 failed, 128 + the signal that stopped it). Call from the main thread."""
    worker = catalog.get(task.class_name)()
    worker.task_id, worker.node_id = task.id, node_id
    worker.initialize(task.attachments)
    stopper = _Stopper(worker, grace_s)
    stopper.install()
    started = time.monotonic()
    logger.info("task %s (%s) running in this process, node %s", task.id, task.class_name, node_id)
    try:
        worker.run_lifecycle()
        outcome, code = "finished", 0
    except TaskStopped:
        outcome, code = "stopped", 0
    except Exception:
        logger.exception("task %s failed", task.id)
        outcome, code = "failed", EXIT_FAILED
    finally:
        stopper.restore()
    if stopper.signum is not None and code == 0:
        outcome, code = f"stopped by {signal.Signals(stopper.signum).name}", 128 + stopper.signum
    logger.info("task %s %s in %.1fs (exit %d)", task.id, outcome, time.monotonic() - started, code)
    return code
