"""What a node writes about its workers: started, update applied, ended.

The supervisor reports each event on its own thread; the :class:`RecordKeeper` hands the write
to the node's outbox and returns, so the supervisor never waits on the store and a write made
while the store is away is retried, in order, not lost. Every write is fenced by the worker's
epoch: a copy that lost its task to someone else records nothing and is stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from skalds.core.dispatch import waiting_event
from skalds.core.events import ExitKind, StatusEvent, Topic
from skalds.core.lifecycle import Action, RetryPolicy, ended_attempt, plan
from skalds.core.task import Attempt, AttemptOutcome, Task, TaskError, TaskLifecycleStatus, failure_fields, now_ms
from skalds.errors import BackendUnavailable, InvalidTransition, SkaldsError, StaleWrite, TaskNotFound
from skalds.node.outbox import Outbox
from skalds.node.supervisor import Supervisor, WorkerExit, WorkerHandle
from skalds.node.table import WorkerTable
from skalds.ports.event_bus import EventBus
from skalds.ports.live_state import LiveState
from skalds.ports.task_store import TaskStore
from skalds.service.writes import apply_fenced
from skalds.worker.protocol import Pause, Update

logger = logging.getLogger(__name__)
S = TaskLifecycleStatus


class RecordKeeper:
    """The node's :class:`~skalds.node.supervisor.SupervisorListener`: turns worker events
    into fenced store writes and status events."""

    def __init__(
        self,
        node_id: str,
        store: TaskStore,
        bus: EventBus,
        live: LiveState,
        workers: WorkerTable,
        retry: RetryPolicy,
        stopping: Callable[[], bool],
    ) -> None:
        self.node_id = node_id
        self.store = store
        self.bus = bus
        self.live = live
        self.workers = workers
        self.retry = retry
        self.stopping = stopping
        self.supervisor: Supervisor | None = None  # set once the supervisor exists
        self.outbox = Outbox()

    # ---- SupervisorListener: each call queues a write and returns --------------------
    def on_started(self, handle: WorkerHandle, started_us: int) -> None:
        self.outbox.submit(lambda: self._record_start(handle, started_us))

    def on_applied(self, handle: WorkerHandle, version: int, applied_us: int) -> None:
        self.outbox.submit(lambda: self._record_applied(handle, version, applied_us))

    def on_update_failed(self, handle: WorkerHandle, version: int, message: str) -> None:
        logger.warning("task %s rejected update %d: %s", handle.task_id, version, message)

    def on_exit(self, handle: WorkerHandle, result: WorkerExit) -> None:
        self.outbox.submit(lambda: self._record_exit_and_forget(handle, result))

    # ---- the writes (on the outbox thread) ----------------------------------------------
    def _record_start(self, handle: WorkerHandle, started_us: int) -> None:
        task = self._fenced(handle, Action.START, assume=S.ASSIGNING, applied_version=handle.applied_version)
        if task is None:
            return
        # The record as written is the truth: a pause or update that raced with the launch
        # (events of different topics are not ordered) is applied now.
        if task.lifecycle_status is S.PAUSED and not handle.paused:
            handle.paused = handle.send(Pause())
        if task.desired_version > handle.sent_version:
            handle.sent_version = task.desired_version
            handle.send(Update(task.desired_version, task.attachments_dict()))
        logger.info(
            "task %s %s on node %s epoch=%d in %.1f ms",
            handle.task_id,
            task.lifecycle_status.value,
            self.node_id,
            handle.epoch,
            (time.monotonic() - handle.launched_at) * 1000,
        )
        self.publish_status(handle.task_id, task.lifecycle_status, handle.epoch, at_us=started_us)

    def _record_applied(self, handle: WorkerHandle, version: int, applied_us: int) -> None:
        task = self._fenced(handle, Action.APPLIED, applied_version=version)
        if task is not None:
            self.publish_status(handle.task_id, task.lifecycle_status, handle.epoch, version=version, at_us=applied_us)

    def _record_exit_and_forget(self, handle: WorkerHandle, result: WorkerExit) -> None:
        ended = self._record_exit(handle, result)
        # Forget the worker only once its end is recorded: until then the reconcile sweep
        # must not take the task for one this node should be running and start it again.
        self.workers.forget(handle)
        try:
            if ended is not None:
                self.live.tasks_ended({handle.task_id: ended})
            else:
                self.live.drop_heartbeats([handle.task_id])
        except BackendUnavailable:
            pass  # the heartbeat expires by itself

    def _record_exit(self, handle: WorkerHandle, result: WorkerExit) -> S | None:
        """Record how the worker ended; return the task's end state if the task ended
        (Finished, Failed, Cancelled), None if it goes on (retried, handed back, moved)."""
        kind = result.kind
        stopped_anyway = (ExitKind.LOST, ExitKind.SELF_FENCED, ExitKind.PREEMPTED)
        if kind is ExitKind.STOPPED or (self.stopping() and kind in stopped_anyway):
            # Stopped on purpose: whoever asked wrote the task's state already (cancel), or
            # the node hands it back once every worker is gone (shutdown).
            logger.info("task %s stopped on node %s (%s)", handle.task_id, self.node_id, handle.stop_reason or kind)
            self.publish_status(handle.task_id, None, handle.epoch, exit=kind, reason=handle.stop_reason)
            return None if self.stopping() else self._ended_by_others(handle)
        if kind is ExitKind.SELF_FENCED:
            self._hand_back(handle, "its node lost contact with its lease; the worker stopped itself")
            return None
        if kind is ExitKind.PREEMPTED:
            # Gone before the task is handed back, so its next copy never overlaps this one.
            self.publish_status(handle.task_id, None, handle.epoch, exit=kind, reason=handle.stop_reason)
            self._hand_back(handle, handle.stop_reason or "preempted", AttemptOutcome.PREEMPTED)
            return None
        if kind is ExitKind.LOST:
            return self._retry_or_fail(handle, result.error or TaskError(message="worker lost"))
        action = Action.FINISH if kind is ExitKind.FINISHED else Action.FAIL
        outcome = AttemptOutcome.FINISHED if kind is ExitKind.FINISHED else AttemptOutcome.FAILED
        task = self._fenced(
            handle, action, ended=self._ended(handle, outcome, result.error), **failure_fields(result.error)
        )
        if task is None:
            return None
        log = logger.info if action is Action.FINISH else logger.warning
        log(
            "task %s %s on node %s epoch=%d%s",
            handle.task_id,
            task.lifecycle_status.value,
            self.node_id,
            handle.epoch,
            f": {result.error.message}" if result.error else "",
        )
        error = result.error.message if result.error else None
        self.publish_status(handle.task_id, task.lifecycle_status, handle.epoch, exit=kind, error=error)
        return task.lifecycle_status

    def _ended_by_others(self, handle: WorkerHandle) -> S | None:
        """The end state of a task whose worker this node stopped on request (a cancel),
        if the task ended at the worker's epoch; None if it goes on (moved, replaced)."""
        try:
            task = self.store.get(handle.task_id)
        except (TaskNotFound, BackendUnavailable):
            return None  # only the live state's record of the end is lost
        return task.lifecycle_status if task.epoch == handle.epoch and task.lifecycle_status.is_terminal else None

    def _retry_or_fail(self, handle: WorkerHandle, error: TaskError) -> S | None:
        task = self._owned(handle)
        if task is None:
            return None
        try:
            written = self.store.apply(self.retry.lost(task, AttemptOutcome.WORKER_LOST, error))
        except (StaleWrite, InvalidTransition):
            return None  # moved on meanwhile (cancelled, requeued by the monitor)
        self.publish_status(
            handle.task_id,
            written.lifecycle_status,
            handle.epoch,
            exit=ExitKind.LOST,
            error=error.message,
            cause=AttemptOutcome.WORKER_LOST.value,
        )
        if written.lifecycle_status is S.FAILED:
            logger.error("task %s lost its worker (%s) and has no retries left; Failed", handle.task_id, error.message)
            return S.FAILED
        logger.warning(
            "task %s lost its worker (%s); retry %d/%d in %.1fs",
            handle.task_id,
            error.message,
            written.attempt,
            self.retry.for_task(written).max_retries,
            max(0, (written.retry_at or 0) - now_ms()) / 1000,
        )
        self.bus.publish(Topic.TASK_ASSIGN, handle.task_id, waiting_event(written).to_value())
        return None

    def _hand_back(
        self, handle: WorkerHandle, reason: str, outcome: AttemptOutcome = AttemptOutcome.HANDED_BACK
    ) -> None:
        """Give the task back for placement (no retry consumed), if this node still owns it."""
        task = self._owned(handle)
        if task is None:
            return
        try:
            written = self.store.apply(
                plan(
                    task, Action.REQUEUE, ended=ended_attempt(task, outcome, reason), actor=self.node_id, reason=reason
                )
            )
        except (StaleWrite, InvalidTransition):
            return
        logger.warning("task %s handed back by node %s epoch=%d: %s", handle.task_id, self.node_id, task.epoch, reason)
        self.bus.publish(Topic.TASK_ASSIGN, handle.task_id, waiting_event(written).to_value())

    def _owned(self, handle: WorkerHandle) -> Task | None:
        """The task, if this node still owns it at the handle's epoch."""
        try:
            task = self.store.get(handle.task_id)
        except TaskNotFound:
            return None
        if task.epoch != handle.epoch or task.executor != self.node_id:
            return None
        return task

    def _ended(self, handle: WorkerHandle, outcome: AttemptOutcome, error: TaskError | None) -> Attempt:
        return Attempt(
            attempt=handle.attempt,
            epoch=handle.epoch,
            node=self.node_id,
            started_at=handle.started_ms,
            ended_at=now_ms(),
            outcome=outcome,
            error=error.message if error else None,
        )

    def _fenced(self, handle: WorkerHandle, action: Action, **changes: Any) -> Task | None:
        """A fenced write for this node's copy; stops the copy when it was fenced out."""
        try:
            task = apply_fenced(self.store, handle.task_id, handle.epoch, self.node_id, action, **changes)
        except TaskNotFound:
            task = None
        except BackendUnavailable:
            raise  # the outbox retries the whole record later
        except SkaldsError:
            logger.exception("task %s: %s not recorded", handle.task_id, action.value)
            return None
        if task is None and action in (Action.START, Action.APPLIED) and not handle.exited:
            self.stop_if_fenced(handle)
        return task

    def stop_if_fenced(self, handle: WorkerHandle) -> None:
        """Stop ``handle`` unless the store still gives this node its task at its epoch."""
        try:
            task: Task | None = self.store.get(handle.task_id)
        except TaskNotFound:
            task = None
        if self.supervisor is not None and (
            task is None
            or task.epoch != handle.epoch
            or task.executor != self.node_id
            or task.lifecycle_status.is_terminal
        ):
            self.supervisor.stop(handle, "fenced: the task moved on")

    def publish_status(
        self,
        task_id: str,
        status: S | None,
        epoch: int,
        *,
        version: int | None = None,
        at_us: int | None = None,
        exit: ExitKind | None = None,
        reason: str | None = None,
        error: str | None = None,
        cause: str | None = None,
    ) -> None:
        """Tell whoever listens on ``taskworker.update`` what happened to a task here, and
        when (``at_us``: epoch microseconds; now if not given)."""
        at_us = at_us or time.time_ns() // 1000
        event = StatusEvent(
            task_id=task_id,
            status=status,
            executor=self.node_id,
            epoch=epoch,
            applied_version=version,
            at=at_us // 1000,
            at_us=at_us,
            exit=exit,
            reason=reason,
            error=error,
            cause=cause,
        )
        try:
            self.bus.publish(Topic.TASKWORKER_UPDATE, task_id, event.to_value())
        except BackendUnavailable as exc:
            logger.debug("status of task %s not published: %s", task_id, exc)
