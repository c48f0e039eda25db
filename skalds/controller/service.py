"""What the REST API does, without HTTP: validate, write conditionally, publish.

Every user action is one conditional store write followed by one event, so the effect is
durable before anyone is told, and a node that misses the event still finds the truth in
the store.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from skalds.controller.catalog import Catalog
from skalds.core import lifecycle
from skalds.core.events import ControlEvent, TaskEvent, Topic, UpdateEvent
from skalds.core.lifecycle import Action, Transition
from skalds.core.task import Task, TaskLifecycleStatus, utc_now
from skalds.errors import InvalidTransition, StaleWrite
from skalds.ports.event_bus import EventBus
from skalds.ports.live_state import LiveState
from skalds.ports.task_store import TaskPage, TaskQuery, TaskStore


class CreateTaskRequest(BaseModel):
    """Body of ``POST /api/tasks``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    class_name: str = Field(min_length=1, description="Worker class to run, e.g. MyWorker")
    attachments: dict[str, Any] = Field(default_factory=dict, description="The task's parameters")
    id: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")
    name: str | None = None
    priority: int = 0


class UpdateAttachmentsRequest(BaseModel):
    """Body of ``PATCH /api/tasks/{id}/attachments``: fields to merge into the attachments."""

    model_config = ConfigDict(extra="forbid")

    attachments: dict[str, Any]


class TaskService:
    """Create, read, update and control tasks."""

    def __init__(self, store: TaskStore, bus: EventBus, live: LiveState, catalog: Catalog) -> None:
        self.store = store
        self.bus = bus
        self.live = live
        self.catalog = catalog

    def create(self, request: CreateTaskRequest, source: str = "api", pinned_node: str | None = None) -> Task:
        """Validate and store a task, then ask for it to be placed (on ``pinned_node`` only,
        when given).

        Raises:
            UnknownWorkerClass, ValidationFailed: bad class or attachments (nothing stored).
            TaskAlreadyExists: the id is taken.
        """
        data = self.catalog.normalize(request.class_name, request.attachments)
        task = Task(
            id=request.id or uuid.uuid4().hex[:12],
            class_name=request.class_name,
            name=request.name,
            source=source,
            attachments=data,
            priority=request.priority,
            pinned_node=pinned_node,
        )
        self.store.create(task)
        self.bus.publish(Topic.TASK_ASSIGN, task.id, TaskEvent(task_ids=[task.id]).to_value())
        return task

    def get(self, task_id: str) -> Task:
        """The task, with the progress of its last heartbeat."""
        return self._with_progress([self.store.get(task_id)])[0]

    def find(self, query: TaskQuery) -> TaskPage:
        """A page of tasks, with live progress."""
        page = self.store.find(query)
        return TaskPage(self._with_progress(page.items), page.total)

    def _with_progress(self, tasks: list[Task]) -> list[Task]:
        beats = self.live.heartbeats([t.id for t in tasks if not t.lifecycle_status.is_terminal])
        return [
            t.model_copy(update={"progress": beats[t.id].progress})
            if t.id in beats and beats[t.id].progress is not None
            else t
            for t in tasks
        ]

    def update_attachments(self, task_id: str, patch: dict[str, Any], *, merge: bool = True) -> Task:
        """Merge ``patch`` into the attachments (or, with ``merge=False``, replace them),
        validate the result, store it as the next ``desiredVersion`` and send it to the
        running worker.

        Raises:
            TaskNotFound, InvalidTransition (task ended), ValidationFailed (merged result
            does not fit the class's model; nothing stored).
        """
        for _ in range(5):
            task = self.store.get(task_id)
            if task.lifecycle_status.is_terminal:
                raise InvalidTransition(
                    f"cannot update task {task_id!r}: it is {task.lifecycle_status.value}", task_id=task_id
                )
            base = task.attachments_dict() if merge else {}
            merged = {**base, **self.catalog.aliased(task.class_name, patch)}
            data = self.catalog.normalize(task.class_name, merged)
            version = task.desired_version + 1
            expect = {"epoch": task.epoch, "desired_version": task.desired_version}
            changes = {"attachments": data, "desired_version": version, "update_date_time": utc_now()}
            try:
                written = self.store.apply(Transition(task_id, expect, changes))
            except StaleWrite:
                continue
            event = UpdateEvent(task_id=task_id, version=version, attachments=data)
            self.bus.publish(Topic.TASK_UPDATE_ATTACHMENT, task_id, event.to_value())
            return written
        raise StaleWrite(f"task {task_id!r} kept changing; update not applied", task_id=task_id)

    def replace(self, request: CreateTaskRequest, pinned_node: str | None = None) -> Task:
        """Start a task over with a new class and attachments (a declaration changed its
        class, or changed a task that had ended): the old worker is stopped, the task goes
        back to Created at a new epoch and is placed again.

        Raises:
            TaskNotFound, UnknownWorkerClass, ValidationFailed.
        """
        assert request.id is not None
        data = self.catalog.normalize(request.class_name, request.attachments)
        old = self.store.get(request.id)
        task = lifecycle.apply(
            self.store,
            request.id,
            Action.REPLACE,
            class_name=request.class_name,
            attachments=data,
            priority=request.priority,
            name=request.name,
            pinned_node=pinned_node,
        )
        if not old.lifecycle_status.is_terminal:
            event = ControlEvent(task_id=task.id, action=Action.CANCEL.value, epoch=task.epoch - 1)
            self.bus.publish(Topic.TASK_CANCEL, task.id, event.to_value())
        self.bus.publish(Topic.TASK_ASSIGN, task.id, TaskEvent(task_ids=[task.id]).to_value())
        return task

    def pause(self, task_id: str) -> Task:
        """Pause a task (its worker blocks in ``wait_if_paused``)."""
        return self._control(task_id, Action.PAUSE)

    def resume(self, task_id: str) -> Task:
        """Resume a paused task."""
        return self._control(task_id, Action.RESUME)

    def cancel(self, task_id: str) -> Task:
        """Cancel a task; its worker gets the stop flag, then SIGTERM, then SIGKILL."""
        return self._control(task_id, Action.CANCEL)

    def _control(self, task_id: str, action: Action) -> Task:
        task = lifecycle.apply(self.store, task_id, action)
        if task.lifecycle_status is TaskLifecycleStatus.CREATED:  # resumed while unplaced
            self.bus.publish(Topic.TASK_ASSIGN, task_id, TaskEvent(task_ids=[task_id]).to_value())
        else:
            topic = Topic.TASK_CANCEL if action is Action.CANCEL else Topic.TASK_CONTROL
            event = ControlEvent(task_id=task_id, action=action.value, epoch=task.epoch)
            self.bus.publish(topic, task_id, event.to_value())
        return task
