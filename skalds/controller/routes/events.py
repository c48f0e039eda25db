"""``/api/events``: Server-Sent Events of what happens to tasks and nodes.

``GET /api/events`` is Skalds' stream: every event with its ``id:`` and ``event:`` type,
resumable with ``Last-Event-ID``, filtered by ``task``, ``className`` and ``node``. The
original's two streams keep their shapes: ``/api/events/tasks`` (``task_heartbeat``,
``task_error``, ``task_exception``) and ``/api/events/skalds`` (``skald_status``,
``skald_heartbeat``), each opening with its ``connection`` message. All of them read one shared
hub (:mod:`skalds.controller.events`); none polls anything per client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from skalds.controller.events import EventHub, HubEvent, sse
from skalds.core.task import TaskLifecycleStatus, now_ms, seed_heartbeat
from skalds.errors import TaskNotFound

router = APIRouter(prefix="/api/events", tags=["events"])
KEEPALIVE_S = 15.0
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
STATES = {s.value: s for s in TaskLifecycleStatus}


def _hub(request: Request) -> EventHub:
    hub: EventHub = request.app.state.skalds.hub
    return hub


async def _follow(
    request: Request, cursor: int, render: Callable[[HubEvent], str | None], opening: str = ""
) -> AsyncIterator[str]:
    """Yield ``render(event)`` for every event after ``cursor`` until the client leaves."""
    hub = _hub(request)
    hub.register()
    try:
        yield opening
        if cursor > hub.last_id:
            # A cursor from before this controller started (its ids begin again at 1): what
            # the client missed cannot be told; it must read the state again.
            cursor = hub.last_id
            yield f"event: reset\ndata: {json.dumps({'reason': 'the controller restarted; read the state again'})}\n\n"
        idle = 0.0
        while not hub.closed and not await request.is_disconnected():
            events, gap = await hub.wait(cursor, 1.0)
            if gap:
                cursor = hub.last_id
                yield f"event: reset\ndata: {json.dumps({'reason': 'events were missed; read the state again'})}\n\n"
                continue
            if not events:
                idle += 1.0
                if idle >= KEEPALIVE_S:
                    idle = 0.0
                    yield ": keepalive\n\n"
                continue
            idle = 0.0
            for event in events:
                cursor = event.id
                text = render(event)
                if text:
                    yield text
    finally:
        hub.unregister()


def _stream(iterator: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(iterator, media_type="text/event-stream", headers=HEADERS)


@router.get("", summary="The event stream (Server-Sent Events)")
def events(
    request: Request,
    task: Annotated[str | None, Query(max_length=200, description="Only this task's events")] = None,
    class_name: Annotated[str | None, Query(alias="className", max_length=200)] = None,
    node: Annotated[str | None, Query(max_length=200, description="Only this node's events")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    since: Annotated[int | None, Query(ge=0, description="Resume after this event id")] = None,
) -> StreamingResponse:
    """Task and node events as they happen: ``task.pending``, ``task.assigned``,
    ``task.status``, ``task.progress``, ``task.updated``, ``task.paused``, ``task.resumed``,
    ``task.cancelled``, ``node.online``, ``node.offline``, ``node.changed``; a ``reset`` when
    the client asked to resume from an event the hub no longer keeps."""
    hub = _hub(request)
    resume = since if since is not None else int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    cursor = hub.last_id if resume is None else resume
    store = request.app.state.skalds.tasks.store
    classes: dict[str, str | None] = {}

    def class_of(task_id: str) -> str | None:
        if task_id not in classes:
            try:
                classes[task_id] = store.get(task_id).class_name
            except TaskNotFound:
                classes[task_id] = None
        return classes[task_id]

    def render(event: HubEvent) -> str | None:
        if task is not None and event.task_id != task:
            return None
        if node is not None and event.node_id != node:
            return None
        if class_name is not None and (event.task_id is None or class_of(event.task_id) != class_name):
            return None
        return sse(event)

    opening = f"retry: 2000\nevent: hello\ndata: {json.dumps({'lastEventId': cursor})}\n\n"
    return _stream(_follow(request, cursor, render, opening))


def _seed(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\n\n"


@router.get("/tasks", summary="The original's task stream")
def task_events(request: Request, task_id: Annotated[str | None, Query(max_length=200)] = None) -> StreamingResponse:
    """``task_heartbeat`` (``data{heartbeat, lifecycleStatus}``), ``task_error`` and
    ``task_exception`` events, as the original's dashboard reads them."""

    def render(event: HubEvent) -> str | None:
        if event.task_id is None or (task_id is not None and event.task_id != task_id):
            return None
        if event.type not in ("task.progress", "task.status"):
            return None
        status = event.data.get("lifecycleStatus") or event.data.get("status")
        state = STATES.get(status or "", TaskLifecycleStatus.RUNNING)
        beat = seed_heartbeat(state, event.data.get("heartbeatAt") or event.data.get("at"))
        base = {"taskId": event.task_id, "timestamp": event.at}
        if event.type == "task.status" and event.data.get("error"):
            kind = "task_error" if state is TaskLifecycleStatus.FAILED else "task_exception"
            return _seed(
                {
                    **base,
                    "type": kind,
                    "data": {"error": event.data["error"], "exception": event.data["error"], "lifecycleStatus": status},
                }
            )
        return _seed({**base, "type": "task_heartbeat", "data": {"heartbeat": beat, "lifecycleStatus": status}})

    opening = _seed({"type": "connection", "message": "Connected to Tasks events"})
    return _stream(_follow(request, _hub(request).last_id, render, opening))


@router.get("/skalds", summary="The original's Skalds stream")
def skald_events(request: Request, skald_id: Annotated[str | None, Query(max_length=200)] = None) -> StreamingResponse:
    """``skald_status`` (``data{status, taskCount}``) when a node or edge goes online or
    offline, ``skald_heartbeat`` (``data{heartbeat, status, tasks}``) when its load changes."""

    def render(event: HubEvent) -> str | None:
        if not event.type.startswith("node.") or (skald_id is not None and event.node_id != skald_id):
            return None
        data = event.data
        status = "online" if data.get("online") else "offline"
        base = {"skaldId": event.node_id, "timestamp": event.at}
        if event.type in ("node.online", "node.offline"):
            return _seed(
                {**base, "type": "skald_status", "data": {"status": status, "taskCount": data.get("running", 0)}}
            )
        beat = (int(data.get("lastSeen") or 0) // 1000) % 200
        return _seed({**base, "type": "skald_heartbeat", "data": {"heartbeat": beat, "status": status, "tasks": []}})

    opening = _seed({"type": "connection", "message": "Connected to Skalds events"})
    return _stream(_follow(request, _hub(request).last_id, render, opening))


@router.get("/status", summary="Who listens")
def events_status(request: Request) -> dict[str, Any]:
    """How many stream clients are connected."""
    return {
        "connectedClients": max(0, _hub(request).clients),
        "timestamp": now_ms(),
        "status": "active",
        "lastEventId": _hub(request).last_id,
    }


@router.get("/test", summary="A test stream: one message every 5 s")
def test_events(request: Request) -> StreamingResponse:
    """The original's test stream."""
    import asyncio

    async def ticks() -> AsyncIterator[str]:
        n = 0
        while not _hub(request).closed and not await request.is_disconnected():
            n += 1
            yield _seed({"type": "test", "message": f"test message {n}", "timestamp": now_ms()})
            await asyncio.sleep(5)

    return _stream(ticks())
