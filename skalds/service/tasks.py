"""What the REST API and the YAML reconciler do with tasks: validate, write conditionally, publish.

Every user action is one conditional store write followed by one event, so the effect is
durable before anyone is told, and a node that misses the event still finds the truth in the
store (its reconcile sweep starts, stops, pauses and updates what the store says).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from skalds.config.schema import DEFAULTS, default_retry_policy
from skalds.core.dispatch import DISPATCHER, bound_node, waiting_event
from skalds.core.events import ControlAction, ControlEvent, TaskEvent, Topic, UpdateEvent
from skalds.core.lifecycle import RETRY_FIELDS, Action, RetryPolicy, allowed, plan
from skalds.core.records import LogLine
from skalds.core.storable import check_storable
from skalds.core.task import Task, TaskLifecycleStatus, TransitionRecord, seed_heartbeat
from skalds.errors import (
    BackendUnavailable,
    InvalidTransition,
    StaleWrite,
    UnknownWorkerClass,
    ValidationFailed,
    field_path,
)
from skalds.ports.event_bus import EventBus
from skalds.ports.live_state import LiveState
from skalds.ports.task_store import TaskPage, TaskQuery, TaskStore
from skalds.service import writes
from skalds.service.catalog import Catalog
from skalds.service.requests import CreateTaskRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceLimits:
    """Sizes the task service keeps to.

    Attributes:
        max_event_bytes: attachments larger than this (as JSON) travel by the store, not in
            the update event, so no event outgrows the broker's message limit.
        live_state_retry_s: after the live state failed a read, reads skip it this long
            (progress shows as unavailable) instead of waiting on it for every request.
        max_batch: the most tasks one batch may create.
    """

    max_event_bytes: int = DEFAULTS.controller.max_event_bytes
    live_state_retry_s: float = 2.0
    max_batch: int = DEFAULTS.controller.max_batch


class TaskService:
    """Create, read, update and control tasks."""

    def __init__(
        self,
        store: TaskStore,
        bus: EventBus,
        live: LiveState,
        catalog: Catalog,
        limits: ServiceLimits | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.live = live
        self.catalog = catalog
        self.limits = limits or ServiceLimits()
        #: The config's retry policy: what a task gets where neither it nor its class says.
        self.retry_policy = retry or default_retry_policy()
        self._live_down_until = 0.0
        #: Where a controller runs the (leading) dispatcher in this process, its placement on
        #: the caller's thread, run after a created task's ``task.assign`` is published.
        self.place_now: Callable[[list[Task]], None] | None = None

    # ---- create and read -----------------------------------------------------------
    def create(
        self,
        request: CreateTaskRequest,
        source: str = "api",
        pinned_node: str | None = None,
        *,
        declared: bool = False,
        actor: str | None = None,
        **fields: Any,
    ) -> Task:
        """Validate and store a task, then ask for it to be placed (on ``pinned_node`` only,
        when given). ``declared``: a YAML file declares it (its attachments are the file's
        baseline); ``fields`` sets further task fields (``mode``, ``executor``...).

        Raises:
            UnknownWorkerClass, ValidationFailed: bad class or attachments (nothing stored).
            TaskAlreadyExists: the id is taken.
        """
        data = self.attachments_of(request)
        task = self.new_task(request, data, source, pinned_node, declared=declared, actor=actor, **fields)
        self.store.create(task)
        self.announce([task])
        return task

    def attachments_of(self, request: CreateTaskRequest, *, full_paths: bool = False) -> dict[str, Any]:
        """The request's attachments, validated by its class and normalized. Fields at fault
        are named inside the attachments (``fixFrame``) or, with ``full_paths``, from the
        request's top (``attachments.fixFrame``, ``className``).

        Raises:
            UnknownWorkerClass (only without ``full_paths``), ValidationFailed.
        """
        check_storable({"name": request.name, "description": request.description})
        try:
            data = self.catalog.normalize(request.class_name, request.attachments)
        except UnknownWorkerClass as exc:
            if not full_paths:
                raise
            raise ValidationFailed.of_fields("", [{"field": "className", "message": exc.message}]) from exc
        except ValidationFailed as exc:
            if not full_paths:
                raise
            errors = [
                {
                    "field": field_path(("attachments", e["field"])) if e["field"] else "attachments",
                    "message": e["message"],
                }
                for e in exc.detail.get("errors", [])
            ]
            raise ValidationFailed.of_fields("", errors or [{"field": "attachments", "message": exc.message}]) from exc
        check_storable(data, ("attachments",))
        return data

    def new_task(
        self,
        request: CreateTaskRequest,
        attachments: dict[str, Any],
        source: str = "api",
        pinned_node: str | None = None,
        *,
        declared: bool = False,
        actor: str | None = None,
        **fields: Any,
    ) -> Task:
        """The task ``request`` makes (not stored), with its retry policy and the history
        entry of its creation by ``actor`` (default: ``source``)."""
        task_id = request.id or uuid.uuid4().hex[:12]
        task = Task(
            id=task_id,
            class_name=request.class_name,
            name=request.name,
            description=request.description,
            source=source,
            attachments=attachments,
            priority=request.priority,
            pinned_node=pinned_node,
            declared=attachments if declared else None,
            **scheduling(request, task_id),
            **self.retry_of(request).fields(),
            **fields,
        )
        creation = TransitionRecord(
            at=task.create_date_time,
            actor=actor or source,
            action="create",
            status=task.lifecycle_status,
            epoch=task.epoch,
        )
        task.history = [creation]
        return task

    def announce(self, tasks: list[Task]) -> None:
        """Ask for stored tasks to be placed: one ``task.assign`` event per placer (the node
        a task is bound to, else the dispatcher), or a few when their ids would outgrow
        ``limits.max_event_bytes``."""
        by_placer: dict[str, list[str]] = {}
        for task in tasks:
            by_placer.setdefault(bound_node(task) or DISPATCHER, []).append(task.id)
        budget = max(1, self.limits.max_event_bytes // 2)  # room for the event's other fields
        for placer, task_ids in by_placer.items():
            chunk: list[str] = []
            size = 0
            for task_id in task_ids:
                if chunk and size + len(task_id) + 3 > budget:
                    self._publish(Topic.TASK_ASSIGN, chunk[0], TaskEvent(task_ids=chunk, placer=placer).to_value())
                    chunk, size = [], 0
                chunk.append(task_id)
                size += len(task_id) + 3  # quotes and a comma
            if chunk:
                self._publish(Topic.TASK_ASSIGN, chunk[0], TaskEvent(task_ids=chunk, placer=placer).to_value())
        if self.place_now is not None and DISPATCHER in by_placer:
            self.place_now([t for t in tasks if bound_node(t) is None])

    def retry_of(self, request: CreateTaskRequest) -> RetryPolicy:
        """The retry policy a task made from ``request`` keeps: the request's settings, else
        its class's (from the pool), else the config's."""
        return self.retry_policy.merged(self.catalog.retries(request.class_name)).merged(request.retry_settings())

    def get(self, task_id: str) -> Task:
        """The task, with the progress of its last heartbeat."""
        return self._with_progress([self.store.get(task_id)])[0]

    def find(self, query: TaskQuery) -> TaskPage:
        """A page of tasks, with live progress."""
        page = self.store.find(query)
        return TaskPage(self._with_progress(page.items), page.total)

    def _with_progress(self, tasks: list[Task]) -> list[Task]:
        live = [t.id for t in tasks if not t.lifecycle_status.is_terminal]
        if not live:
            return [t.model_copy(update={"heartbeat": seed_heartbeat(t.lifecycle_status, None)}) for t in tasks]
        if time.monotonic() < self._live_down_until:
            beats = None
        else:
            try:
                beats = self.live.heartbeats(live)
            except BackendUnavailable as exc:
                logger.warning("live state unavailable; tasks are shown without progress: %s", exc)
                self._live_down_until = time.monotonic() + self.limits.live_state_retry_s
                beats = None
        out = []
        for t in tasks:
            if t.lifecycle_status.is_terminal:
                out.append(t.model_copy(update={"heartbeat": seed_heartbeat(t.lifecycle_status, None)}))
            elif beats is None:
                out.append(t.model_copy(update={"message": "progress unavailable: live state unreachable"}))
            elif t.id in beats:
                beat = beats[t.id]
                update = {"progress": beat.progress, "message": beat.message, "heartbeat_at": beat.at}
                out.append(t.model_copy(update={**update, "heartbeat": seed_heartbeat(t.lifecycle_status, beat.at)}))
            else:
                out.append(t.model_copy(update={"heartbeat": 0}))
        return out

    # ---- change --------------------------------------------------------------------
    def update_attachments(
        self, task_id: str, patch: dict[str, Any], *, merge: bool = True, declared: bool = False, actor: str = "api"
    ) -> Task:
        """Merge ``patch`` into the attachments (or, with ``merge=False``, replace them),
        validate the result, store it as the next ``desiredVersion`` and send it to the
        running worker. ``declared``: the update comes from the task's YAML entry.

        Raises:
            TaskNotFound, InvalidTransition (task ended), ValidationFailed (merged result
            does not fit the class's model; nothing stored).
        """
        for _ in range(5):
            task = self.store.get(task_id)
            if not allowed(task.lifecycle_status, Action.UPDATE):
                raise InvalidTransition(
                    f"cannot update task {task_id!r}: it is {task.lifecycle_status.value}",
                    task_id=task_id,
                    lifecycle_status=task.lifecycle_status.value,
                )
            base = task.attachments_dict() if merge else {}
            merged = {**base, **self.catalog.aliased(task.class_name, patch)}
            data = self.catalog.normalize(task.class_name, merged)
            check_storable(data, ("attachments",))
            version = task.desired_version + 1
            changes: dict[str, Any] = {"attachments": data, "desired_version": version}
            if declared:
                changes["declared"] = data
            try:
                written = self.store.apply(
                    plan(task, Action.UPDATE, actor=actor, reason=f"version {version}", **changes)
                )
            except StaleWrite:
                continue
            carried = data if len(json.dumps(data)) <= self.limits.max_event_bytes else None
            event = UpdateEvent(task_id=task_id, version=version, attachments=carried)
            self._publish(Topic.TASK_UPDATE_ATTACHMENT, task_id, event.to_value())
            return written
        raise StaleWrite(f"task {task_id!r} kept changing; update not applied", task_id=task_id)

    def replace(
        self,
        request: CreateTaskRequest,
        pinned_node: str | None = None,
        *,
        declared: bool = False,
        actor: str = "api",
        **fields: Any,
    ) -> Task:
        """Start a task over with a new class and attachments (a declaration changed its
        class, or changed a task that had ended): the old worker is stopped, the task goes
        back to Created at a new epoch and is placed again.

        Raises:
            TaskNotFound, UnknownWorkerClass, ValidationFailed.
        """
        task_id = request.id or ""
        data = self.catalog.normalize(request.class_name, request.attachments)
        check_storable(data, ("attachments",))
        old = self.store.get(task_id)
        task = writes.apply(
            self.store,
            task_id,
            Action.REPLACE,
            actor=actor,
            class_name=request.class_name,
            attachments=data,
            priority=request.priority,
            name=request.name,
            pinned_node=pinned_node,
            declared=data if declared else None,
            **scheduling(request, task_id),
            **self.retry_of(request).fields(),
            **fields,
        )
        if not old.lifecycle_status.is_terminal:
            event = ControlEvent(task_id=task.id, action=ControlAction.CANCEL, epoch=task.epoch - 1)
            self._publish(Topic.TASK_CANCEL, task.id, event.to_value())
        self._publish(Topic.TASK_ASSIGN, task.id, waiting_event(task).to_value())
        return task

    def pause(self, task_id: str, actor: str = "api") -> Task:
        """Pause a task (its worker blocks in ``wait_if_paused``)."""
        return self._control(task_id, Action.PAUSE, actor)

    def resume(self, task_id: str, actor: str = "api") -> Task:
        """Resume a paused task."""
        return self._control(task_id, Action.RESUME, actor)

    def cancel(self, task_id: str, actor: str = "api") -> Task:
        """Cancel a task; its worker gets the stop flag, then SIGTERM, then SIGKILL."""
        return self._control(task_id, Action.CANCEL, actor)

    def retry(self, task_id: str, actor: str = "api") -> Task:
        """Run an ended task again from scratch: attempts reset (a fresh retry budget), a new
        epoch; its history says so.

        Raises:
            TaskNotFound, InvalidTransition (the task has not ended).
        """
        for _ in range(5):
            task = self.store.get(task_id)
            budget = self.retry_policy.for_task(task).max_retries
            reason = f"run again after it was {task.lifecycle_status.value}: attempts reset, {budget} retries"
            try:
                written = self.store.apply(plan(task, Action.RETRY, actor=actor, reason=reason))
            except StaleWrite:
                continue
            self.announce([written])
            return written
        raise StaleWrite(f"task {task_id!r} kept changing; retry not applied", task_id=task_id)

    def restart(self, task_id: str, actor: str = "api") -> Task:
        """The original's "set Created": run the task again from scratch, whatever its state;
        a running copy is stopped first.

        Raises:
            TaskNotFound.
        """
        task = self.store.get(task_id)
        if task.lifecycle_status.is_terminal:
            return self.retry(task_id, actor)
        request = CreateTaskRequest(
            id=task.id,
            class_name=task.class_name,
            attachments=task.attachments_dict(),
            priority=task.priority,
            name=task.name,
            description=task.description,
            resources=task.resources,
            required_labels=task.required_labels,
            preferred_labels=task.preferred_labels,
            dependencies=task.dependencies,
            dependency_condition=task.dependency_condition,
            deadline_date_time=task.deadline_date_time,
            **{name: getattr(task, name) for name in RETRY_FIELDS},
        )
        return self.replace(request, pinned_node=task.pinned_node, actor=actor)

    def delete(self, task_id: str, actor: str = "api") -> Task:
        """The original's DELETE: cancel a live task; remove an ended one's record (its id can
        be used again).

        Raises:
            TaskNotFound.
        """
        for _ in range(5):
            task = self.store.get(task_id)
            if not task.lifecycle_status.is_terminal:
                try:
                    return self.cancel(task_id, actor)
                except InvalidTransition:
                    continue  # it ended meanwhile: remove it
            try:
                self.store.delete(task_id, {"lifecycle_status": task.lifecycle_status, "epoch": task.epoch})
            except StaleWrite:
                continue
            try:
                self.live.drop_logs([task_id])  # a task made again with this id starts with none
            except BackendUnavailable as exc:
                logger.warning("task %s deleted; its output is left to expire: %s", task_id, exc)
            return task
        raise StaleWrite(f"task {task_id!r} kept changing; not deleted", task_id=task_id)

    def logs(self, task_id: str, *, after: str | None = None, limit: int = 200) -> list[tuple[str, LogLine]]:
        """A task's output lines with their cursors: its last ``limit``, or those after the
        cursor ``after``.

        Raises:
            TaskNotFound.
            BackendUnavailable: the live state, which keeps the lines, cannot be reached.
        """
        self.store.get(task_id)
        return self.live.read_logs(task_id, after=after, limit=limit)

    def _control(self, task_id: str, action: Action, actor: str) -> Task:
        task = writes.apply(self.store, task_id, action, actor=actor)
        self.notify(task, action)
        return task

    def notify(self, task: Task, action: Action) -> None:
        """Tell whoever acts next that ``task`` was just written under ``action`` (pause,
        resume or cancel): its node, or the dispatcher when it waits to be placed."""
        task_id = task.id
        if task.lifecycle_status is TaskLifecycleStatus.CREATED:  # resumed while unplaced
            self._publish(Topic.TASK_ASSIGN, task_id, waiting_event(task).to_value())
        else:
            topic = Topic.TASK_CANCEL if action is Action.CANCEL else Topic.TASK_CONTROL
            event = ControlEvent(task_id=task_id, action=ControlAction(action.value), epoch=task.epoch)
            self._publish(topic, task_id, event.to_value())

    def _publish(self, topic: Topic, key: str, value: dict[str, Any]) -> None:
        # The write is durable already; an event that cannot go out now is made up for by
        # the monitor's sweep (placement) and the nodes' reconcile sweep (everything else).
        try:
            self.bus.publish(topic, key, value)
        except BackendUnavailable as exc:
            logger.warning("task %s: %s event not published (%s); the next sweep catches up", key, topic.value, exc)


def scheduling(request: CreateTaskRequest, task_id: str) -> dict[str, Any]:
    """The task fields a request sets for its placement: resources, labels, dependencies and
    deadline.

    Raises:
        ValidationFailed: the task names itself as a dependency.
    """
    if request.dependencies and task_id in request.dependencies:
        raise ValidationFailed.of_fields(
            "bad dependencies", [{"field": "dependencies", "message": f"task {task_id!r} cannot wait for itself"}]
        )
    check_storable({"requiredLabels": request.required_labels, "preferredLabels": request.preferred_labels})
    return {
        "resources": dict(request.resources),
        "required_labels": dict(request.required_labels),
        "preferred_labels": dict(request.preferred_labels),
        "dependencies": list(request.dependencies) if request.dependencies else None,
        "dependency_condition": request.dependency_condition,
        "deadline_date_time": request.deadline_date_time,
    }
