"""A node's two background loops besides its lease: the reconcile sweep and the heartbeat writer.

The **sweep** makes what runs here match what the store says, whatever events were lost: it
stops copies the store gives to someone else (fencing after a partition), starts assignments
whose event never came, places the tasks bound to this node that wait for it, delivers pause/resume and attachment versions the worker has not seen,
and hands back tasks the store shows running here although no copy runs. The **heartbeat
writer** puts every worker's last heartbeat (progress, message) into the live state. Each runs
on its own thread, so a slow store never delays heartbeats and neither delays the lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from skalds.core.lifecycle import Action, ended_attempt, plan
from skalds.core.records import Heartbeat
from skalds.core.task import ACTIVE_STATES, AttemptOutcome, Task, TaskLifecycleStatus, now_ms
from skalds.errors import BackendUnavailable, InvalidTransition, StaleWrite, TaskNotFound
from skalds.node.supervisor import Supervisor, WorkerHandle
from skalds.node.table import WorkerTable
from skalds.ports.live_state import LiveState
from skalds.ports.task_store import TaskQuery, TaskStore
from skalds.worker.protocol import Pause, Resume, Update

logger = logging.getLogger(__name__)
S = TaskLifecycleStatus


def offer_update(handle: WorkerHandle, version: int, attachments: dict[str, object]) -> None:
    """Send attachments ``version`` to a worker unless it was sent that one (or a newer) already."""
    with handle.send_lock:
        if version <= handle.sent_version:
            return
        handle.sent_version = version
    handle.send(Update(version, attachments))


class Loop:
    """A named thread that calls ``step`` every ``interval_s`` until stopped. A step that
    raises ``BackendUnavailable`` is retried quietly at the next round; anything else is a bug:
    logged with its traceback and counted."""

    def __init__(self, name: str, interval_s: float, step: Callable[[], None]) -> None:
        self.name = name
        self.interval_s = interval_s
        self.step = step
        self.errors = 0
        self._stop = threading.Event()
        self._unavailable = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.step()
                self._unavailable = 0
            except BackendUnavailable as exc:
                self._unavailable += 1
                if self._unavailable == 1 or self._unavailable % 30 == 0:
                    logger.warning("%s: backend unavailable (%d round(s)): %s", self.name, self._unavailable, exc)
            except Exception:
                self.errors += 1
                logger.exception("%s failed (%d error(s) so far); carrying on", self.name, self.errors)


class Reconciler:
    """The reconcile sweep of one node."""

    def __init__(
        self,
        node_id: str,
        store: TaskStore,
        supervisor: Supervisor,
        workers: WorkerTable,
        start_task: Callable[[str], None],
        hand_back: Callable[[Task, str], object],
        interval_s: float,
        waiting: Callable[[], list[Task]] = list,
    ) -> None:
        """``waiting`` lists the tasks bound to this node that wait for a node: each sweep
        places those whose event was missed (or that found the node full)."""
        self.node_id = node_id
        self.store = store
        self.supervisor = supervisor
        self.workers = workers
        self.start_task = start_task
        self.hand_back = hand_back
        self.interval_s = interval_s
        self.waiting = waiting
        self.loop = Loop("skalds-reconcile", interval_s, self.sweep)

    def sweep(self) -> None:
        """One pass, in one store query for this node's live tasks."""
        page = self.store.find(
            TaskQuery(lifecycle_status=sorted(ACTIVE_STATES), executor=self.node_id, limit=1_000_000)
        )
        owned = {t.id: t for t in page.items}
        workers = self.workers.snapshot()
        for task_id, handle in workers.items():
            if not handle.started or handle.stop_reason is not None or handle.exited:
                continue
            task = owned.get(task_id)
            if task is None or task.epoch != handle.epoch:
                if handle.pinned and self._awaiting_adoption(task_id):
                    continue  # an edge's own task, being placed back here: keep the copy
                logger.warning(
                    "task %s: fenced out (epoch %d is no longer %s's); stopping it", task_id, handle.epoch, self.node_id
                )
                self.supervisor.stop(handle, "fenced: the task moved on")
                continue
            self._converge(handle, task)
        # Only assignments older than one sweep: younger ones are still on their way (a
        # burst of events can queue for a while), and acting on them here would only race.
        settled = now_ms() - int(self.interval_s * 1000)
        for task in owned.values():
            copy = workers.get(task.id)
            if (copy is not None and copy.epoch >= task.epoch) or task.update_date_time >= settled:
                continue
            if task.lifecycle_status is S.ASSIGNING or (task.lifecycle_status is S.PAUSED and task.started_at is None):
                logger.warning(
                    "task %s: assigned to %s at epoch %d but not running; starting it",
                    task.id,
                    self.node_id,
                    task.epoch,
                )
                self.start_task(task.id)
            else:
                self.hand_back(task, f"shown {task.lifecycle_status.value} on {self.node_id}, where no copy of it runs")
        self.place_waiting(settled)

    def place_waiting(self, settled: int | None = None) -> None:
        """Place the tasks bound to this node that wait for a node (changed before
        ``settled``, epoch ms, when given: younger ones still have their event on its way)."""
        for task in self.waiting():
            if settled is None or task.update_date_time < settled:
                self.start_task(task.id)

    def _converge(self, handle: WorkerHandle, task: Task) -> None:
        if task.lifecycle_status is S.PAUSED and not handle.paused:
            handle.paused = handle.send(Pause())
        elif task.lifecycle_status is S.RUNNING and handle.paused:
            handle.send(Resume())
            handle.paused = False
        if task.desired_version > handle.sent_version:
            offer_update(handle, task.desired_version, task.attachments_dict())

    def _awaiting_adoption(self, task_id: str) -> bool:
        """Whether an edge's own task is on its way back to this node: waiting for it, placed
        on it, or already adopted at a newer epoch (the sweep's query may have run between
        the adoption's write and the copy taking the new epoch)."""
        try:
            task = self.store.get(task_id)
        except TaskNotFound:
            return False
        if task.pinned_node != self.node_id:
            return False
        return task.lifecycle_status in (S.CREATED, S.PAUSED, S.ASSIGNING) or (
            task.executor == self.node_id and task.lifecycle_status in ACTIVE_STATES
        )


def hand_back(store: TaskStore, task: Task, reason: str) -> Task | None:
    """Give ``task`` back for placement (Created, or Paused without an executor) at a new
    epoch, consuming no retry. Returns the task as written, or None if it moved on."""
    try:
        return store.apply(plan(task, Action.REQUEUE, ended=ended_attempt(task, AttemptOutcome.HANDED_BACK, reason)))
    except (StaleWrite, InvalidTransition, TaskNotFound):
        return None


class HeartbeatWriter:
    """Puts the node's worker heartbeats into the live state, in one call per interval."""

    def __init__(self, node_id: str, live: LiveState, supervisor: Supervisor, interval_s: float, ttl_s: float) -> None:
        self.node_id = node_id
        self.live = live
        self.supervisor = supervisor
        self.ttl_s = ttl_s
        self.loop = Loop("skalds-heartbeats", interval_s, self.write)

    def write(self) -> None:
        """Put one heartbeat per started worker."""
        now_mono, now = time.monotonic(), now_ms()
        beats = [
            Heartbeat(
                h.task_id, self.node_id, h.epoch, now - int((now_mono - h.last_seen) * 1000), h.progress, h.message
            )
            for h in self.supervisor.handles()
            if h.started and not h.exited
        ]
        if beats:
            self.live.put_heartbeats(beats, self.ttl_s)
