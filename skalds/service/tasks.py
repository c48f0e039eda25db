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
from dataclasses import dataclass
from typing import Any

from skalds.config.schema import DEFAULTS
from skalds.core.dispatch import waiting_event
from skalds.core.events import ControlAction, ControlEvent, Topic, UpdateEvent
from skalds.core.lifecycle import Action, allowed, plan
from skalds.core.records import LogLine
from skalds.core.storable import check_storable
from skalds.core.task import Task, TaskLifecycleStatus, TransitionRecord, seed_heartbeat
from skalds.errors import BackendUnavailable, InvalidTransition, StaleWrite, ValidationFailed
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
    """

    max_event_bytes: int = DEFAULTS.controller.max_event_bytes
    live_state_retry_s: float = 2.0


class TaskService:
    """Create, read, update and control tasks."""

    def __init__(
        self, store: TaskStore, bus: EventBus, live: LiveState, catalog: Catalog, limits: ServiceLimits | None = None
    ) -> None:
        self.store = store
        self.bus = bus
        self.live = live
        self.catalog = catalog
        self.limits = limits or ServiceLimits()
        self._live_down_until = 0.0

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
        check_storable({"name": request.name, "description": request.description})
        data = self.catalog.normalize(request.class_name, request.attachments)
        check_storable(data, ("attachments",))
        task_id = request.id or uuid.uuid4().hex[:12]
        task = Task(
            id=task_id,
            class_name=request.class_name,
            name=request.name,
            description=request.description,
            source=source,
            attachments=data,
            priority=request.priority,
            pinned_node=pinned_node,
            declared=data if declared else None,
            **scheduling(request, task_id),
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
        self.store.create(task)
        self._publish(Topic.TASK_ASSIGN, task.id, waiting_event(task).to_value())
        return task

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
        """Run an ended task again from scratch (attempts reset, a new epoch).

        Raises:
            TaskNotFound, InvalidTransition (the task has not ended).
        """
        task = writes.apply(self.store, task_id, Action.RETRY, actor=actor)
        self._publish(Topic.TASK_ASSIGN, task_id, waiting_event(task).to_value())
        return task

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
        if task.lifecycle_status is TaskLifecycleStatus.CREATED:  # resumed while unplaced
            self._publish(Topic.TASK_ASSIGN, task_id, waiting_event(task).to_value())
        else:
            topic = Topic.TASK_CANCEL if action is Action.CANCEL else Topic.TASK_CONTROL
            event = ControlEvent(task_id=task_id, action=ControlAction(action.value), epoch=task.epoch)
            self._publish(topic, task_id, event.to_value())
        return task

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
