"""Topic names and the payloads that travel on them.

Topic names are the seed's ``KafkaTopic`` values, plus ``task.control`` for pause/resume. Every
payload names the task and the epoch or version it is about, so a consumer that sees an event
twice, or late, can tell and ignore it.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Topic(enum.StrEnum):
    """The event topics (``KafkaTopic`` in the seed)."""

    TASK_ASSIGN = "task.assign"  # place (dispatcher) / start (executor) these tasks
    TASK_CANCEL = "task.cancel"  # stop the worker of a cancelled task
    TASK_UPDATE_ATTACHMENT = "task.update.attachment"  # new attachments for a running task
    TASK_CONTROL = "task.control"  # pause / resume a running task
    TASKWORKER_UPDATE = "taskworker.update"  # a task's status changed (from nodes)


#: Topics an executor (node or edge) consumes.
NODE_TOPICS = (Topic.TASK_ASSIGN, Topic.TASK_CANCEL, Topic.TASK_UPDATE_ATTACHMENT, Topic.TASK_CONTROL)


class _Payload(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_value(self) -> dict[str, Any]:
        """The JSON-ready dict to publish."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class TaskEvent(_Payload):
    """ "Look at these tasks": published on ``task.assign`` by whoever created or requeued
    them (dispatcher places them), and by the dispatcher once placed (the executor starts
    them). The seed publishes it with ``task_ids`` only; that still works."""

    task_ids: list[str] = Field(default_factory=list)
    executor: str | None = None
    epoch: int | None = None


class ControlEvent(_Payload):
    """Pause, resume or cancel the worker of one task at a given epoch."""

    task_id: str
    action: str  # "pause" | "resume" | "cancel"
    epoch: int | None = None


class UpdateEvent(_Payload):
    """New attachments (already validated) for a task, numbered by ``version``."""

    task_id: str
    version: int
    attachments: dict[str, Any]


class StatusEvent(_Payload):
    """A task changed state, as seen by its executor (or the controller). ``at`` is UNIX
    seconds: the worker's clock for started/applied, the node's when the process exited."""

    task_id: str
    status: str
    executor: str | None = None
    epoch: int | None = None
    applied_version: int | None = None
    at: float | None = None
    exited: bool = False  # the worker process is gone
    reason: str | None = None  # why the node stopped it, when it did
