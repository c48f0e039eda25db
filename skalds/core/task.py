"""The task record every component agrees on.

Field names are snake_case in Python and camelCase in JSON, as the seed's records were, so a
document written by any Skalds component (or by the seed's own code) reads back the same.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer
from pydantic.alias_generators import to_camel


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (the only clock records use)."""
    return datetime.now(UTC)


class TaskLifecycleStatus(enum.StrEnum):
    """Where a task is in its life. The names are the seed's."""

    CREATED = "Created"
    ASSIGNING = "Assigning"
    RUNNING = "Running"
    PAUSED = "Paused"
    FINISHED = "Finished"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def is_terminal(self) -> bool:
        """True for states a task never leaves."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({TaskLifecycleStatus.FINISHED, TaskLifecycleStatus.FAILED, TaskLifecycleStatus.CANCELLED})
#: States in which a task holds (or is about to hold) a worker process on its executor.
ACTIVE_STATES = frozenset({TaskLifecycleStatus.ASSIGNING, TaskLifecycleStatus.RUNNING, TaskLifecycleStatus.PAUSED})


class TaskError(BaseModel):
    """Why a task failed: the message, and the traceback or exit code when there is one."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    message: str
    traceback: str | None = None
    exit_code: int | None = None


class Task(BaseModel):
    """One unit of long-lived work and everything the system knows about it.

    ``epoch`` fences writers: it grows each time the task is (re)assigned, and every store
    write names the epoch it expects. ``desired_version`` counts accepted attachment updates;
    ``applied_version`` is the last one the running worker's handler has returned from.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_enum_values=False,
        arbitrary_types_allowed=True,
    )

    id: str
    class_name: str
    name: str | None = None
    source: str = "api"
    attachments: Any = Field(default_factory=dict)
    lifecycle_status: TaskLifecycleStatus = TaskLifecycleStatus.CREATED
    executor: str | None = None
    #: Only this node may run the task (an edge node's declared tasks); None = any node.
    pinned_node: str | None = None
    priority: int = 0
    epoch: int = 0
    attempt: int = 0
    desired_version: int = 0
    applied_version: int = 0
    progress: float | None = None
    error: TaskError | None = None
    create_date_time: datetime = Field(default_factory=utc_now)
    update_date_time: datetime = Field(default_factory=utc_now)

    @field_serializer("attachments")
    def _dump_attachments(self, value: Any) -> Any:
        # The seed passes a pydantic model as attachments; store it by its JSON aliases.
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json", by_alias=True)
        return value

    def attachments_dict(self) -> dict[str, Any]:
        """The attachments as a plain JSON-ready dict, whatever form they were given in."""
        value = self.attachments
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json", by_alias=True)
        return dict(value or {})

    def to_doc(self) -> dict[str, Any]:
        """The JSON document form (camelCase keys), as stores keep it and the API shows it."""
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Task:
        """Rebuild a task from its JSON document form."""
        return cls.model_validate(doc)
