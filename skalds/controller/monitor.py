"""Failure detection: tasks whose node lost its lease are placed again; tasks that wait for
a node are offered to the dispatcher again.

Runs every ``check_interval_s``. A node counts as lost when no lease of it is live; right after
the controller starts, and after the live state was unreachable, it waits one lease TTL
first, so nodes that are alive have had time to renew their lease.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from skalds.controller.dispatcher import Dispatcher, needs_placement
from skalds.core.events import ControlEvent, StatusEvent, TaskEvent, Topic
from skalds.core.lifecycle import Action, plan
from skalds.core.task import ACTIVE_STATES, Task, TaskError, TaskLifecycleStatus
from skalds.errors import SkaldsError, StaleWrite
from skalds.ports.event_bus import EventBus
from skalds.ports.live_state import LiveState
from skalds.ports.task_store import TaskQuery, TaskStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorSettings:
    """Timings and retry policy of the monitor (the ``monitor:`` config group)."""

    check_interval_s: float = 0.25
    lease_ttl_s: float = 2.5
    sweep_interval_s: float = 1.0
    max_retries: int = 3


class Monitor:
    """The controller's failure detector."""

    def __init__(
        self, settings: MonitorSettings, dispatcher: Dispatcher, bus: EventBus, store: TaskStore, live: LiveState
    ) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self.bus = bus
        self.store = store
        self.live = live
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._next_sweep = 0.0
        self._thread = threading.Thread(target=self._loop, name="skalds-monitor", daemon=True)

    def start(self) -> None:
        """Start checking."""
        self._started = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        """Stop checking."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.check_interval_s):
            try:
                self.check()
            except Exception as exc:
                # While the live state cannot be read, leases cannot be renewed either; when
                # it is back, give every node a full TTL to renew before calling it lost.
                self._started = time.monotonic()
                logger.warning("monitor check failed (%s); trying again next round", exc)

    def check(self) -> None:
        """One round: requeue the tasks of lost nodes; now and then re-offer tasks that wait
        for a node. Cheap when nothing is wrong: one lease read and one count per round."""
        live = {n.id for n in self.live.nodes()}
        if time.monotonic() - self._started >= self.settings.lease_ttl_s:
            for executor in self.store.count_active_by_executor():
                if executor not in live:
                    page = self.store.find(TaskQuery(list(ACTIVE_STATES), executor=executor, limit=1_000_000))
                    for task in page.items:
                        self._recover(task)
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.settings.sweep_interval_s
            self.sweep()

    def sweep(self) -> None:
        """Offer every task that waits for a node to the dispatcher again (an event was
        missed, or no node had a free slot when it was created)."""
        waiting = self.store.find(TaskQuery([TaskLifecycleStatus.CREATED, TaskLifecycleStatus.PAUSED], limit=1_000_000))
        unplaced = [t.id for t in waiting.items if needs_placement(t)]
        if unplaced:
            self.dispatcher.submit(unplaced)

    def _recover(self, task: Task) -> None:
        retry = task.attempt < self.settings.max_retries
        error = TaskError(message=f"node {task.executor} lost its lease")
        try:
            if retry:
                written = self.store.apply(plan(task, Action.REQUEUE, attempt=task.attempt + 1, error=error))
            else:
                written = self.store.apply(plan(task, Action.FAIL, error=error))
        except StaleWrite:
            return
        except SkaldsError:
            logger.exception("task %s: recovery not recorded", task.id)
            return
        # If the node is alive but cut off, this tells it to stop its stale copy.
        cancel = ControlEvent(task_id=task.id, action="cancel", epoch=task.epoch)
        self.bus.publish(Topic.TASK_CANCEL, task.id, cancel.to_value())
        if retry:
            logger.warning(
                "task %s: node %s lost; placing it again (retry %d/%d)",
                task.id,
                task.executor,
                written.attempt,
                self.settings.max_retries,
            )
            self.bus.publish(Topic.TASK_ASSIGN, task.id, TaskEvent(task_ids=[task.id]).to_value())
        else:
            logger.error("task %s: node %s lost and no retries left; Failed", task.id, task.executor)
            status = StatusEvent(
                task_id=task.id, status=written.lifecycle_status.value, epoch=written.epoch, at=time.time()
            )
            self.bus.publish(Topic.TASKWORKER_UPDATE, task.id, status.to_value())
