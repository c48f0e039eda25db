"""Response bodies of the REST API, typed, so the OpenAPI document says what really comes back.

The original Skalds' shapes (its ``api/models.py``) are the floor: every field it answered with
is here under its name; Skalds' own fields sit beside them. Everything is camelCase; times are
epoch milliseconds.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from skalds.core.task import Task, TransitionRecord


class Body(BaseModel):
    """camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class FieldError(BaseModel):
    """One field at fault."""

    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer: the error's kind, what went wrong, the fields at fault for a
    validation error, and further details of the error."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="The kind of error, e.g. ValidationFailed, TaskNotFound")
    detail: str = Field(description="What went wrong, for people")
    errors: list[FieldError] | None = None


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting error answers with these status codes."""
    return {code: {"model": ErrorBody} for code in codes}


#: Error answers any request may get: access (401, 403, 421), size (413), input (422) and a
#: backend that is away (503).
COMMON_ERRORS = errors(401, 403, 413, 421, 422, 503)


class TaskPage(Body):
    """``GET /api/tasks``: one page, newest first unless asked otherwise."""

    items: list[Task]
    total: int = Field(description="Tasks matching the filters, in all")
    page: int
    page_size: int
    offset: int
    limit: int


class TaskBatch(Body):
    """``POST /api/tasks/batch``: every task created, in the order given."""

    items: list[Task]
    total: int


class FilterResult(Body):
    """``POST /api/tasks/cancel`` (``/pause``, ``/resume``): what an action by filter did."""

    action: str
    matched: int = Field(description="Tasks the filters matched in a state the action applies to")
    count: int = Field(description="Tasks changed")
    ids: list[str] = Field(description="The tasks changed, in creation order")
    skipped: list[str] = Field(description="Matched, but ended or changed meanwhile: left as they are")


class TaskHistory(Body):
    """``GET /api/tasks/{id}/history``: every change of a task, oldest first."""

    task_id: str
    items: list[TransitionRecord]


class TaskLogLine(Body):
    """One line a task's worker wrote, with its cursor ``id``."""

    id: str = Field(description="Cursor: pass as `after` (or Last-Event-ID) to read what follows")
    at: int = Field(description="When the node read the line, epoch milliseconds")
    stream: str = Field(description="stdout, stderr, or skalds (notes of the node itself)")
    level: str | None = Field(None, description="The logging level of a logging record; null for plain output")
    text: str
    node: str = Field(description="The node that ran the worker")
    epoch: int = Field(description="The task's epoch of that run")
    attempt: int = 0


class TaskLogs(Body):
    """``GET /api/tasks/{id}/logs``: the task's newest output lines, oldest first."""

    task_id: str
    lines: list[TaskLogLine]
    cursor: str | None = Field(description="The last line's cursor: follow with `?follow=true&after=<cursor>`")


class SuccessResponse(Body):
    """The original's answer to an action."""

    success: bool = True
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class TaskHeartbeat(Body):
    """``GET /api/tasks/{id}/heartbeat``."""

    task_id: str
    heartbeat: int
    status: str
    is_alive: bool
    is_assigning: bool
    error: str | None
    exception: str | None
    last_update: int | None = Field(description="When the worker last beat (epoch ms)")
    heartbeat_history: list[int]
    progress: float | None = None
    message: str | None = None


class Skald(Body):
    """A node or edge (a "Skald"), online or seen recently."""

    id: str
    type: str = Field(description="node or edge")
    status: str = Field(description="online or offline")
    last_heartbeat: str = Field(description="When its lease was last renewed (epoch ms, as text)")
    supported_tasks: list[str]
    current_tasks: list[str]
    heartbeat: int
    task_count: int
    capacity: int
    running: int
    labels: dict[str, str]
    offers: dict[str, float] = Field(
        default_factory=dict, description="Named resources it offers besides its capacity (cpu, gpu, ...)"
    )
    class_specs: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="className -> what each of its tasks needs here (resources, labels)"
    )
    draining: bool
    host: str
    pid: int
    started_at: int
    heartbeat_at: int
    last_seen: int
    files: list[dict[str, Any]] = Field(default_factory=list)


class SkaldPage(Body):
    """``GET /api/skalds``."""

    items: list[Skald]
    total: int


class SkaldTask(Body):
    """A task a Skald runs."""

    id: str
    class_name: str
    assigned_at: int | None = None


class SkaldTasks(Body):
    """``GET /api/skalds/{id}/tasks``."""

    skald_id: str
    tasks: list[SkaldTask]
    total_tasks: int


class SkaldStatusDetails(Body):
    can_accept_tasks: bool
    last_heartbeat_age: int
    tasks: list[SkaldTask]


class SkaldStatus(Body):
    """``GET /api/skalds/{id}/status``."""

    skald_id: str
    status: str
    type: str
    heartbeat: int
    last_update: int
    task_count: int
    is_online: bool
    uptime: int | None = Field(description="Milliseconds since it started")
    details: SkaldStatusDetails


class SkaldHeartbeat(Body):
    """``GET /api/skalds/{id}/heartbeat``."""

    skald_id: str
    heartbeat: int
    last_update: int
    heartbeat_age: int
    is_online: bool
    timestamp: int


class SkaldStatisticsDetails(Body):
    online_nodes: int
    online_edges: int
    busy_nodes: int
    idle_nodes: int


class SkaldStatistics(Body):
    """``GET /api/skalds/summary/statistics``."""

    total_skalds: int
    online_skalds: int
    offline_skalds: int
    node_skalds: int
    edge_skalds: int
    available_nodes: int
    total_running_tasks: int
    average_tasks_per_skald: float
    details: SkaldStatisticsDetails


class Health(Body):
    """``GET /api/system/health``: healthy, degraded (the live state is away) or unhealthy
    (the task store is away; answered with 503)."""

    status: str
    timestamp: int
    services: dict[str, str]
    backend: str
    nodes: int
    uptime_s: float


class Component(Body):
    name: str
    running: bool
    details: dict[str, Any] = Field(default_factory=dict)


class SystemStatus(Body):
    """``GET /api/system/status``."""

    mode: str
    components: list[Component]
    uptime: int = Field(description="Milliseconds since this controller started")
    version: str


class DashboardSummary(Body):
    """``GET /api/system/dashboard/summary``."""

    total_skalds: int
    online_skalds: int
    total_tasks: int
    running_tasks: int
    finished_tasks: int
    failed_tasks: int
    assigning_tasks: int
    cancelled_tasks: int
    node_skalds: int
    edge_skalds: int
    created_tasks: int
    paused_tasks: int


class Distribution(Body):
    status: str
    count: int
    percentage: float


class TaskDistribution(Body):
    """``GET /api/system/analytics/task-distribution``."""

    distribution: list[Distribution]
    timestamp: int


class RecentActivity(Body):
    """``GET /api/system/analytics/recent-activity``."""

    timeframe: str
    tasks_created: int
    tasks_updated: int
    tasks_finished: int
    tasks_failed: int
    success_rate: float


class Version(Body):
    """``GET /api/system/version``."""

    version: str
    build_date: str
    git_commit: str
    python_version: str
    dependencies: dict[str, str]
