"""Topic names and the payloads that travel on them.

Topic names are the seed's ``KafkaTopic`` values, plus ``task.control`` for pause/resume. Every
payload names the task and the epoch or version it is about, so a consumer that sees an event
twice, or late, can tell and ignore it. The seed's own ``TaskEvent{taskIds}`` is accepted on
every task topic: it means "look these tasks up in the store".
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from skalds.core.task import TaskLifecycleStatus, now_ms


class Topic(enum.StrEnum):
    """The event topics (``KafkaTopic`` in the seed)."""

    TASK_ASSIGN = "task.assign"  # place (dispatcher) / start (executor) these tasks
    TASK_CANCEL = "task.cancel"  # stop the worker of a cancelled task
    TASK_UPDATE_ATTACHMENT = "task.update.attachment"  # new attachments for a running task
    TASK_CONTROL = "task.control"  # pause / resume a running task
    TASKWORKER_UPDATE = "taskworker.update"  # a task's status changed (from nodes)


#: Topics an executor (node or edge) consumes.
NODE_TOPICS = (Topic.TASK_ASSIGN, Topic.TASK_CANCEL, Topic.TASK_UPDATE_ATTACHMENT, Topic.TASK_CONTROL)


class ControlAction(enum.StrEnum):
    """What a control event asks of a task's worker."""

    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    PREEMPT = "preempt"  # stop the copy at this epoch and hand the task back (no retry consumed)


class ExitKind(enum.StrEnum):
    """How a worker process ended, as its node judged it."""

    FINISHED = "finished"  # the main handler returned
    FAILED = "failed"  # a hook raised
    LOST = "lost"  # died without reporting: killed from outside, crashed, or went silent
    STOPPED = "stopped"  # its node stopped it on purpose (cancel, fencing, shutdown)
    PREEMPTED = "preempted"  # its node stopped it for a higher priority task, and handed it back
    SELF_FENCED = "self_fenced"  # it stopped itself: it had not heard its node's lease in time


class _Payload(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_value(self) -> dict[str, Any]:
        """The JSON-ready dict to publish."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class TaskEvent(_Payload):
    """ "Look at these tasks": published on ``task.assign`` by whoever created or requeued
    them (the dispatcher places them), and by the dispatcher once placed (the executor starts
    them). The seed's fields are all here; its scripts publish ``task_ids`` only, on any task
    topic, and that still works.

    ``executor`` and ``epoch`` name the placement an event announces: only that node acts.
    ``placer`` says who places a task that waits: ``dispatcher``, or the node it is bound to;
    other nodes skip the event without reading the store. An event with neither (the seed's)
    makes every node look the tasks up, as the seed's nodes did.
    """

    id: str | None = None
    title: str | None = None
    initiator: str | None = None
    recipient: str | None = None
    create_date_time: int = Field(default_factory=now_ms)
    update_date_time: int = Field(default_factory=now_ms)
    task_ids: list[str] = Field(default_factory=list)
    executor: str | None = None
    epoch: int | None = None
    placer: str | None = None


class UpdateTaskWorkerEvent(_Payload):
    """The seed's event that carried new attachments to a worker (its ``taskworker.update``)."""

    attachments: Any = None


class ControlEvent(_Payload):
    """Pause, resume or cancel the worker of one task at a given epoch."""

    task_id: str
    action: ControlAction
    epoch: int | None = None
    reason: str | None = None  # why, for the node's log (a preemption names its task)


class UpdateEvent(_Payload):
    """New attachments (already validated) for a task, numbered by ``version``. Large
    attachments are left out (``attachments`` is None): the executor reads them from the
    store, so no event outgrows the broker's message limit."""

    task_id: str
    version: int
    attachments: dict[str, Any] | None = None


class StatusEvent(_Payload):
    """A task changed state, as seen by its executor (or the controller). ``at`` is epoch
    milliseconds: the worker's clock for started/applied, the node's when the process exited.
    ``status`` is None when the state did not change (a worker stopped on purpose)."""

    task_id: str
    status: TaskLifecycleStatus | None = None
    executor: str | None = None
    epoch: int | None = None
    applied_version: int | None = None
    at: int | None = None
    at_us: int | None = None  # the same moment in epoch microseconds (latencies of a few ms)
    exit: ExitKind | None = None  # set when the worker process is gone
    reason: str | None = None  # why the node stopped it, when it did
    error: str | None = None  # why the run failed or was lost, when it was
    cause: str | None = None  # an AttemptOutcome value when a run ended for good or was retried

    @property
    def exited(self) -> bool:
        """True when the worker process is gone."""
        return self.exit is not None


def seed_task_ids(value: dict[str, Any]) -> list[str] | None:
    """The task ids of a seed-style ``TaskEvent{taskIds}`` payload, or None if ``value`` is
    not one (Skalds' own events name a single ``taskId``)."""
    if "taskId" in value or "task_id" in value:
        return None
    ids = value.get("taskIds", value.get("task_ids"))
    if isinstance(ids, list) and all(isinstance(i, str) for i in ids):
        return list(ids)
    return None
