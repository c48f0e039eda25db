"""The node agent: turns assignments into worker processes and reports what they do.

It consumes the node topics in its own group (its id), starts tasks assigned to it at their
epoch, forwards updates and pause/resume/cancel to the workers, writes the executor's state
transitions (fenced by epoch), renews the node lease and batches worker heartbeats into the
live state: one bus consumer and one live-state writer per node, whatever the task count.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from skalds.core.events import NODE_TOPICS, ControlEvent, StatusEvent, TaskEvent, Topic, UpdateEvent
from skalds.core.lifecycle import Action, apply_fenced
from skalds.core.task import ACTIVE_STATES, TaskError, TaskLifecycleStatus, utc_now
from skalds.errors import BackendUnavailable, SkaldsError, TaskNotFound
from skalds.node.outbox import Outbox
from skalds.node.supervisor import Supervisor, SupervisorSettings, WorkerExit, WorkerHandle
from skalds.ports.event_bus import Event, EventBus, Subscription
from skalds.ports.live_state import Heartbeat, LiveState, NodeInfo
from skalds.ports.task_store import TaskQuery, TaskStore
from skalds.worker.registry import WorkerCatalog

logger = logging.getLogger(__name__)
S = TaskLifecycleStatus


@dataclass(frozen=True)
class NodeSettings:
    """A node's identity and timings (the ``node:`` config group)."""

    id: str
    mode: str = "node"
    capacity: int = 8
    labels: dict[str, str] = field(default_factory=dict)
    lease_ttl_s: float = 2.5
    max_retries: int = 3
    fence_check_interval_s: float = 5.0
    supervision: SupervisorSettings = field(default_factory=SupervisorSettings)


class NodeAgent:
    """Runs the tasks assigned to one node."""

    def __init__(
        self, settings: NodeSettings, catalog: WorkerCatalog, bus: EventBus, store: TaskStore, live: LiveState
    ) -> None:
        self.settings = settings
        self.id = settings.id
        self.catalog = catalog
        self.bus = bus
        self.store = store
        self.live = live
        self.supervisor = Supervisor(settings.supervision, catalog.modules(), self)
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self.outbox = Outbox()
        self._workers: dict[str, WorkerHandle] = {}  # by task id: the copy this node runs
        self._subscription: Subscription | None = None
        self._stopping = threading.Event()
        self._beat_thread = threading.Thread(target=self._beat_loop, name="skalds-node-lease", daemon=True)
        self._started_at = time.time()
        self._schemas = {entry["className"]: entry["schema"] for entry in catalog.schemas()}

    # ---- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Start the launcher, subscribe, take the lease, and hand back tasks a previous
        run of this node left behind."""
        self.supervisor.start()
        # Subscribe before taking the lease: a lease tells the dispatcher "send me work", and
        # joining a Kafka group takes seconds. The lease is renewed from then on.
        self._subscription = self.bus.subscribe([str(t) for t in NODE_TOPICS], f"node-{self.id}", self._on_event)
        self._renew_lease()
        self._beat_thread.start()
        self._requeue_leftovers()
        logger.info(
            "node %s up: mode=%s capacity=%d classes=%s",
            self.id,
            self.settings.mode,
            self.settings.capacity,
            self.catalog.names(),
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop every worker (cooperatively first), drop the lease. Tasks stay assigned in
        the store; the next start of this node (or the monitor) places them again."""
        self._stopping.set()
        if self._subscription is not None:
            self._subscription.close()
        self.supervisor.shutdown(timeout_s)
        self.outbox.close()
        self.live.remove_node(self.id)
        logger.info("node %s stopped", self.id)

    def _requeue_leftovers(self) -> None:
        page = self.store.find(TaskQuery(lifecycle_status=list(ACTIVE_STATES), executor=self.id, limit=100_000))
        for task in page.items:
            if task.id in self._workers:
                continue
            if apply_fenced(self.store, task.id, task.epoch, self.id, Action.REQUEUE) is not None:
                logger.info("task %s left over from a previous run of node %s; placing it again", task.id, self.id)
                self.bus.publish(Topic.TASK_ASSIGN, task.id, TaskEvent(task_ids=[task.id]).to_value())

    # ---- events from the bus ---------------------------------------------------
    def _on_event(self, event: Event) -> None:
        if self._stopping.is_set():
            return
        topic = event.topic
        if topic == Topic.TASK_ASSIGN:
            assign = TaskEvent.model_validate(event.value)
            if assign.executor in (None, self.id):
                for task_id in assign.task_ids:
                    self._maybe_start(task_id)
        elif topic == Topic.TASK_UPDATE_ATTACHMENT:
            update = UpdateEvent.model_validate(event.value)
            handle = self._workers.get(update.task_id)
            if handle is not None and update.version > handle.sent_version:
                handle.sent_version = update.version
                handle.send("update", update.version, update.attachments)
        elif topic in (Topic.TASK_CONTROL, Topic.TASK_CANCEL):
            control = ControlEvent.model_validate(event.value)
            handle = self._workers.get(control.task_id)
            if handle is None:
                return
            if control.epoch is not None and control.epoch < handle.epoch:
                return  # about an older copy of the task; this one is newer
            if control.action == "cancel":
                self.supervisor.stop(handle, "cancelled")
            elif control.action in ("pause", "resume"):
                handle.send(control.action)

    def _maybe_start(self, task_id: str) -> None:
        # The bus thread and the reconcile sweep both start tasks; one at a time, so a task
        # is never launched twice for one epoch.
        with self._start_lock:
            self._start_locked(task_id)

    def _start_locked(self, task_id: str) -> None:
        try:
            task = self.store.get(task_id)
        except TaskNotFound:
            return
        if task.executor != self.id or task.lifecycle_status not in (S.ASSIGNING, S.PAUSED):
            return
        with self._lock:
            current = self._workers.get(task_id)
            if current is not None and current.epoch >= task.epoch:
                return  # a duplicate delivery
        if current is not None:
            self.supervisor.stop(current, f"superseded by epoch {task.epoch}")
        if task.class_name not in self.catalog:
            self._fail_now(task.id, task.epoch, f"node {self.id} cannot run class {task.class_name!r}")
            return
        spec: dict[str, Any] = {
            "task_id": task.id,
            "class_path": self.catalog.path(task.class_name),
            "attachments": task.attachments_dict(),
            "version": task.desired_version,
            "paused": task.lifecycle_status is S.PAUSED,
            "heartbeat_interval_s": self.settings.supervision.heartbeat_interval_s,
        }
        handle = self.supervisor.launch(task.id, task.epoch, spec)
        handle.applied_version = task.desired_version  # the worker starts from these attachments
        with self._lock:
            self._workers[task.id] = handle
        logger.debug("task %s launching on %s epoch=%d", task.id, self.id, task.epoch)

    def _fail_now(self, task_id: str, epoch: int, message: str) -> None:
        logger.error("task %s failed: %s", task_id, message)
        task = apply_fenced(self.store, task_id, epoch, self.id, Action.FAIL, error=TaskError(message=message))
        if task is not None:
            self._publish_status(task_id, task.lifecycle_status, epoch)

    # ---- callbacks from the supervisor thread -----------------------------------
    # Each hands its record to the outbox and returns: the supervisor never waits on the
    # store, and a write made while the store is away is retried, in order, not lost.
    def on_started(self, handle: WorkerHandle, started_at: float) -> None:
        self.outbox.submit(lambda: self._record_start(handle, started_at))

    def on_applied(self, handle: WorkerHandle, version: int, applied_at: float) -> None:
        self.outbox.submit(lambda: self._record_applied(handle, version, applied_at))

    def on_update_failed(self, handle: WorkerHandle, version: int, message: str) -> None:
        logger.warning("task %s rejected update %d: %s", handle.task_id, version, message)

    def on_exit(self, handle: WorkerHandle, result: WorkerExit) -> None:
        self.outbox.submit(lambda: self._record_exit_and_forget(handle, result))

    def _record_start(self, handle: WorkerHandle, started_at: float) -> None:
        task = self._write(handle, Action.START, assume=S.ASSIGNING, applied_version=handle.applied_version)
        if task is not None:
            # The record as written is the truth: a pause or update that raced with the
            # launch (events of different topics are not ordered) is applied now.
            if task.lifecycle_status is S.PAUSED:
                handle.send("pause")
            if task.desired_version > handle.sent_version:
                handle.sent_version = task.desired_version
                handle.send("update", task.desired_version, task.attachments_dict())
            logger.info(
                "task %s %s on node %s epoch=%d in %.1f ms",
                handle.task_id,
                task.lifecycle_status.value,
                self.id,
                handle.epoch,
                (time.monotonic() - handle.launched_at) * 1000,
            )
            self._publish_status(handle.task_id, task.lifecycle_status, handle.epoch, started_at)

    def _record_applied(self, handle: WorkerHandle, version: int, applied_at: float) -> None:
        task = self._write(handle, Action.UPDATE, applied_version=version)
        if task is not None:
            self._publish_status(handle.task_id, task.lifecycle_status, handle.epoch, applied_at, version)

    def _record_exit_and_forget(self, handle: WorkerHandle, result: WorkerExit) -> None:
        self._record_exit(handle, result)
        # Forget the worker only once its end is recorded: until then the reconcile sweep
        # must not take the task for one this node should be running and start it again.
        with self._lock:
            if self._workers.get(handle.task_id) is handle:
                del self._workers[handle.task_id]
        self.live.drop_heartbeats([handle.task_id])

    def _record_exit(self, handle: WorkerHandle, result: WorkerExit) -> None:
        if result.kind == "stopped" or self._stopping.is_set():
            logger.info("task %s stopped on node %s (%s)", handle.task_id, self.id, handle.stop_reason)
            self._publish_status(handle.task_id, None, handle.epoch, exited=True, reason=handle.stop_reason)
            return
        if result.kind == "lost":
            self._retry_or_fail(handle, result)
            return
        action = Action.FINISH if result.kind == "finished" else Action.FAIL
        task = self._write(handle, action, error=result.error)
        if task is not None:
            log = logger.info if action is Action.FINISH else logger.warning
            log(
                "task %s %s on node %s epoch=%d%s",
                handle.task_id,
                task.lifecycle_status.value,
                self.id,
                handle.epoch,
                f": {result.error.message}" if result.error else "",
            )
            self._publish_status(handle.task_id, task.lifecycle_status, handle.epoch, exited=True)

    def _retry_or_fail(self, handle: WorkerHandle, result: WorkerExit) -> None:
        task = self.store.get(handle.task_id)
        if task.attempt < self.settings.max_retries:
            written = self._write(handle, Action.REQUEUE, attempt=task.attempt + 1, error=result.error)
            if written is not None:
                logger.warning(
                    "task %s lost its worker; retry %d/%d", handle.task_id, written.attempt, self.settings.max_retries
                )
                self.bus.publish(Topic.TASK_ASSIGN, handle.task_id, TaskEvent(task_ids=[handle.task_id]).to_value())
        else:
            written = self._write(handle, Action.FAIL, error=result.error)
            if written is not None:
                self._publish_status(handle.task_id, written.lifecycle_status, handle.epoch, exited=True)

    def _write(self, handle: WorkerHandle, action: Action, **changes: Any) -> Any:
        """A fenced write for this node's copy; stops the copy when it was fenced out."""
        try:
            task = apply_fenced(self.store, handle.task_id, handle.epoch, self.id, action, **changes)
        except TaskNotFound:
            task = None
        except BackendUnavailable:
            raise  # the outbox retries the whole record later
        except SkaldsError:
            logger.exception("task %s: %s not recorded", handle.task_id, action.value)
            return None
        if task is None and action in (Action.START, Action.UPDATE) and not handle.exited:
            self._fence_check(handle)
        return task

    def _fence_sweep(self) -> None:
        """Reconcile with the store, in one query: stop every copy the store no longer gives
        this node at its epoch (after a partition the monitor may have moved a task while this
        node could not be told), and start what the store gives this node but it does not run
        (an assignment event lost to a store or bus outage)."""
        page = self.store.find(TaskQuery(lifecycle_status=list(ACTIVE_STATES), executor=self.id, limit=1_000_000))
        owned = {(t.id, t.epoch) for t in page.items}
        with self._lock:
            running = {task_id: h.epoch for task_id, h in self._workers.items()}
        # Only assignments older than one sweep: younger ones are still on their way (a
        # burst of events can queue for a while), and starting them here would only race.
        settled = utc_now() - timedelta(seconds=self.settings.fence_check_interval_s)
        for task in page.items:
            if running.get(task.id, -1) < task.epoch and task.update_date_time < settled:
                logger.warning(
                    "task %s: assigned to %s at epoch %d but not running; starting it", task.id, self.id, task.epoch
                )
                self._maybe_start(task.id)
        for handle in self.supervisor.handles():
            if handle.started and (handle.task_id, handle.epoch) not in owned:
                logger.warning(
                    "task %s: fenced out (epoch %d is no longer %s's); stopping it",
                    handle.task_id,
                    handle.epoch,
                    self.id,
                )
                self.supervisor.stop(handle, "fenced: the task moved on")

    def _fence_check(self, handle: WorkerHandle) -> None:
        try:
            task = self.store.get(handle.task_id)
        except TaskNotFound:
            task = None
        if task is None or task.epoch != handle.epoch or task.executor != self.id or task.lifecycle_status.is_terminal:
            self.supervisor.stop(handle, "fenced: the task moved on")

    def _publish_status(
        self,
        task_id: str,
        status: S | None,
        epoch: int,
        at: float | None = None,
        version: int | None = None,
        *,
        exited: bool = False,
        reason: str | None = None,
    ) -> None:
        event = StatusEvent(
            task_id=task_id,
            status=status.value if status is not None else "Stopped",
            executor=self.id,
            epoch=epoch,
            applied_version=version,
            at=at or time.time(),
            exited=exited,
            reason=reason,
        )
        self.bus.publish(Topic.TASKWORKER_UPDATE, task_id, event.to_value())

    # ---- lease and heartbeats ----------------------------------------------------
    def running_count(self) -> int:
        """Workers this node holds now."""
        with self._lock:
            return len(self._workers)

    def node_info(self) -> NodeInfo:
        """This node's lease record."""
        return NodeInfo(
            id=self.id,
            mode=self.settings.mode,
            classes=self.catalog.names(),
            capacity=self.settings.capacity,
            running=self.running_count(),
            labels=dict(self.settings.labels),
            schemas=self._schemas,
            started_at=self._started_at,
            heartbeat_at=time.time(),
        )

    def _renew_lease(self) -> None:
        self.live.put_node(self.node_info(), self.settings.lease_ttl_s)

    def _beat_loop(self) -> None:
        interval = self.settings.supervision.heartbeat_interval_s
        ttl = self.settings.supervision.heartbeat_timeout_s
        next_fence_check = time.monotonic() + self.settings.fence_check_interval_s
        while not self._stopping.wait(interval):
            # The reconcile sweep only once every record is written, or it would take a task
            # whose end is still queued for one to start again.
            if not self.outbox.pending() and time.monotonic() >= next_fence_check:
                next_fence_check = time.monotonic() + self.settings.fence_check_interval_s
                try:
                    self._fence_sweep()
                except Exception as exc:
                    logger.warning("node %s: fence check skipped: %s", self.id, exc)
            try:
                self._renew_lease()
                now = time.time()
                beats = [
                    Heartbeat(
                        h.task_id, self.id, h.epoch, now - (time.monotonic() - h.last_seen), h.progress, h.message
                    )
                    for h in self.supervisor.handles()
                    if h.started
                ]
                if beats:
                    self.live.put_heartbeats(beats, ttl)
            except Exception:
                logger.exception("node %s: lease/heartbeat write failed; retrying", self.id)
