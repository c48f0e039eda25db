"""Task store port: the durable record of every task."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from skalds.core.lifecycle import Transition
from skalds.core.task import Task, TaskLifecycleStatus


@dataclass(frozen=True)
class TaskQuery:
    """Filters and paging for :meth:`TaskStore.find`. ``None`` means "any"; filters combine
    with AND.

    Attributes:
        lifecycle_status: any of these states.
        class_name: this class exactly.
        executor: assigned to this node.
        source: created by this source (``api``, ``yaml:<pool>``, ...).
        pinned_node: pinned to this node (an edge's own tasks).
        id_pattern, class_pattern, status_pattern: case-insensitive regular expressions the id,
            class name or state must contain a match of (the original's list filters).
        created_after, updated_after: epoch ms; only tasks created / last changed since
            (inclusive).
        created_before, updated_before: epoch ms; only tasks created / last changed
            earlier (exclusive).
        unplaced: only tasks that wait for a node (Created, or Paused without an executor).
        newest_first: order by creation time descending (default: oldest first).
        after: ``(create_date_time, id)`` of a task: only the tasks after it in the order
            (a keyset page, which holds while the tasks seen so far change state).
        offset, limit: the page.
    """

    lifecycle_status: Sequence[TaskLifecycleStatus] | None = None
    class_name: str | None = None
    executor: str | None = None
    source: str | None = None
    pinned_node: str | None = None
    id_pattern: str | None = None
    class_pattern: str | None = None
    status_pattern: str | None = None
    created_after: int | None = None
    updated_after: int | None = None
    created_before: int | None = None
    updated_before: int | None = None
    unplaced: bool = False
    newest_first: bool = False
    after: tuple[int, str] | None = None
    offset: int = 0
    limit: int = 100


@dataclass(frozen=True)
class TaskPage:
    """One page of tasks, and how many match in all."""

    items: list[Task] = field(default_factory=list)
    total: int = 0


def taken_ids(tasks: Sequence[Task], stored: set[str]) -> list[str]:
    """The ids of ``tasks`` that cannot be created: already ``stored``, or given twice
    (sorted, each once). For adapters reporting a refused :meth:`TaskStore.create_many`."""
    seen: set[str] = set()
    twice = set()
    for task in tasks:
        if task.id in seen:
            twice.add(task.id)
        seen.add(task.id)
    return sorted(twice | (seen & stored))


class TaskStore(abc.ABC):
    """Durable task records with conditional updates.

    All methods block until the backend answered (adapters bound that with their own
    timeouts) and are safe to call from any thread. Writes are durable when they return.
    A record that cannot be read back as a task (corrupted by hand, or by a bug) is returned
    as a ``Failed`` task whose error says why, never raised: one bad record must not stop
    a start or a listing.
    """

    @abc.abstractmethod
    def create(self, task: Task) -> Task:
        """Store a new task and return it as stored.

        Raises:
            TaskAlreadyExists: a task with this id exists (the stored one is left alone).
        """

    @abc.abstractmethod
    def create_many(self, tasks: Sequence[Task]) -> list[Task]:
        """Store new tasks, all or none, and return them as stored: one transaction where
        the backend has them. Where it has none (MongoDB without a replica set) the tasks
        written before a refused one are removed again before this raises, so a reader may
        glimpse them for that moment, never after.

        Raises:
            TaskAlreadyExists: an id is taken, or given twice; ``detail["task_ids"]`` lists
                each (sorted). Nothing of the batch is stored.
            BackendUnavailable: the backend failed; where it keeps no transactions, what was
                written is removed as far as it can still be reached.
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
        """Set ``transition.changes`` (and append ``transition.push`` items) atomically if
        every ``transition.expect`` field still holds its value; return the task as written.

        Raises:
            TaskNotFound: no such task.
            StaleWrite: the task exists but an expected value differs; nothing was written.
        """

    @abc.abstractmethod
    def delete(self, task_id: str, expect: dict[str, Any]) -> None:
        """Remove a task's record if every ``expect`` field still holds its value (as for
        :meth:`apply`).

        Raises:
            TaskNotFound: no such task.
            StaleWrite: an expected value differs; nothing was removed.
        """

    @abc.abstractmethod
    def count_by_status_and_class(self) -> dict[tuple[TaskLifecycleStatus, str], int]:
        """How many tasks are in each state, per class (pairs with none are left out)."""

    def count_by_status(self) -> dict[TaskLifecycleStatus, int]:
        """How many tasks are in each state (states with none are left out)."""
        counts: dict[TaskLifecycleStatus, int] = {}
        for (status, _), count in self.count_by_status_and_class().items():
            counts[status] = counts.get(status, 0) + count
        return counts

    @abc.abstractmethod
    def class_names(self) -> list[str]:
        """Every class name some stored task has, sorted."""

    @abc.abstractmethod
    def count_active_by_executor(self) -> dict[str, int]:
        """How many Assigning/Running/Paused tasks each executor holds (for dispatch)."""

    @abc.abstractmethod
    def active_usage(self) -> dict[str, dict[str, float]]:
        """What the Assigning/Running/Paused tasks of each executor hold, summed per name:
        ``slots`` and every named resource of their ``holds`` (a task that records no holds,
        placed by an older version, counts one slot). Executors holding nothing are absent.
        One indexed query: its cost grows with the placed tasks, never with the ended ones."""

    @abc.abstractmethod
    def touch_node(self, node_id: str, instance: str) -> None:
        """Record a sign of life of a node: change its mark (see :meth:`node_marks`). A node
        does this only while it cannot renew its lease in the live state, so that a monitor
        that still reads leases there does not take it for dead. Durable when it returns."""

    @abc.abstractmethod
    def node_marks(self) -> dict[str, str]:
        """Every node's current mark: an opaque value that differs after each
        :meth:`touch_node`. Nodes never touched are absent."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Idempotent."""
