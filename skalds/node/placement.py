"""A node places the tasks bound to it itself, so they run with no controller at all.

A task is bound to a node by its pin (an edge's declared tasks) or, while it was never placed,
by an executor a script set on it (the seed's ``TaskRepository.update_executor`` before its
``task.assign`` event); see :func:`~skalds.core.dispatch.bound_node`. When the node sees such a
task wait for a node (on a ``task.assign`` event, in its reconcile sweep, at start) it writes
the same conditional ASSIGN the dispatcher would, so when a controller runs too, exactly one of
the two places it; then it announces the placement as the dispatcher does and starts it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from skalds.core.dispatch import assignment, bound_node, needs_placement
from skalds.core.events import TaskEvent, Topic
from skalds.core.requirements import NO_SPEC, ClassSpec, needs
from skalds.core.task import Task, TaskLifecycleStatus, now_ms
from skalds.errors import BackendUnavailable, InvalidTransition, StaleWrite, TaskNotFound
from skalds.ports.event_bus import EventBus
from skalds.ports.task_store import TaskQuery, TaskStore

logger = logging.getLogger(__name__)


class SelfPlacement:
    """Places the tasks bound to one node on that node."""

    def __init__(
        self,
        node_id: str,
        store: TaskStore,
        bus: EventBus,
        capacity: int,
        running: Callable[[], int],
        start_later: Callable[[str], None],
        lease_held: Callable[[], bool] = lambda: True,
        spec: Callable[[str], ClassSpec] = lambda name: NO_SPEC,
    ) -> None:
        """``running`` counts the workers the node holds now; ``start_later(task_id)`` is
        called (on a timer thread) when a task held back by its retry backoff is due;
        ``lease_held`` says whether the node's lease is fresh now; ``spec(className)`` what a
        task of a class needs here (recorded as what the task holds)."""
        self.node_id = node_id
        self.store = store
        self.bus = bus
        self.capacity = capacity
        self.running = running
        self.start_later = start_later
        self.lease_held = lease_held
        self.spec = spec
        self._timers: dict[str, threading.Timer] = {}
        self._lock = threading.Lock()
        self._closed = False

    def claim(self, task: Task) -> Task | None:
        """Place ``task`` on this node if it waits for a node and is bound to this one.

        Returns the task as written (Assigning, or Paused, on this node at a new epoch), or
        None: not bound here, held back by its retry backoff (a timer offers it again when
        due), no free slot or no fresh lease (the reconcile sweep offers it again), or someone
        else placed, cancelled or changed it first.
        """
        if not needs_placement(task) or bound_node(task) != self.node_id:
            return None
        if not self.lease_held():
            # As the dispatcher places only on live nodes: a node waking from a freeze must
            # not take back what the monitor just requeued before its lease is renewed, or
            # the monitor would take it again.
            logger.info("task %s waits: node %s has no fresh lease now", task.id, self.node_id)
            return None
        if task.retry_at is not None and task.retry_at > now_ms():
            self._hold(task.id, (task.retry_at - now_ms()) / 1000)
            return None
        if self.running() >= self.capacity:
            logger.warning(
                "task %s waits: its node %s runs %d task(s), its capacity", task.id, self.node_id, self.capacity
            )
            return None
        holds = needs(task.resources, task.required_labels, task.preferred_labels, self.spec(task.class_name)).resources
        try:
            written = self.store.apply(assignment(task, self.node_id, holds=holds, reason="its own node placed it"))
        except (StaleWrite, InvalidTransition, TaskNotFound):
            return None  # placed by the dispatcher, or cancelled, meanwhile
        why = "pinned here" if task.pinned_node == self.node_id else "its executor was set to this node"
        logger.info("task %s placed on its own node %s epoch=%d (%s)", task.id, self.node_id, written.epoch, why)
        try:
            event = TaskEvent(task_ids=[task.id], executor=self.node_id, epoch=written.epoch)
            self.bus.publish(Topic.TASK_ASSIGN, task.id, event.to_value())
        except BackendUnavailable as exc:
            logger.debug("placement of task %s not announced: %s", task.id, exc)  # the store has it
        return written

    def waiting(self) -> list[Task]:
        """The tasks bound to this node that wait for a node: pinned here, or Created with
        this node as their executor (two indexed queries)."""
        pinned = self.store.find(TaskQuery(unplaced=True, pinned_node=self.node_id, limit=1_000_000)).items
        preset = self.store.find(
            TaskQuery(lifecycle_status=[TaskLifecycleStatus.CREATED], executor=self.node_id, limit=1_000_000)
        ).items
        found = {t.id: t for t in [*pinned, *preset]}
        return [t for t in found.values() if bound_node(t) == self.node_id]

    def _hold(self, task_id: str, delay_s: float) -> None:
        with self._lock:
            if self._closed or task_id in self._timers:
                return
            timer = threading.Timer(max(0.0, delay_s), self._due, [task_id])
            timer.daemon = True
            timer.name = f"skalds-retry-{task_id}"
            self._timers[task_id] = timer
            timer.start()
        logger.info("task %s: retry on node %s in %.1fs", task_id, self.node_id, delay_s)

    def _due(self, task_id: str) -> None:
        with self._lock:
            self._timers.pop(task_id, None)
            if self._closed:
                return
        try:
            self.start_later(task_id)
        except BackendUnavailable as exc:
            logger.warning("task %s: retry not started now (%s); the reconcile sweep will", task_id, exc)
        except Exception:
            logger.exception("task %s: retry not started; the reconcile sweep will", task_id)

    def close(self) -> None:
        """Cancel the timers of held tasks (the tasks stay waiting in the store)."""
        with self._lock:
            self._closed = True
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
