"""The bodies of the REST API's task requests (also what a declared YAML task becomes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.alias_generators import to_camel

from skalds.core.requirements import NAME_PATTERN
from skalds.core.task import DependencyCondition

TASK_ID_PATTERN = r"^[A-Za-z0-9_.:\-]+$"
#: The largest priority; 0 is the lowest (the seed's range).
MAX_PRIORITY = 10


def check_task_id(value: str) -> str:
    """Refuse the ids that are path segments of their own (``.``, ``..``)."""
    if value in (".", ".."):
        raise ValueError("'.' and '..' are not task ids")
    return value


#: A resource or label name; a label value; a task id (as a dependency).
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NAME_PATTERN)]
LabelValue = Annotated[str, StringConstraints(max_length=200)]
TaskId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=TASK_ID_PATTERN)]


class CreateTaskRequest(BaseModel):
    """Body of ``POST /api/tasks``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    class_name: str = Field(min_length=1, max_length=200, description="Worker class to run, e.g. MyWorker")
    attachments: dict[str, Any] = Field(default_factory=dict, description="The task's parameters")
    id: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=TASK_ID_PATTERN, description="Task id (default: generated)"
    )
    name: str | None = Field(default=None, max_length=1000, description="A display name")
    description: str | None = Field(default=None, max_length=10_000, description="What the task is for")
    priority: int = Field(default=0, ge=0, le=MAX_PRIORITY, description="0 (lowest) .. 10 (highest)")
    resources: dict[Name, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=dict,
        max_length=64,
        description="What one run holds on its node, over its class's: slots (default 1) and named resources "
        "the nodes offer (cpu, memory_mb, gpu, any name)",
    )
    required_labels: dict[Name, LabelValue] = Field(
        default_factory=dict, max_length=64, description="Labels a node must carry to run the task"
    )
    preferred_labels: dict[Name, LabelValue] = Field(
        default_factory=dict, max_length=64, description="Labels preferred among the nodes that can run it"
    )
    dependencies: list[TaskId] | None = Field(
        default=None, max_length=1000, description="Ids of tasks this one waits for (see dependencyCondition)"
    )
    dependency_condition: DependencyCondition = Field(
        default=DependencyCondition.FINISHED,
        description="finished: start once every dependency Finished; running: once every one has started",
    )
    deadline_date_time: int | None = Field(
        default=None,
        ge=0,
        le=2**53,
        description="Epoch ms: still waiting for a node then (never started), the task fails",
    )

    _check_id = field_validator("id")(lambda cls, v: v if v is None else check_task_id(v))


class UpdateAttachmentsRequest(BaseModel):
    """Body of ``PATCH /api/tasks/{id}/attachments``: fields to merge into the attachments."""

    model_config = ConfigDict(extra="forbid")

    attachments: dict[str, Any]


class SetStatusRequest(BaseModel):
    """Body of the original's ``PUT /api/tasks/{id}/status``: ``Created`` runs the task again
    from scratch, ``Cancelled`` cancels it."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    lifecycle_status: Literal["Created", "Cancelled"]


class ReplaceAttachmentsRequest(BaseModel):
    """Body of the original's ``PUT /api/tasks/{id}/attachments``: the whole new attachments."""

    model_config = ConfigDict(extra="forbid")

    attachments: dict[str, Any]
