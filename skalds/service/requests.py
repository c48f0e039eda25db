"""The bodies of the REST API's task requests (also what a declared YAML task becomes)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from skalds.core.lifecycle import RETRY_FIELDS
from skalds.core.requirements import NAME_PATTERN
from skalds.core.task import DependencyCondition, TaskLifecycleStatus
from skalds.errors import ValidationFailed
from skalds.ports.task_store import TaskQuery

TASK_ID_PATTERN = r"^[A-Za-z0-9_.:\-]+$"
#: The largest priority; 0 is the lowest (the seed's range).
MAX_PRIORITY = 10
#: The most retries a task or class may ask for.
MAX_RETRIES = 1000
#: The longest retry backoff a task or class may ask for, in seconds (a day).
MAX_BACKOFF_S = 86400.0


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
    max_retries: int | None = Field(
        default=None,
        ge=0,
        le=MAX_RETRIES,
        description="Retries after a lost run, then Failed (default: its class's, else node.max_retries)",
    )
    retry_backoff_s: float | None = Field(
        default=None,
        alias="retryBackoff",
        ge=0,
        le=MAX_BACKOFF_S,
        allow_inf_nan=False,
        description="Seconds before retry n: retryBackoff * 2^(n-1) (default: its class's, else node.retry_backoff_s)",
    )
    retry_backoff_max_s: float | None = Field(
        default=None,
        alias="retryBackoffMax",
        ge=0,
        le=MAX_BACKOFF_S,
        allow_inf_nan=False,
        description="... at most this long (default: its class's, else node.retry_backoff_max_s, "
        "and never below retryBackoff)",
    )

    _check_id = field_validator("id")(lambda cls, v: v if v is None else check_task_id(v))

    @field_validator("retry_backoff_max_s")
    @classmethod
    def _cap_not_below_backoff(cls, value: float | None, info: ValidationInfo) -> float | None:
        check_backoff_cap(info.data.get("retry_backoff_s"), value, "retryBackoff")
        return value

    def retry_settings(self) -> dict[str, Any]:
        """The retry settings this request gives (None: not given), as task fields."""
        return {name: getattr(self, name) for name in RETRY_FIELDS}


def check_backoff_cap(backoff_s: float | None, cap_s: float | None, backoff_name: str) -> None:
    """Refuse a backoff cap below the backoff given beside it."""
    if backoff_s is not None and cap_s is not None and cap_s < backoff_s:
        raise ValueError(f"must be >= {backoff_name} ({backoff_s:g})")


class CreateBatchRequest(BaseModel):
    """Body of ``POST /api/tasks/batch``: the tasks to create, all or none."""

    model_config = ConfigDict(extra="forbid")

    items: list[CreateTaskRequest] = Field(
        description="The tasks, each as POST /api/tasks takes it; at most controller.max_batch"
    )


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


#: State names in any case -> the state.
STATES = {s.value.lower(): s for s in TaskLifecycleStatus}
#: The latest time a filter may name (epoch ms, year 33658): larger is a mistake.
MAX_TIME_MS = 10**15


class TaskFilter(BaseModel):
    """Which tasks: the filters of ``GET /api/tasks``, also what an action by filter
    (``POST /api/tasks/cancel``...) takes as its body. Filters combine with AND; an absent
    one matches every task."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    lifecycle_status: list[str] | None = Field(
        None, max_length=20, description="States (names in any case, several allowed), or one regular expression"
    )
    class_name: str | None = Field(None, max_length=200, description="Case-insensitive regular expression")
    id: str | None = Field(None, max_length=200, description="Case-insensitive regular expression")
    executor: str | None = Field(None, max_length=200, description="The node running the task, exactly")
    source: str | None = Field(None, max_length=200, description="Who created it (api, yaml:<pool>...), exactly")
    created_after: int | None = Field(None, ge=0, le=MAX_TIME_MS, description="Created at or after (epoch ms)")
    created_before: int | None = Field(None, ge=0, le=MAX_TIME_MS, description="Created before (epoch ms)")
    updated_after: int | None = Field(None, ge=0, le=MAX_TIME_MS, description="Last changed at or after (epoch ms)")
    updated_before: int | None = Field(None, ge=0, le=MAX_TIME_MS, description="Last changed before (epoch ms)")

    @field_validator("lifecycle_status", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def given(self) -> dict[str, Any]:
        """The filters set (camelCase names), for messages and history."""
        given = self.model_dump(by_alias=True, exclude_none=True, include=set(TaskFilter.model_fields))
        return {k: v for k, v in given.items() if v not in ("", [])}

    def query(self, **paging: Any) -> TaskQuery:
        """The store query of these filters (``paging``: further TaskQuery fields).

        Raises:
            ValidationFailed: a pattern is not a regular expression, or several states are
                given and not all are state names; ``errors`` names the filter.
        """
        statuses, status_pattern = None, None
        if self.lifecycle_status:
            if all(v.lower() in STATES for v in self.lifecycle_status):
                statuses = [STATES[v.lower()] for v in self.lifecycle_status]
            elif len(self.lifecycle_status) == 1:
                status_pattern = _pattern("lifecycleStatus", self.lifecycle_status[0])
            else:
                raise ValidationFailed.of_fields(
                    "bad filter", [{"field": "lifecycleStatus", "message": "several values must all be state names"}]
                )
        return TaskQuery(
            lifecycle_status=statuses,
            status_pattern=status_pattern,
            class_pattern=_pattern("className", self.class_name),
            id_pattern=_pattern("id", self.id),
            executor=self.executor or None,
            source=self.source or None,
            created_after=self.created_after,
            created_before=self.created_before,
            updated_after=self.updated_after,
            updated_before=self.updated_before,
            **paging,
        )


def _pattern(name: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationFailed.of_fields(
            "bad filter", [{"field": name, "message": f"not a regular expression: {exc}"}]
        ) from exc
    return value


class FilterActionRequest(TaskFilter):
    """Body of ``POST /api/tasks/cancel`` (and ``/pause``, ``/resume``): the filters of
    ``GET /api/tasks``; at least one, or ``all``."""

    all: bool = Field(False, description="Act on every task the action applies to when no filter is given")
