"""``/api/tasks/{id}/logs``: what a task's worker printed, as a tail or followed live.

Nodes capture each worker's stdout and stderr and ship the lines to the live state
(:mod:`skalds.node.output`); this route reads them there. ``?follow=true`` answers with
Server-Sent Events, one ``event: log`` per line with the line's cursor as ``id:``, so a client
that reconnects (``Last-Event-ID``) misses nothing still kept.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from skalds.controller.models import TaskLogLine, TaskLogs, errors
from skalds.core.records import LogLine
from skalds.errors import BackendUnavailable, ValidationFailed
from skalds.service.tasks import TaskService

router = APIRouter(prefix="/api/tasks", tags=["tasks"], responses=errors(404))
#: How often a followed log looks for new lines, and how long a silent stream waits before a
#: keep-alive comment.
POLL_S = 0.25
KEEPALIVE_S = 15.0
MAX_LINES = 5000
_CURSOR = re.compile(r"^\d{1,20}(-\d{1,20})?$")


def _service(request: Request) -> TaskService:
    service: TaskService = request.app.state.skalds.tasks
    return service


def _line(cursor: str, line: LogLine) -> TaskLogLine:
    return TaskLogLine(id=cursor, **line.to_dict())


def _cursor(after: str | None) -> str | None:
    if after is None or after == "":
        return None
    if not _CURSOR.match(after):
        raise ValidationFailed.of_fields(
            "bad cursor", [{"field": "after", "message": "not a cursor: use the id of a line read before"}]
        )
    return after


@router.get(
    "/{task_id}/logs",
    summary="A task's output: the tail, or followed live",
    response_model=TaskLogs,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def task_logs(
    task_id: str,
    request: Request,
    tail: Annotated[int, Query(ge=0, le=MAX_LINES, description="How many of the newest lines")] = 200,
    after: Annotated[str | None, Query(max_length=50, description="Only lines after this cursor")] = None,
    follow: Annotated[bool, Query(description="Keep the answer open and send new lines as they come (SSE)")] = False,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=50)] = None,
) -> TaskLogs | StreamingResponse:
    """The newest ``tail`` lines the task's worker wrote to stdout and stderr (its logging
    records with their ``level``), across its runs (``node``, ``epoch``, ``attempt`` say which);
    with ``after``, the lines after that cursor. With ``follow=true``: Server-Sent Events, the
    same lines first and then each new one as it is written, until the client leaves."""
    service = _service(request)
    start = _cursor(last_event_id if follow and last_event_id else after)
    lines = service.logs(task_id, after=start, limit=tail if start is None else MAX_LINES)
    if not follow:
        return TaskLogs(task_id=task_id, lines=[_line(c, line) for c, line in lines], cursor=_last(lines, start))
    return StreamingResponse(
        _follow(request, service, task_id, lines, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _last(lines: list[tuple[str, LogLine]], default: str | None) -> str | None:
    return lines[-1][0] if lines else default


def _event(cursor: str, line: LogLine) -> str:
    return f"id: {cursor}\nevent: log\ndata: {_line(cursor, line).model_dump_json(by_alias=True)}\n\n"


async def _follow(
    request: Request, service: TaskService, task_id: str, first: list[tuple[str, LogLine]], cursor: str | None
) -> AsyncIterator[str]:
    hub = request.app.state.skalds.hub
    yield "retry: 2000\n\n"
    for line_cursor, line in first:
        yield _event(line_cursor, line)
    cursor = _last(first, cursor)
    quiet = 0.0
    away = False
    while not hub.closed and not await request.is_disconnected():
        await asyncio.sleep(POLL_S)
        try:
            # Until a first line exists there is no cursor: read the tail (all of it is new).
            lines = await run_in_threadpool(service.live.read_logs, task_id, after=cursor, limit=MAX_LINES)
        except BackendUnavailable as exc:
            if not away:
                away = True
                yield f"event: unavailable\ndata: {json.dumps({'detail': str(exc)})}\n\n"
            continue
        away = False
        if not lines:
            quiet += POLL_S
            if quiet >= KEEPALIVE_S:
                quiet = 0.0
                yield ": keepalive\n\n"
            continue
        quiet = 0.0
        for line_cursor, line in lines:
            yield _event(line_cursor, line)
        cursor = lines[-1][0]
