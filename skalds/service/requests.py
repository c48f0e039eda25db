"""The bodies of the REST API's task requests (also what a declared YAML task becomes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from skalds.core.lifecycle import RETRY_FIELDS

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
