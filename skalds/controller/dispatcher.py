"""Places tasks on nodes as soon as they are created or requeued.

Event-driven: every ``task.assign`` event without an executor wakes the dispatch thread,
which drains all pending task ids at once, reads node leases and loads once for the batch,
and writes one conditional ASSIGN per task. A burst of N creations therefore costs one lease
read and one load query, not N.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from skalds.core.dispatch import Candidate, DispatchPolicy
from skalds.core.events import TaskEvent, Topic
from skalds.core.lifecycle import Action, plan
from skalds.core.task import Task, TaskLifecycleStatus
from skalds.errors import SkaldsError, StaleWrite, TaskNotFound
from skalds.ports.event_bus import Event, EventBus, Subscription
from skalds.ports.live_state import LiveState
from skalds.ports.task_store import TaskStore

logger = logging.getLogger(__name__)
S = TaskLifecycleStatus


def needs_placement(task: Task) -> bool:
    """Created tasks, and paused ones that hold no worker anywhere, wait for a node."""
    return task.lifecycle_status is S.CREATED or (task.lifecycle_status is S.PAUSED and task.executor is None)


class Dispatcher:
    """The dispatch loop of the controller."""

    def __init__(self, policy: DispatchPolicy, bus: EventBus, store: TaskStore, live: LiveState) -> None:
        self.policy = policy
        self.bus = bus
        self.store = store
        self.live = live
        self._pending: dict[str, None] = {}  # ordered set of task ids
        self._cond = threading.Condition()
        self._stopping = False
        self._subscription: Subscription | None = None
        self._thread = threading.Thread(target=self._loop, name="skalds-dispatcher", daemon=True)

    def start(self) -> None:
        """Subscribe to ``task.assign`` and start the dispatch thread."""
        self._subscription = self.bus.subscribe([str(Topic.TASK_ASSIGN)], "skalds-dispatcher", self._on_event)
        self._thread.start()

    def stop(self) -> None:
        """Stop consuming and let the thread end."""
        if self._subscription is not None:
            self._subscription.close()
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def submit(self, task_ids: Iterable[str]) -> None:
        """Ask for these tasks to be placed (idempotent: placed tasks are skipped)."""
        with self._cond:
            for task_id in task_ids:
                self._pending[task_id] = None
            self._cond.notify()

    def _on_event(self, event: Event) -> None:
        assign = TaskEvent.model_validate(event.value)
        if assign.executor is None:  # an executor's name means "placed": that one is for nodes
            self.submit(assign.task_ids)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                batch, self._pending = list(self._pending), {}
            try:
                self.dispatch(batch)
            except Exception:
                logger.exception("dispatch of %d tasks failed; they stay pending for the monitor's sweep", len(batch))

    def dispatch(self, task_ids: list[str]) -> list[str]:
        """Place what can be placed now; return the ids left waiting for a node."""
        tasks = []
        for task_id in task_ids:
            try:
                task = self.store.get(task_id)
            except TaskNotFound:
                continue
            if needs_placement(task):
                tasks.append(task)
        if not tasks:
            return []
        loads = self.store.count_active_by_executor()
        candidates = {n.id: Candidate(n, loads.get(n.id, 0)) for n in self.live.nodes()}
        waiting = []
        tasks.sort(key=lambda t: (-t.priority, t.create_date_time))
        for task in tasks:
            node_id = self.policy.choose(task, list(candidates.values()))
            if node_id is None:
                waiting.append(task.id)
                continue
            if self._assign(task, node_id):
                c = candidates[node_id]
                candidates[node_id] = Candidate(c.node, c.load + 1)
        if waiting:
            logger.info("%d task(s) wait for a node with a free slot for their class", len(waiting))
        return waiting

    def _assign(self, task: Task, node_id: str) -> bool:
        started = time.perf_counter()
        try:
            written = self.store.apply(plan(task, Action.ASSIGN, executor=node_id))
        except StaleWrite:
            return False  # someone else moved it (cancelled, or placed by a peer)
        except SkaldsError:
            logger.exception("task %s: assignment not recorded", task.id)
            return False
        event = TaskEvent(task_ids=[task.id], executor=node_id, epoch=written.epoch)
        self.bus.publish(Topic.TASK_ASSIGN, task.id, event.to_value())
        logger.info(
            "task %s assigned to %s epoch=%d (%s) in %.1f ms",
            task.id,
            node_id,
            written.epoch,
            self.policy.name,
            (time.perf_counter() - started) * 1000,
        )
        return True
