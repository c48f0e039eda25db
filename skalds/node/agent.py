"""The node agent: turns assignments into worker processes and keeps their records true.

It consumes the node topics in its own group (its id), starts tasks assigned to it at their
epoch, forwards updates and pause/resume/cancel to the workers, and owns four threads that never
wait on each other: the lease (:mod:`skalds.node.lease`), the supervisor (worker pipes), the
reconcile sweep and the heartbeat writer (:mod:`skalds.node.reconcile`), plus the outbox that
makes its store writes (:mod:`skalds.node.records`). One bus consumer and one live-state client
per node, whatever the task count.

A clean stop drains: the lease says so (no new work), every worker is stopped, and the node's
tasks are handed back explicitly (to ``Created``; paused ones stay ``Paused``; no retry consumed)
before the lease is dropped, however long the workers take to stop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from skalds.config.schema import DEFAULT_CAPACITY, DEFAULTS, default_retry_policy
from skalds.core.dispatch import needs_placement, waiting_event
from skalds.core.events import NODE_TOPICS, ControlAction, ControlEvent, TaskEvent, Topic, UpdateEvent, seed_task_ids
from skalds.core.lifecycle import Action, RetryPolicy
from skalds.core.records import NodeInfo
from skalds.core.task import ACTIVE_STATES, Task, TaskError, TaskLifecycleStatus, failure_fields, now_ms
from skalds.errors import BackendUnavailable, InvalidTransition, TaskNotFound
from skalds.node.launcher import LauncherGone
from skalds.node.lease import LeaseKeeper, LeaseSettings
from skalds.node.output import OutputSettings, OutputShipper
from skalds.node.placement import SelfPlacement
from skalds.node.reconcile import HeartbeatWriter, Reconciler, hand_back, offer_update
from skalds.node.records import RecordKeeper
from skalds.node.supervisor import Supervisor, SupervisorSettings, WorkerHandle
from skalds.node.table import WorkerTable
from skalds.node.usage import Usage
from skalds.ports.event_bus import Event, EventBus, Subscription
from skalds.ports.live_state import LiveState
from skalds.ports.task_store import TaskQuery, TaskStore
from skalds.service import writes
from skalds.service.writes import apply_fenced
from skalds.worker.protocol import LeaseValid, Pause, Resume, WorkerSpec
from skalds.worker.registry import WorkerCatalog

logger = logging.getLogger(__name__)
S = TaskLifecycleStatus


@dataclass(frozen=True)
class NodeSettings:
    """A node's identity and timings (the ``node:`` config group).

    ``self_fence``: workers of tasks another node could take over stop themselves when this
    node's lease lapses (distributed backends). Off on the embedded backends, where the lease,
    its judge and the node share one process and freeze together.
    """

    id: str
    mode: str = "node"
    capacity: int = DEFAULT_CAPACITY
    labels: dict[str, str] = field(default_factory=dict)
    #: Named resources offered besides the slots (``cpu``, ``memory_mb``, ``gpu``, ...).
    offers: dict[str, float] = field(default_factory=dict)
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    self_fence: bool = False
    retry: RetryPolicy = field(default_factory=default_retry_policy)
    fence_check_interval_s: float = DEFAULTS.node.fence_check_interval_s
    supervision: SupervisorSettings = field(default_factory=SupervisorSettings)
    output: OutputSettings = field(default_factory=OutputSettings)


class NodeAgent:
    """Runs the tasks assigned to one node."""

    def __init__(
        self,
        settings: NodeSettings,
        catalog: WorkerCatalog,
        bus: EventBus,
        store: TaskStore,
        live: LiveState,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.id = settings.id
        self.catalog = catalog
        self.bus = bus
        self.store = store
        self.live = live
        self.on_fatal = on_fatal
        self.instance = uuid.uuid4().hex
        self.workers = WorkerTable()
        self._state = "starting"
        self._stopping = threading.Event()
        self._start_lock = threading.Lock()
        self._subscription: Subscription | None = None
        self._started_at = now_ms()
        self._schemas = {entry["className"]: entry["schema"] for entry in catalog.schemas()}
        #: The node's watched files and their last reload, for its lease (set by whoever watches).
        self.files_status: Callable[[], list[dict[str, Any]]] = list
        self.usage = Usage(self._pids)
        self.records = RecordKeeper(self.id, store, bus, live, self.workers, settings.retry, self._stopping.is_set)
        self.output = OutputShipper(self.id, live, settings.output)
        self.supervisor = Supervisor(
            settings.supervision, catalog.modules(), self.records, title=f"node {self.id}", output=self.output.lines
        )
        self.records.supervisor = self.supervisor
        touch = (lambda: store.touch_node(self.id, self.instance)) if settings.self_fence else None
        self.lease = LeaseKeeper(settings.lease, live, self.node_info, self._lease_renewed, self._taken_over, touch)
        self.placement = SelfPlacement(
            self.id,
            store,
            bus,
            settings.capacity,
            self.running_count,
            self.start_task,
            lease_held=lambda: self.lease.current() is not None,
            spec=catalog.spec,
        )
        self.reconciler = Reconciler(
            self.id,
            store,
            self.supervisor,
            self.workers,
            self.start_task,
            self._hand_back,
            settings.fence_check_interval_s,
            waiting=self.placement.waiting,
        )
        ttl = settings.supervision.heartbeat_timeout_s
        self.beats = HeartbeatWriter(self.id, live, self.supervisor, settings.supervision.heartbeat_interval_s, ttl)

    # ---- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Start the launcher, claim the node id, subscribe, hand back what a previous run of
        this node left behind, then take work.

        Raises:
            OwnershipConflict: another live process holds this node id (nothing changed).
        """
        self.output.start()
        self.supervisor.start()
        try:
            self.lease.acquire()
        except BaseException:
            self.output.stop()
            self._stopping.set()  # stop() must not touch what another process owns
            self.supervisor.shutdown()
            raise
        self.lease.start()
        self._subscription = self.bus.subscribe(
            [str(t) for t in NODE_TOPICS],
            f"node-{self.id}",
            self._on_event,
            sole=True,  # its lease is held
        )
        self._requeue_leftovers()
        self._state = "ready"
        self.lease.publish()  # ready in its record before start returns: a dispatcher sees it so
        self.reconciler.place_waiting()  # what is bound here runs now, not a sweep later
        self.reconciler.loop.start()
        self.beats.loop.start()
        logger.info(
            "node %s up: mode=%s capacity=%d classes=%s",
            self.id,
            self.settings.mode,
            self.settings.capacity,
            self.catalog.names(),
        )

    def stop(self) -> None:
        """Drain and stop: no new work, every worker stopped, every task handed back, then
        the lease dropped. Consumes no retry and loses no task. Idempotent."""
        if self._stopping.is_set():
            return
        started = time.monotonic()
        self._stopping.set()
        self._state = "draining"
        self.lease.renew_now()
        if self._subscription is not None:
            self._subscription.close()
        self.reconciler.loop.stop()
        self.placement.close()
        for handle in self.supervisor.handles():
            self.supervisor.stop(handle, "node shutting down")
        s = self.settings.supervision
        if not self.supervisor.wait_all_gone(s.cancel_grace_s + 2 * s.terminate_grace_s + 5):
            logger.error("node %s: workers still running after SIGKILL; handing their tasks back anyway", self.id)
        self.output.stop()  # the workers' last lines, shipped
        self.records.outbox.close()
        handed = self._hand_back_all("its node stopped")
        self.beats.loop.stop()
        self.lease.stop(remove=True)
        self.supervisor.shutdown()
        logger.info(
            "node %s stopped in %.0f ms; %d task(s) handed back", self.id, (time.monotonic() - started) * 1000, handed
        )

    def _requeue_leftovers(self) -> None:
        """Tasks the store still gives this node from a run that ended without handing them
        back (a crash): nothing of them runs here, so they go back for placement."""
        handed = self._hand_back_all("left over from a previous run of its node")
        if handed:
            logger.info("node %s: %d task(s) left over from a previous run handed back", self.id, handed)

    def _hand_back_all(self, reason: str) -> int:
        try:
            page = self.store.find(TaskQuery(lifecycle_status=sorted(ACTIVE_STATES), executor=self.id, limit=1_000_000))
        except BackendUnavailable as exc:
            logger.error("node %s: cannot hand tasks back (%s); its next start or the monitor will", self.id, exc)
            return 0
        return sum(self._hand_back(task, reason) for task in page.items)

    def _hand_back(self, task: Task, reason: str) -> bool:
        if hand_back(self.store, task, reason) is None:
            return False
        logger.info("task %s handed back by node %s: %s", task.id, self.id, reason)
        try:
            self.bus.publish(Topic.TASK_ASSIGN, task.id, waiting_event(task).to_value())
        except BackendUnavailable:
            pass  # the monitor's sweep places it
        return True

    # ---- events from the bus ---------------------------------------------------
    def _on_event(self, event: Event) -> None:
        if self._stopping.is_set():
            return
        topic, value = event.topic, event.value
        seed_ids = seed_task_ids(value)
        if topic == Topic.TASK_ASSIGN:
            assign = TaskEvent.model_validate(value)
            # Only events addressed to this node: its placements, and the waiting tasks it
            # places itself. A seed script's event names neither: look each task up.
            mine = assign.executor == self.id if assign.executor is not None else assign.placer in (None, self.id)
            if mine:
                for task_id in assign.task_ids:
                    if not self._runs_placement(task_id, assign.epoch):
                        self.start_task(task_id)
        elif topic == Topic.TASK_UPDATE_ATTACHMENT:
            if seed_ids is not None:
                for task_id in seed_ids:
                    self._deliver_stored(task_id)
            else:
                self._deliver(UpdateEvent.model_validate(value))
        elif topic in (Topic.TASK_CONTROL, Topic.TASK_CANCEL):
            if seed_ids is not None and topic == Topic.TASK_CANCEL:
                for task_id in seed_ids:
                    self._cancel_seed(task_id)
            elif seed_ids is None:
                self._control(ControlEvent.model_validate(value))

    def _runs_placement(self, task_id: str, epoch: int | None) -> bool:
        """Whether a worker of this placement (or a later one) of the task runs here already:
        its event is a duplicate (the placing request started it), no store read needed."""
        handle = self.workers.get(task_id)
        return epoch is not None and handle is not None and handle.epoch >= epoch

    def _deliver(self, update: UpdateEvent) -> None:
        handle = self.workers.get(update.task_id)
        if handle is None or update.version <= handle.sent_version:
            return
        if update.attachments is None:  # too large for the event: read it from the store
            self._deliver_stored(update.task_id)
        else:
            offer_update(handle, update.version, update.attachments)

    def _deliver_stored(self, task_id: str) -> None:
        handle = self.workers.get(task_id)
        if handle is None:
            return
        try:
            task = self.store.get(task_id)
        except TaskNotFound:
            return
        if task.epoch == handle.epoch:
            offer_update(handle, task.desired_version, task.attachments_dict())

    def _control(self, control: ControlEvent) -> None:
        handle = self.workers.get(control.task_id)
        if handle is None or (control.epoch is not None and control.epoch < handle.epoch):
            return  # not here, or about an older copy of the task
        if control.action is ControlAction.CANCEL:
            self.supervisor.stop(handle, "cancelled")
        elif control.action is ControlAction.PREEMPT:
            if control.epoch == handle.epoch:  # only the very copy the dispatcher chose
                logger.info("task %s preempted on %s epoch=%d", control.task_id, self.id, handle.epoch)
                self.supervisor.stop(handle, control.reason or "preempted by a higher priority task", preempted=True)
        elif control.action is ControlAction.PAUSE:
            handle.paused = handle.send(Pause())
        elif control.action is ControlAction.RESUME:
            handle.send(Resume())
            handle.paused = False

    def _cancel_seed(self, task_id: str) -> None:
        """The seed's ``TaskEvent{taskIds}`` on ``task.cancel``: cancel the task (if a script
        did not already) and stop the copy running here."""
        try:
            writes.apply(self.store, task_id, Action.CANCEL)
        except (InvalidTransition, TaskNotFound):
            pass
        handle = self.workers.get(task_id)
        if handle is not None:
            self.supervisor.stop(handle, "cancelled")

    # ---- starting tasks ------------------------------------------------------------
    def start_task(self, task_id: str) -> None:
        """Start this node's copy of a task the store assigns to it (idempotent); a task
        that waits for a node and is bound to this one is placed here first. The bus thread
        and the reconcile sweep both call this; one at a time, so a task is never launched
        twice for one epoch."""
        with self._start_lock:
            if not self._stopping.is_set():
                self._start_locked(task_id)

    def _start_locked(self, task_id: str) -> None:
        try:
            task = self.store.get(task_id)
        except TaskNotFound:
            return
        if needs_placement(task):
            placed = self.placement.claim(task)
            if placed is None:
                return
            task = placed
        if task.executor != self.id or task.lifecycle_status not in (S.ASSIGNING, S.PAUSED):
            return
        current = self.workers.get(task_id)
        if current is not None and current.epoch >= task.epoch:
            return  # a duplicate delivery
        if current is not None and self._adoptable(current, task):
            self._adopt(current, task)
            return
        if current is not None:
            self.supervisor.stop(current, f"superseded by epoch {task.epoch}")
        if task.class_name not in self.catalog:
            self._fail_now(task, f"node {self.id} cannot run class {task.class_name!r}")
            return
        self_fencing = self.settings.self_fence and task.pinned_node is None
        lease = self.lease.current()
        if self_fencing and lease is None:
            logger.warning(
                "task %s: not started now, this node's lease may have lapsed; the next sweep retries", task_id
            )
            return
        spec = WorkerSpec(
            task_id=task.id,
            class_name=task.class_name,
            class_path=self.catalog.path(task.class_name),
            attachments=task.attachments_dict(),
            version=task.desired_version,
            epoch=task.epoch,
            node_id=self.id,
            paused=task.lifecycle_status is S.PAUSED,
            heartbeat_interval_s=self.settings.supervision.heartbeat_interval_s,
            log_level=self.settings.supervision.log_level,
            attempt=task.attempt,
            lease=lease if self_fencing else None,
        )
        try:
            handle = self.supervisor.launch(
                spec, task.attempt, self_fencing=self_fencing, pinned=task.pinned_node == self.id
            )
        except LauncherGone as exc:
            logger.error("task %s: cannot start: %s", task_id, exc)
            return
        self.workers.put(handle)
        logger.debug("task %s launching on %s epoch=%d", task.id, self.id, task.epoch)

    def _adoptable(self, handle: WorkerHandle, task: Task) -> bool:
        """Whether the copy running here is the task's, placed back here: an edge's own task
        of the same class, not being stopped (a replacement by a new class, or a cancel that
        came first, starts over)."""
        return (
            handle.pinned
            and task.pinned_node == self.id
            and not handle.exited
            and handle.stop_reason is None
            and handle.class_name == task.class_name
        )

    def _adopt(self, handle: WorkerHandle, task: Task) -> None:
        """An edge's own task that is still running here came back at a new epoch (the
        monitor had requeued it while this node was unreachable): keep the running copy."""
        written = apply_fenced(
            self.store, task.id, task.epoch, self.id, Action.START, applied_version=handle.applied_version
        )
        if written is None:
            return
        logger.info("task %s: kept its running copy on %s at epoch %d", task.id, self.id, task.epoch)
        handle.epoch = task.epoch
        if written.lifecycle_status is S.PAUSED and not handle.paused:
            handle.paused = handle.send(Pause())
        self.records.publish_status(task.id, written.lifecycle_status, task.epoch)

    def _fail_now(self, task: Task, message: str) -> None:
        logger.error("task %s failed: %s", task.id, message)
        error = TaskError(message=message)
        written = apply_fenced(self.store, task.id, task.epoch, self.id, Action.FAIL, **failure_fields(error))
        if written is not None:
            self.records.publish_status(task.id, written.lifecycle_status, task.epoch)

    # ---- lease -----------------------------------------------------------------------
    def _pids(self) -> list[int]:
        launcher = self.supervisor.launcher.pid
        workers = [h.pid for h in self.supervisor.handles() if h.pid is not None]
        return [os.getpid(), *([launcher] if launcher else []), *workers]

    def node_info(self) -> NodeInfo:
        """This node's lease record."""
        cpu, memory = self.usage.sample()
        return NodeInfo(
            id=self.id,
            mode=self.settings.mode,
            classes=self.catalog.names(),
            capacity=self.settings.capacity,
            running=len(self.workers),
            labels=dict(self.settings.labels),
            offers=dict(self.settings.offers),
            class_specs=self.catalog.specs(),
            schemas=self._schemas,
            files=self.files_status(),
            instance=self.instance,
            pid=os.getpid(),
            host=socket.gethostname(),
            draining=self._state != "ready",
            cpu_percent=cpu,
            memory_mb=memory,
            started_at=self._started_at,
            heartbeat_at=now_ms(),
        )

    def classes_changed(self, changed: list[str], removed: list[str]) -> None:
        """The catalog took new classes: have the launcher import their modules, advertise
        them. Running tasks of a removed class go on; none starts any more."""
        modules = self.catalog.modules(changed)
        if modules:
            try:
                self.supervisor.launcher.preload(modules)
            except LauncherGone as exc:
                logger.error("node %s: new classes not loaded in the launcher: %s", self.id, exc)
        self._schemas = {entry["className"]: entry["schema"] for entry in self.catalog.schemas()}
        logger.info("node %s classes now %s (changed %s, removed %s)", self.id, self.catalog.names(), changed, removed)
        self.lease.renew_now()

    def _lease_renewed(self, lease: LeaseValid) -> None:
        for handle in self.workers.snapshot().values():
            if handle.self_fencing and not handle.exited:
                handle.send(lease)

    def _taken_over(self, holder: NodeInfo) -> None:
        reason = f"node id {self.id!r} was taken over by {holder.holder()}"
        for handle in self.supervisor.handles():
            self.supervisor.stop(handle, "fenced: " + reason, grace_s=0)
        if self.on_fatal is not None:
            self.on_fatal(reason)

    def running_count(self) -> int:
        """Workers this node holds now."""
        return len(self.workers)

    def __repr__(self) -> str:
        return f"NodeAgent({self.id!r}, {self._state})"
