"""``/api/tasks``: create, list, read, update and control tasks — the original's endpoints and
shapes (paging by ``page``/``pageSize``, pattern filters, ``PUT .../status``, ``PUT
.../attachments``, ``DELETE``, ``.../heartbeat``) beside Skalds' own (``POST``, ``PATCH``,
pause, resume, cancel, retry, ``offset``/``limit``)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from skalds.controller.models import SuccessResponse, TaskHeartbeat, TaskHistory, TaskPage, errors
from skalds.core.task import LIVE_STATES, Task, TaskLifecycleStatus
from skalds.errors import ValidationFailed
from skalds.ports.task_store import TaskQuery
from skalds.service.requests import (
    CreateTaskRequest,
    ReplaceAttachmentsRequest,
    SetStatusRequest,
    UpdateAttachmentsRequest,
)
from skalds.service.tasks import TaskService

router = APIRouter(prefix="/api/tasks", tags=["tasks"], responses=errors(404, 409))
STATES = {s.value.lower(): s for s in TaskLifecycleStatus}
Pattern = Annotated[str | None, Query(max_length=200, description="Case-insensitive regular expression")]


def _service(request: Request) -> TaskService:
    service: TaskService = request.app.state.skalds.tasks
    return service


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


@router.post("", status_code=201, summary="Create a task", response_model=Task)
@router.post("/", status_code=201, include_in_schema=False, response_model=Task)
def create_task(body: CreateTaskRequest, request: Request) -> Task:
    """Validate the attachments against the class's model, store the task and dispatch it."""
    return _service(request).create(body)


@router.get("", summary="List tasks", response_model=TaskPage)
@router.get("/", include_in_schema=False, response_model=TaskPage)
def list_tasks(
    request: Request,
    lifecycle_status: Annotated[
        list[str] | None, Query(alias="lifecycleStatus", max_length=20, description="States, or one pattern")
    ] = None,
    class_name: Annotated[Pattern, Query(alias="className")] = None,
    id: Pattern = None,
    executor: Annotated[str | None, Query(max_length=200)] = None,
    source: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=1000)] = 20,
    offset: Annotated[int | None, Query(ge=0, le=1_000_000_000)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    order: Literal["newest", "oldest"] = "newest",
) -> TaskPage:
    """Tasks, newest first, filtered and paged; ``total`` counts every match. States are exact
    names (any case, several allowed) or one regular expression; ``className`` and ``id`` are
    case-insensitive regular expressions; ``executor`` and ``source`` are exact. Page with
    ``page``/``pageSize`` (the original's) or ``offset``/``limit``."""
    statuses, status_pattern = None, None
    if lifecycle_status:
        if all(v.lower() in STATES for v in lifecycle_status):
            statuses = [STATES[v.lower()] for v in lifecycle_status]
        elif len(lifecycle_status) == 1:
            status_pattern = _pattern("lifecycleStatus", lifecycle_status[0])
        else:
            raise ValidationFailed.of_fields(
                "bad filter", [{"field": "lifecycleStatus", "message": "several values must all be state names"}]
            )
    size = limit if limit is not None else page_size
    start = offset if offset is not None else (page - 1) * size
    query = TaskQuery(
        lifecycle_status=statuses,
        status_pattern=status_pattern,
        class_pattern=_pattern("className", class_name),
        id_pattern=_pattern("id", id),
        executor=executor,
        source=source,
        newest_first=order == "newest",
        offset=start,
        limit=size,
    )
    found = _service(request).find(query)
    return TaskPage(
        items=found.items, total=found.total, page=start // size + 1, page_size=size, offset=start, limit=size
    )


@router.get("/classnames", summary="Class names of the stored tasks", response_model=list[str])
def class_names(request: Request) -> list[str]:
    """Every class name some task has, sorted (the original's filter list)."""
    return _service(request).store.class_names()


@router.get("/{task_id}", summary="Read a task", response_model=Task)
def get_task(task_id: str, request: Request) -> Task:
    """One task, with the progress and heartbeat of its worker."""
    return _service(request).get(task_id)


@router.get("/{task_id}/history", summary="Every change of a task", response_model=TaskHistory)
def task_history(task_id: str, request: Request) -> TaskHistory:
    """Each transition with its time, actor (``api``, ``yaml:<pool>``, ``dispatcher``,
    ``monitor``, a node's id), the state it led to, epoch, attempt and reason (the newest
    200)."""
    task = _service(request).store.get(task_id)
    return TaskHistory(task_id=task.id, items=task.history)


@router.get("/{task_id}/heartbeat", summary="A task's heartbeat", response_model=TaskHeartbeat)
def task_heartbeat(task_id: str, request: Request) -> TaskHeartbeat:
    """The original's heartbeat view: the heartbeat number, whether the worker is alive."""
    task = _service(request).get(task_id)
    beat = task.heartbeat if task.heartbeat is not None else 0
    return TaskHeartbeat(
        task_id=task.id,
        heartbeat=beat,
        status=task.lifecycle_status.value,
        is_alive=task.heartbeat_at is not None and task.lifecycle_status in LIVE_STATES,
        is_assigning=task.lifecycle_status is TaskLifecycleStatus.ASSIGNING,
        error=task.error,
        exception=task.exception,
        last_update=task.heartbeat_at,
        heartbeat_history=[beat],
        progress=task.progress,
        message=task.message,
    )


@router.patch("/{task_id}/attachments", summary="Update a running task's attachments", response_model=Task)
def update_attachments(task_id: str, body: UpdateAttachmentsRequest, request: Request) -> Task:
    """Merge, validate, bump ``desiredVersion`` and deliver to the worker's update handler;
    ``appliedVersion`` follows once the handler returned. 409 once the task has ended."""
    return _service(request).update_attachments(task_id, body.attachments)


@router.put("/{task_id}/attachments", summary="Replace a task's attachments", response_model=SuccessResponse)
def replace_attachments(task_id: str, body: ReplaceAttachmentsRequest, request: Request) -> SuccessResponse:
    """The original's update: the whole attachments replaced (validated, unlike the original),
    delivered to the worker as ``PATCH`` does."""
    task = _service(request).update_attachments(task_id, body.attachments, merge=False)
    data = {"taskId": task.id, "attachments": task.attachments_dict(), "desiredVersion": task.desired_version}
    return SuccessResponse(message=f"attachments of task {task.id} updated", data=data)


@router.put("/{task_id}/status", summary="Set a task Created or Cancelled", response_model=SuccessResponse)
def set_status(task_id: str, body: SetStatusRequest, request: Request) -> SuccessResponse:
    """The original's status change: ``Cancelled`` cancels; ``Created`` runs the task again
    from scratch (a running copy is stopped first)."""
    service = _service(request)
    task = service.cancel(task_id) if body.lifecycle_status == "Cancelled" else service.restart(task_id)
    data = {"taskId": task.id, "status": body.lifecycle_status, "lifecycleStatus": task.lifecycle_status.value}
    return SuccessResponse(message=f"task {task.id} set {body.lifecycle_status}", data=data)


@router.delete("/{task_id}", summary="Cancel a live task, or remove an ended one", response_model=SuccessResponse)
def delete_task(task_id: str, request: Request) -> SuccessResponse:
    """A live task is cancelled (the original's meaning); an ended task's record is removed,
    so its id can be used again."""
    before = _service(request).store.get(task_id)
    task = _service(request).delete(task_id)
    removed = before.lifecycle_status.is_terminal
    message = f"task {task_id} deleted" if removed else f"task {task_id} cancelled"
    data = {"taskId": task_id, "status": "Deleted" if removed else task.lifecycle_status.value}
    return SuccessResponse(message=message, data=data)


@router.post("/{task_id}/pause", summary="Pause a task", response_model=Task)
def pause_task(task_id: str, request: Request) -> Task:
    """Pause (cooperative: the worker blocks in ``wait_if_paused``). 409 if not pausable."""
    return _service(request).pause(task_id)


@router.post("/{task_id}/resume", summary="Resume a paused task", response_model=Task)
def resume_task(task_id: str, request: Request) -> Task:
    """Resume. 409 unless the task is Paused."""
    return _service(request).resume(task_id)


@router.post("/{task_id}/cancel", summary="Cancel a task", response_model=Task)
def cancel_task(task_id: str, request: Request) -> Task:
    """Cancel: stop flag, then SIGTERM, then SIGKILL. 409 if the task already ended."""
    return _service(request).cancel(task_id)


@router.post("/{task_id}/retry", summary="Run an ended task again", response_model=Task)
def retry_task(task_id: str, request: Request) -> Task:
    """Run a Finished, Failed or Cancelled task again from scratch. 409 while it is live."""
    return _service(request).retry(task_id)
