"""Task store port: the durable record of every task."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field

from skalds.core.lifecycle import Transition
from skalds.core.task import Task, TaskLifecycleStatus


@dataclass(frozen=True)
class TaskQuery:
    """Filters and paging for :meth:`TaskStore.find`. ``None`` means "any"."""

    lifecycle_status: Sequence[TaskLifecycleStatus] | None = None
    class_name: str | None = None
    executor: str | None = None
    offset: int = 0
    limit: int = 100


@dataclass(frozen=True)
class TaskPage:
    """One page of tasks, oldest first, and how many match in all."""

    items: list[Task] = field(default_factory=list)
    total: int = 0


class TaskStore(abc.ABC):
    """Durable task records with conditional updates.

    All methods block until the backend answered (adapters bound that with their own
    timeouts) and are safe to call from any thread. Writes are durable when they return.
    """

    @abc.abstractmethod
    def create(self, task: Task) -> Task:
        """Store a new task and return it as stored.

        Raises:
            TaskAlreadyExists: a task with this id exists (the stored one is left alone).
        """

    @abc.abstractmethod
    def get(self, task_id: str) -> Task:
        """The task with this id.

        Raises:
            TaskNotFound: there is none.
        """

    @abc.abstractmethod
    def find(self, query: TaskQuery) -> TaskPage:
        """Tasks matching ``query``, ordered by creation time then id, paged server-side."""

    @abc.abstractmethod
    def apply(self, transition: Transition) -> Task:
        """Set ``transition.changes`` atomically if every ``transition.expect`` field still
        holds its value, and return the task as written.

        Raises:
            TaskNotFound: no such task.
            StaleWrite: the task exists but an expected value differs; nothing was written.
        """

    @abc.abstractmethod
    def count_active_by_executor(self) -> dict[str, int]:
        """How many Assigning/Running/Paused tasks each executor holds (for dispatch)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Idempotent."""
