"""The workers a node runs now, by task id: the one copy of each task this node owns."""

from __future__ import annotations

import threading

from skalds.node.supervisor import WorkerHandle


class WorkerTable:
    """Thread-safe map of task id -> the handle of this node's copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_task: dict[str, WorkerHandle] = {}

    def get(self, task_id: str) -> WorkerHandle | None:
        """This node's copy of a task, if any."""
        with self._lock:
            return self._by_task.get(task_id)

    def put(self, handle: WorkerHandle) -> None:
        """Make ``handle`` this node's copy of its task."""
        with self._lock:
            self._by_task[handle.task_id] = handle

    def forget(self, handle: WorkerHandle) -> None:
        """Drop ``handle`` if it is still the task's current copy."""
        with self._lock:
            if self._by_task.get(handle.task_id) is handle:
                del self._by_task[handle.task_id]

    def snapshot(self) -> dict[str, WorkerHandle]:
        """A copy of the map."""
        with self._lock:
            return dict(self._by_task)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_task)
