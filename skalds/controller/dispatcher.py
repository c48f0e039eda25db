"""Places tasks on nodes as soon as they are created or requeued.

Event-driven: every ``task.assign`` event without an executor wakes the dispatch thread,
which drains all pending task ids at once, reads node leases and loads once for the batch,
and writes one conditional ASSIGN per task. A burst of N creations therefore costs one lease
read and one load query, not N. A task backing off after a lost run (``retryAt``) is held
back on a timer and placed when its time comes. A task bound to one node (an edge's declared
task, or one whose executor a script set before announcing it) goes only to that node, and
waits while that node holds no lease.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Iterable

from skalds.core.dispatch import Candidate, DispatchPolicy, assignment, needs_placement
from skalds.core.events import TaskEvent, Topic
from skalds.core.task import Task, now_ms
from skalds.errors import BackendUnavailable, SkaldsError, StaleWrite, TaskNotFound
from skalds.ports.event_bus import Event, EventBus, Subscription
from skalds.ports.live_state import LiveState
from skalds.ports.task_store import TaskStore

logger = logging.getLogger(__name__)


class Dispatcher:
    """The dispatch loop of the controller."""

    def __init__(self, policy: DispatchPolicy, bus: EventBus, store: TaskStore, live: LiveState) -> None:
        self.policy = policy
        self.bus = bus
        self.store = store
        self.live = live
        self.errors = 0
        self._pending: dict[str, None] = {}  # ordered set of task ids
        self._delayed: list[tuple[int, str]] = []  # heap of (retry_at ms, task id)
        self._held: set[str] = set()  # task ids in the heap
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
        if self._thread.is_alive():
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
                while not self._stopping and not self._pending and not self._due():
                    wait = None if not self._delayed else max(0.0, (self._delayed[0][0] - now_ms()) / 1000)
                    self._cond.wait(wait)
                if self._stopping:
                    return
                now = now_ms()
                while self._delayed and self._delayed[0][0] <= now:
                    task_id = heapq.heappop(self._delayed)[1]
                    self._held.discard(task_id)
                    self._pending[task_id] = None
                batch, self._pending = list(self._pending), {}
            try:
                self.dispatch(batch)
            except BackendUnavailable as exc:
                logger.warning("dispatch of %d task(s) deferred, a backend is unavailable: %s", len(batch), exc)
            except Exception:
                self.errors += 1
                logger.exception("dispatch of %d task(s) failed; the monitor's sweep offers them again", len(batch))

    def _due(self) -> bool:
        return bool(self._delayed) and self._delayed[0][0] <= now_ms()

    def _hold(self, task: Task) -> None:
        with self._cond:
            if task.id not in self._held:
                self._held.add(task.id)
                heapq.heappush(self._delayed, (task.retry_at or 0, task.id))
                self._cond.notify()

    def dispatch(self, task_ids: list[str]) -> list[str]:
        """Place what can be placed now; return the ids left waiting for a node."""
        tasks = []
        now = now_ms()
        for task_id in task_ids:
            try:
                task = self.store.get(task_id)
            except TaskNotFound:
                continue
            if not needs_placement(task):
                continue
            if task.retry_at is not None and task.retry_at > now:
                self._hold(task)
                continue
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
            written = self.store.apply(
                assignment(task, node_id, actor="dispatcher", reason=f"{self.policy.name} chose {node_id}")
            )
        except StaleWrite:
            return False  # someone else moved it (cancelled, or placed by a peer)
        except BackendUnavailable:
            raise
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
