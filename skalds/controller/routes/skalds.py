"""``/api/skalds``: the nodes and edges (the original's "Skalds"), online or seen recently."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from skalds.controller.models import (
    Skald,
    SkaldHeartbeat,
    SkaldPage,
    SkaldStatistics,
    SkaldStatisticsDetails,
    SkaldStatus,
    SkaldStatusDetails,
    SkaldTask,
    SkaldTasks,
    SuccessResponse,
    errors,
)
from skalds.controller.nodes import NodeDirectory, NodeView
from skalds.core.task import ACTIVE_STATES, Task, now_ms
from skalds.errors import NotFound
from skalds.ports.task_store import TaskQuery, TaskStore

router = APIRouter(prefix="/api/skalds", tags=["skalds"], responses=errors(404))


def _directory(request: Request) -> NodeDirectory:
    directory: NodeDirectory = request.app.state.skalds.nodes
    return directory


def _store(request: Request) -> TaskStore:
    store: TaskStore = request.app.state.skalds.tasks.store
    return store


def _tasks_by_node(store: TaskStore) -> dict[str, list[Task]]:
    by_node: dict[str, list[Task]] = {}
    for task in store.find(TaskQuery(lifecycle_status=sorted(ACTIVE_STATES), limit=100_000)).items:
        if task.executor:
            by_node.setdefault(task.executor, []).append(task)
    return by_node


def _skald(view: NodeView, tasks: list[Task]) -> Skald:
    info = view.info
    return Skald(
        id=info.id,
        type=info.mode,
        status="online" if view.online else "offline",
        last_heartbeat=str(info.heartbeat_at),
        supported_tasks=info.classes,
        current_tasks=[t.id for t in tasks],
        heartbeat=(info.heartbeat_at // 1000) % 200,
        task_count=len(tasks),
        capacity=info.capacity,
        running=info.running,
        labels=info.labels,
        offers=info.offers,
        class_specs=info.class_specs,
        draining=info.draining,
        host=info.host,
        pid=info.pid,
        started_at=info.started_at,
        heartbeat_at=info.heartbeat_at,
        last_seen=view.last_seen,
        files=info.files,
    )


def _view(request: Request, skald_id: str) -> NodeView:
    view = _directory(request).get(skald_id)
    if view is None:
        raise NotFound(f"skald {skald_id!r} not found", skald_id=skald_id)
    return view


@router.get("", summary="Nodes and edges", response_model=SkaldPage)
@router.get("/", include_in_schema=False, response_model=SkaldPage)
def list_skalds(
    request: Request,
    type: Annotated[Literal["node", "edge"] | None, Query()] = None,
    status: Annotated[Literal["online", "offline"] | None, Query()] = None,
) -> SkaldPage:
    """Every node and edge seen, online ones first, with the tasks each runs."""
    by_node = _tasks_by_node(_store(request))
    items = [_skald(v, by_node.get(v.info.id, [])) for v in _directory(request).views()]
    items = [s for s in items if (type is None or s.type == type) and (status is None or s.status == status)]
    return SkaldPage(items=items, total=len(items))


@router.get("/summary/statistics", summary="Counts of nodes and edges", response_model=SkaldStatistics)
def statistics(request: Request) -> SkaldStatistics:
    """How many Skalds, online and offline, nodes and edges, busy and idle."""
    views = _directory(request).views()
    counts = _store(request).count_active_by_executor()
    online = [v for v in views if v.online]
    nodes = [v for v in online if v.info.mode == "node"]
    busy = [v for v in nodes if counts.get(v.info.id, 0) > 0]
    running = sum(counts.get(v.info.id, 0) for v in online)
    return SkaldStatistics(
        total_skalds=len(views),
        online_skalds=len(online),
        offline_skalds=len(views) - len(online),
        node_skalds=len([v for v in views if v.info.mode == "node"]),
        edge_skalds=len([v for v in views if v.info.mode == "edge"]),
        available_nodes=len([v for v in nodes if not v.info.draining and counts.get(v.info.id, 0) < v.info.capacity]),
        total_running_tasks=running,
        average_tasks_per_skald=round(running / len(online), 2) if online else 0.0,
        details=SkaldStatisticsDetails(
            online_nodes=len(nodes),
            online_edges=len(online) - len(nodes),
            busy_nodes=len(busy),
            idle_nodes=len(nodes) - len(busy),
        ),
    )


@router.get("/{skald_id}", summary="One node or edge", response_model=Skald)
def get_skald(skald_id: str, request: Request) -> Skald:
    """A node or edge, with the tasks it runs."""
    view = _view(request, skald_id)
    tasks = _store(request).find(TaskQuery(lifecycle_status=sorted(ACTIVE_STATES), executor=skald_id, limit=100_000))
    return _skald(view, tasks.items)


@router.get("/{skald_id}/tasks", summary="The tasks a node or edge runs", response_model=SkaldTasks)
def skald_tasks(skald_id: str, request: Request) -> SkaldTasks:
    """Its live tasks with their class and when they were placed there."""
    _view(request, skald_id)
    tasks = _store(request).find(TaskQuery(lifecycle_status=sorted(ACTIVE_STATES), executor=skald_id, limit=100_000))
    items = [
        SkaldTask(id=t.id, class_name=t.class_name, assigned_at=t.started_at or t.update_date_time) for t in tasks.items
    ]
    return SkaldTasks(skald_id=skald_id, tasks=items, total_tasks=tasks.total)


@router.get("/{skald_id}/status", summary="A node's or edge's status", response_model=SkaldStatus)
def skald_status(skald_id: str, request: Request) -> SkaldStatus:
    """Online or not, how busy, since when."""
    view = _view(request, skald_id)
    info = view.info
    tasks = _store(request).find(TaskQuery(lifecycle_status=sorted(ACTIVE_STATES), executor=skald_id, limit=100_000))
    now = now_ms()
    return SkaldStatus(
        skald_id=skald_id,
        status="online" if view.online else "offline",
        type=info.mode,
        heartbeat=(info.heartbeat_at // 1000) % 200,
        last_update=info.heartbeat_at,
        task_count=tasks.total,
        is_online=view.online,
        uptime=now - info.started_at if view.online and info.started_at else None,
        details=SkaldStatusDetails(
            can_accept_tasks=view.online and not info.draining and tasks.total < info.capacity,
            last_heartbeat_age=now - info.heartbeat_at,
            tasks=[SkaldTask(id=t.id, class_name=t.class_name) for t in tasks.items],
        ),
    )


@router.get("/{skald_id}/heartbeat", summary="A node's or edge's heartbeat", response_model=SkaldHeartbeat)
def skald_heartbeat(skald_id: str, request: Request) -> SkaldHeartbeat:
    """When it last renewed its lease."""
    view = _view(request, skald_id)
    now = now_ms()
    return SkaldHeartbeat(
        skald_id=skald_id,
        heartbeat=(view.info.heartbeat_at // 1000) % 200,
        last_update=view.info.heartbeat_at,
        heartbeat_age=now - view.info.heartbeat_at,
        is_online=view.online,
        timestamp=now,
    )


@router.post("/{skald_id}/ping", summary="Is a node or edge online?", response_model=SuccessResponse)
def ping(skald_id: str, request: Request) -> SuccessResponse:
    """Whether its lease is alive (a node proves it is alive by renewing its lease)."""
    view = _view(request, skald_id)
    data = {"skaldId": skald_id, "online": view.online, "lastHeartbeat": view.info.heartbeat_at}
    return SuccessResponse(success=view.online, message="online" if view.online else "offline", data=data)
