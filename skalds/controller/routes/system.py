"""``/api``, ``/api/workers`` and ``/api/system/*``: health, status, configuration, the
dashboard summary, metrics and analytics — the original's endpoints and shapes, with Skalds'
own fields beside them."""

from __future__ import annotations

import platform
import time
from importlib import metadata
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from skalds import __version__
from skalds.controller.models import (
    Component,
    DashboardSummary,
    Distribution,
    Health,
    RecentActivity,
    SuccessResponse,
    SystemStatus,
    TaskDistribution,
    Version,
)
from skalds.core.task import TaskLifecycleStatus, now_ms
from skalds.errors import BackendUnavailable
from skalds.ports.task_store import TaskQuery

router = APIRouter(prefix="/api", tags=["system"])
S = TaskLifecycleStatus


def _state(request: Request) -> Any:
    return request.app.state.skalds


@router.get("", summary="The API's entry points")
def api_root(request: Request) -> dict[str, Any]:
    """What the API offers (the original's ``GET /api``)."""
    return {
        "name": "Skalds API",
        "version": __version__,
        "endpoints": {"tasks": "/api/tasks", "skalds": "/api/skalds", "events": "/api/events", "system": "/api/system"},
        "docs": "/api/docs",
    }


@router.get("/workers", summary="Worker classes and their attachment schemas")
def list_workers(request: Request) -> list[dict[str, Any]]:
    """Each known class with the JSON Schema of its attachments."""
    schemas: list[dict[str, Any]] = _state(request).tasks.catalog.schemas()
    return schemas


@router.get("/system/health", summary="Health", response_model=Health)
def health(request: Request) -> Any:
    """``healthy`` when the task store and the live state answer; ``degraded`` when only the
    live state is away (progress unavailable); ``unhealthy`` (503) when the task store is."""
    state = _state(request)
    services = {"taskStore": "up", "liveState": "up"}
    try:
        state.tasks.store.count_active_by_executor()
    except BackendUnavailable:
        services["taskStore"] = "down"
    try:
        nodes = len(state.tasks.live.nodes())
    except BackendUnavailable:
        services["liveState"], nodes = "down", 0
    status = "healthy" if "down" not in services.values() else "degraded"
    if services["taskStore"] == "down":
        status = "unhealthy"
    body = Health(
        status=status,
        timestamp=now_ms(),
        services=services,
        backend=state.backend,
        nodes=nodes,
        uptime_s=round(time.monotonic() - state.started, 3),
    )
    code = 503 if status == "unhealthy" else 200
    return JSONResponse(body.model_dump(by_alias=True), status_code=code)


@router.get("/system/status", summary="This controller's parts", response_model=SystemStatus)
def system_status(request: Request) -> SystemStatus:
    """Which parts run here (the API, the dispatcher, the monitor, the reloader)."""
    state = _state(request)
    info = state.info
    lead = state.lead()
    leading = lead["role"] == "leader"  # of several controllers, only the leader places and judges
    components = [
        Component(name="API", running=True, details={"host": info.host, "port": info.port}),
        Component(
            name="Dispatcher", running=leading, details={"strategy": info.dispatch_policy, "leader": lead["leader"]}
        ),
        Component(
            name="Monitor", running=leading, details={"checkIntervalS": info.check_interval_s, "leader": lead["leader"]}
        ),
        Component(
            name="Reloader",
            running=state.reloader is not None,
            details={"source": state.reloader and state.reloader.source},
        ),
    ]
    return SystemStatus(
        mode="DISPATCHER", components=components, uptime=now_ms() - state.started_ms, version=__version__
    )


@router.get("/system/config", summary="Configuration, and every watched pool file with its last reload")
def config_status(request: Request) -> dict[str, Any]:
    """The controller's settings (the original's fields), and every worker pool file a process
    of the cluster watches (this one's and each live node's and edge's) with the result of its
    last reload: what was applied, or why the edit was rejected (file, line, field)."""
    state = _state(request)
    info = state.info
    reloader = state.reloader
    files = [{"node": state.here, **f} for f in (reloader.status() if reloader else [])]
    for view in state.nodes.views():
        if view.info.id != state.here and view.online:
            files += [{"node": view.info.id, **f} for f in view.info.files]
    last = reloader.last.to_dict() if reloader and reloader.last else None
    return {
        "mode": "DISPATCHER",
        "runMode": info.run_mode,
        "host": info.host,
        "port": info.port,
        "monitoring": {
            "skaldInterval": info.check_interval_s,
            "taskInterval": info.check_interval_s,
            "heartbeatTimeout": info.heartbeat_timeout_s,
        },
        "dispatcher": {"interval": info.sweep_interval_s, "strategy": info.dispatch_policy},
        "controller": state.lead(),
        "environment": "PRODUCTION",
        "logLevel": info.log_level,
        "backend": state.backend,
        "source": reloader.source if reloader else None,
        "files": files,
        "lastReload": last,
    }


def _counts(request: Request) -> dict[S, int]:
    counts: dict[S, int] = _state(request).tasks.store.count_by_status()
    return counts


@router.get("/system/dashboard/summary", summary="Counts for the dashboard", response_model=DashboardSummary)
def dashboard_summary(request: Request) -> DashboardSummary:
    """Skalds and tasks by state, in one call."""
    counts = _counts(request)
    views = _state(request).nodes.views()
    online = [v for v in views if v.online]
    return DashboardSummary(
        total_skalds=len(views),
        online_skalds=len(online),
        total_tasks=sum(counts.values()),
        running_tasks=counts.get(S.RUNNING, 0),
        finished_tasks=counts.get(S.FINISHED, 0),
        failed_tasks=counts.get(S.FAILED, 0),
        assigning_tasks=counts.get(S.ASSIGNING, 0),
        cancelled_tasks=counts.get(S.CANCELLED, 0),
        node_skalds=len([v for v in online if v.info.mode == "node"]),
        edge_skalds=len([v for v in online if v.info.mode == "edge"]),
        created_tasks=counts.get(S.CREATED, 0),
        paused_tasks=counts.get(S.PAUSED, 0),
    )


@router.get("/system/metrics", summary="Figures of Skalds and tasks")
def system_metrics(request: Request) -> dict[str, Any]:
    """The original's metrics: Skalds online, busy and idle; tasks by state; load per Skald.
    (Prometheus text is at ``/metrics``.)"""
    state = _state(request)
    counts = _counts(request)
    views = state.nodes.views()
    load = state.tasks.store.count_active_by_executor()
    online = [v for v in views if v.online]
    nodes = [v for v in online if v.info.mode == "node"]
    busy = [v for v in nodes if load.get(v.info.id, 0) > 0]
    capacity = sum(v.info.capacity for v in online) or 1
    node_capacity = sum(v.info.capacity for v in nodes) or 1
    running = sum(load.get(v.info.id, 0) for v in online)
    return {
        "timestamp": now_ms(),
        "skalds": {
            "total": len(views),
            "online": len(online),
            "offline": len(views) - len(online),
            "nodes": len(nodes),
            "edges": len(online) - len(nodes),
            "availableNodes": len([v for v in nodes if load.get(v.info.id, 0) < v.info.capacity]),
            "busyNodes": len(busy),
            "idleNodes": len(nodes) - len(busy),
        },
        "tasks": {
            "monitored": sum(counts.get(s, 0) for s in (S.ASSIGNING, S.RUNNING, S.PAUSED)),
            "running": counts.get(S.RUNNING, 0),
            "failed": counts.get(S.FAILED, 0),
            "finished": counts.get(S.FINISHED, 0),
            "cancelled": counts.get(S.CANCELLED, 0),
            "assigning": counts.get(S.ASSIGNING, 0),
            "created": counts.get(S.CREATED, 0),
            "paused": counts.get(S.PAUSED, 0),
            "total": sum(counts.values()),
            "totalAssigned": sum(load.values()),
        },
        "performance": {
            "averageTasksPerSkald": round(running / len(online), 2) if online else 0.0,
            "taskDistribution": dict(sorted(load.items())),
            "systemLoad": {
                "skaldUtilization": round(100 * running / capacity, 1),
                "nodeUtilization": round(100 * sum(load.get(v.info.id, 0) for v in nodes) / node_capacity, 1),
            },
        },
    }


@router.get("/system/version", summary="Version", response_model=Version)
def system_version() -> Version:
    """Skalds' version and the versions of what it runs on."""
    deps = {}
    for name in ("fastapi", "pydantic", "uvicorn", "hydra-core", "confluent-kafka", "redis", "pymongo"):
        try:
            deps[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return Version(
        version=__version__,
        build_date="unknown",
        git_commit="unknown",
        python_version=platform.python_version(),
        dependencies=deps,
    )


@router.post(
    "/system/cleanup", summary="Drop old in-memory records (nothing to do here)", response_model=SuccessResponse
)
def cleanup() -> SuccessResponse:
    """The original dropped heartbeat records older than an hour from its memory. Skalds keeps
    no such records: live facts expire in the live state by themselves."""
    return SuccessResponse(message="nothing to clean: live facts expire by themselves", data={"removed": 0})


@router.get("/system/analytics/task-distribution", summary="Tasks by state", response_model=TaskDistribution)
def task_distribution(request: Request) -> TaskDistribution:
    """How many tasks are in each state, and their share."""
    counts = _counts(request)
    total = sum(counts.values()) or 1
    items = [
        Distribution(status=s.value, count=counts.get(s, 0), percentage=round(100 * counts.get(s, 0) / total, 1))
        for s in S
    ]
    return TaskDistribution(distribution=items, timestamp=now_ms())


@router.get("/system/analytics/recent-activity", summary="What happened lately", response_model=RecentActivity)
def recent_activity(request: Request, hours: Annotated[int, Query(ge=1, le=168)] = 24) -> RecentActivity:
    """Tasks created, changed, finished and failed in the last ``hours``."""
    store = _state(request).tasks.store
    since = now_ms() - hours * 3_600_000

    def count(**filters: Any) -> int:
        total: int = store.find(TaskQuery(limit=0, **filters)).total
        return total

    finished = count(lifecycle_status=[S.FINISHED], updated_after=since)
    failed = count(lifecycle_status=[S.FAILED], updated_after=since)
    return RecentActivity(
        timeframe=f"{hours}h",
        tasks_created=count(created_after=since),
        tasks_updated=count(updated_after=since),
        tasks_finished=finished,
        tasks_failed=failed,
        success_rate=round(100 * finished / (finished + failed), 1) if finished + failed else 0.0,
    )
