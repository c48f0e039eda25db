"""The task record every component agrees on.

Field names are snake_case in Python and camelCase in JSON, as the seed's records were, so a
document written by any Skalds component (or by the seed's own code) reads back the same.
Times are integer UNIX epoch milliseconds, as in the seed.
"""

from __future__ import annotations

import enum
import time
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator
from pydantic.alias_generators import to_camel


def now_ms() -> int:
    """The current wall-clock time in epoch milliseconds (the only clock records use)."""
    return time.time_ns() // 1_000_000


def to_ms(value: Any) -> Any:
    """Epoch milliseconds from what older records and callers hold: a datetime, an ISO 8601
    string, or a number of milliseconds. Anything else is returned for pydantic to reject."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return value
    if isinstance(value, float):
        return int(value)
    return value


class TaskLifecycleStatus(enum.StrEnum):
    """Where a task is in its life. The names are the seed's."""

    CREATED = "Created"
    ASSIGNING = "Assigning"
    RUNNING = "Running"
    PAUSED = "Paused"
    FINISHED = "Finished"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    # The seed's older spelling of the members (aliases: the same seven states).
    Created = "Created"
    Assigning = "Assigning"
    Running = "Running"
    Paused = "Paused"
    Finished = "Finished"
    Failed = "Failed"
    Cancelled = "Cancelled"

    @property
    def is_terminal(self) -> bool:
        """True for states a task never leaves (except by an explicit retry or replace)."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({TaskLifecycleStatus.FINISHED, TaskLifecycleStatus.FAILED, TaskLifecycleStatus.CANCELLED})
#: States in which a task holds (or is about to hold) a worker process on its executor.
ACTIVE_STATES = frozenset({TaskLifecycleStatus.ASSIGNING, TaskLifecycleStatus.RUNNING, TaskLifecycleStatus.PAUSED})
LIVE_STATES = frozenset(set(TaskLifecycleStatus) - TERMINAL_STATES)


class TaskMode(enum.StrEnum):
    """The seed's ``ModeEnum``: who places the task."""

    ACTIVE = "Active"  # declared by an edge's YAML; runs there, never dispatched elsewhere
    PASSIVE = "Passive"  # placed on a node by the dispatcher (the default)
    PASSIVE_PROCESS = "PassiveProcess"  # the one task of a single_process Skald

    @classmethod
    def list(cls) -> set[str]:
        """The values, as the seed's enum offered them."""
        return {m.value for m in cls}


class DependencyCondition(enum.StrEnum):
    """When the tasks a task depends on let it start."""

    RUNNING = "running"  # each has started: Running (or Paused on a node), or Finished already
    FINISHED = "finished"  # each has Finished


class AttemptOutcome(enum.StrEnum):
    """How one run of a task ended."""

    FINISHED = "finished"  # the main handler returned
    FAILED = "failed"  # the worker raised
    CANCELLED = "cancelled"  # stopped by a user's cancel
    WORKER_LOST = "worker_lost"  # the process died without reporting (signal, crash, silence)
    NODE_LOST = "node_lost"  # its node stopped renewing its lease
    HANDED_BACK = "handed_back"  # its node stopped cleanly or lost contact, and gave it back
    REPLACED = "replaced"  # a new declaration started it over
    PREEMPTED = "preempted"  # displaced by a higher priority task


class TaskError(BaseModel):
    """Why a task's current attempt failed: the message, and the traceback or exit code."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    message: str
    traceback: str | None = None
    exit_code: int | None = None


class Attempt(BaseModel):
    """One finished run of a task, kept in ``Task.attempts`` (newest last)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    attempt: int
    epoch: int
    node: str | None = None
    started_at: int | None = None
    ended_at: int
    outcome: AttemptOutcome
    error: str | None = None


class TransitionRecord(BaseModel):
    """One change of a task, kept in ``Task.history`` (newest last): when, who (``api``,
    ``yaml:<pool>``, ``dispatcher``, ``monitor``, a node's id...), what, the state it led to,
    the epoch and attempt after it, and why."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    at: int
    actor: str
    action: str
    status: TaskLifecycleStatus
    epoch: int
    attempt: int = 0
    reason: str | None = None


#: How many past attempts a task keeps.
MAX_ATTEMPTS_KEPT = 20
#: How many entries each history list of a task keeps (its newest).
KEPT = {"attempts": MAX_ATTEMPTS_KEPT, "history": 200}


class Task(BaseModel):
    """One unit of long-lived work and everything the system knows about it.

    ``epoch`` fences writers: it grows each time the task is (re)assigned, and every store
    write names the epoch it expects. ``desired_version`` counts accepted attachment updates;
    ``applied_version`` is the last one the running worker's handler has returned from.
    ``attempt`` counts the retries consumed; ``attempts`` keeps how earlier runs ended.
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
    description: str | None = None
    source: str = "api"
    mode: TaskMode = TaskMode.PASSIVE
    is_persistent: bool = True
    dependencies: list[str] | None = None
    attachments: Any = Field(default_factory=dict)
    #: The attachments as a YAML file declared them last (None: not declared by a file). A
    #: reload changes the task only when the file's entry differs from this, so a PATCH made
    #: through the API lasts until the entry is edited.
    declared: dict[str, Any] | None = None
    lifecycle_status: TaskLifecycleStatus = TaskLifecycleStatus.CREATED
    executor: str | None = None
    #: Only this node may run the task (an edge node's declared tasks); None = any node.
    pinned_node: str | None = None
    priority: int = 0
    #: Slots and named resources one run needs (``slots``, ``cpu``, ``memory_mb``, ``gpu``, any
    #: name a node offers), over what its class declares; a run takes one slot unless it says.
    resources: dict[str, float] = Field(default_factory=dict)
    #: Labels a node must carry (every one of them) to run the task, over its class's.
    required_labels: dict[str, str] = Field(default_factory=dict)
    #: Labels preferred among the nodes that can run it, over its class's.
    preferred_labels: dict[str, str] = Field(default_factory=dict)
    #: When ``dependencies`` let the task start.
    dependency_condition: DependencyCondition = DependencyCondition.FINISHED
    #: What the task holds on its executor while placed there (written by its placement).
    holds: dict[str, float] | None = None
    #: Why the task waits for a node, while it does (None once placed).
    pending_reason: str | None = None
    epoch: int = 0
    attempt: int = 0
    desired_version: int = 0
    applied_version: int = 0
    #: Live figures from the worker's last heartbeat (filled in on read, never stored).
    progress: float | None = None
    message: str | None = None
    #: The original's heartbeat number: changes every second while a worker beats; 200, -1 or
    #: -2 once Finished, Failed or Cancelled; 0 when no worker has beaten yet.
    heartbeat: int | None = None
    #: When the worker last beat (epoch ms), or None.
    heartbeat_at: int | None = None
    #: The current attempt's failure: a short message (``error``), the exception text with its
    #: traceback when there is one (``exception``), and both structured (``error_detail``).
    error: str | None = None
    exception: str | None = None
    error_detail: TaskError | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    history: list[TransitionRecord] = Field(default_factory=list)
    #: Not placed again before this time (epoch ms): the retry backoff.
    retry_at: int | None = None
    #: The task's own retry policy: how many lost runs it may retry, and the backoff before
    #: retry n (``retry_backoff_s * 2^(n-1)`` seconds, at most ``retry_backoff_max_s``). Set
    #: when the task is created (the request's values, else its class's in the pool, else the
    #: config's); None, in records written before, means the config's of whoever judges.
    max_retries: int | None = None
    retry_backoff_s: float | None = Field(None, alias="retryBackoff")
    retry_backoff_max_s: float | None = Field(None, alias="retryBackoffMax")
    started_at: int | None = None
    create_date_time: int = Field(default_factory=now_ms)
    update_date_time: int = Field(default_factory=now_ms)
    #: A start deadline (epoch ms): a task that has not begun a first run by then is Failed;
    #: one that has run is never stopped or failed by it.
    deadline_date_time: int | None = None

    @field_validator(
        "create_date_time", "update_date_time", "started_at", "retry_at", "deadline_date_time", mode="before"
    )
    @classmethod
    def _as_ms(cls, value: Any) -> Any:
        return to_ms(value)

    @field_validator("error", "exception", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        # Records written by earlier versions kept the structured error under "error".
        if isinstance(value, dict):
            return value.get("message")
        return value

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


#: The original's terminal heartbeat values.
SEED_HEARTBEATS = {TaskLifecycleStatus.FINISHED: 200, TaskLifecycleStatus.FAILED: -1, TaskLifecycleStatus.CANCELLED: -2}


def seed_heartbeat(status: TaskLifecycleStatus, beat_at_ms: int | None) -> int:
    """The original's heartbeat number for a task in ``status`` whose worker last beat at
    ``beat_at_ms``: a value that changes every second while it beats (0..199), the terminal
    value once it ended, 0 before any beat."""
    if status in SEED_HEARTBEATS:
        return SEED_HEARTBEATS[status]
    return 0 if beat_at_ms is None else (beat_at_ms // 1000) % 200


def failure_fields(error: TaskError | None) -> dict[str, Any]:
    """The three error fields of a task for ``error`` (all None when there is none)."""
    if error is None:
        return {"error": None, "exception": None, "error_detail": None}
    return {"error": error.message, "exception": error.traceback or error.message, "error_detail": error}


def record_problem(exc: Exception) -> str:
    """One line saying why a stored record is not a task (bad JSON, or pydantic's errors)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors())
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


#: ``source`` of the placeholder a store returns for a record it cannot read.
UNREADABLE = "unreadable"


def unreadable_task(task_id: str, class_name: str | None, problem: str) -> Task:
    """What a store returns for a record it cannot read as a task: a Failed task whose error
    says why, so listings, restarts and monitors carry on around it. Replacing or deleting
    it writes a good record again."""
    error = TaskError(message=f"unreadable task record: {problem}")
    return Task(
        id=task_id,
        class_name=class_name or "?",
        lifecycle_status=TaskLifecycleStatus.FAILED,
        source=UNREADABLE,
        **failure_fields(error),
    )
