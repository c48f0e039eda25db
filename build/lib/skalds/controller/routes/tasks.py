"""``/api/tasks``: create, list, read, update and control tasks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from skalds.core.task import TaskLifecycleStatus
from skalds.ports.task_store import TaskQuery
from skalds.service.requests import CreateTaskRequest, UpdateAttachmentsRequest
from skalds.service.tasks import TaskService

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


def _service(request: Request) -> TaskService:
    return request.app.state.skalds.tasks


@router.post("", status_code=201, summary="Create a task")
def create_task(body: CreateTaskRequest, request: Request) -> dict[str, Any]:
    """Validate the attachments against the class's model, store the task and dispatch it."""
    return _service(request).create(body).to_doc()


@router.get("", summary="List tasks")
def list_tasks(
    request: Request,
    lifecycle_status: Annotated[list[TaskLifecycleStatus] | None, Query(alias="lifecycleStatus")] = None,
    class_name: Annotated[str | None, Query(alias="className", max_length=200)] = None,
    executor: Annotated[str | None, Query(max_length=200)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """Tasks, oldest first, filtered and paged; ``total`` counts every match."""
    query = TaskQuery(
        lifecycle_status=lifecycle_status, class_name=class_name, executor=executor, offset=offset, limit=limit
    )
    page = _service(request).find(query)
    return {"items": [t.to_doc() for t in page.items], "total": page.total, "offset": offset, "limit": limit}


@router.get("/{task_id}", summary="Read a task")
def get_task(task_id: str, request: Request) -> dict[str, Any]:
    """One task, with the progress of its last heartbeat."""
    return _service(request).get(task_id).to_doc()


@router.patch("/{task_id}/attachments", summary="Update a running task's attachments")
def update_attachments(task_id: str, body: UpdateAttachmentsRequest, request: Request) -> dict[str, Any]:
    """Merge, validate, bump ``desiredVersion`` and deliver to the worker's update handler;
    ``appliedVersion`` follows once the handler returned."""
    return _service(request).update_attachments(task_id, body.attachments).to_doc()


@router.post("/{task_id}/pause", summary="Pause a task")
def pause_task(task_id: str, request: Request) -> dict[str, Any]:
    """Pause (cooperative: the worker blocks in ``wait_if_paused``). 409 if not pausable."""
    return _service(request).pause(task_id).to_doc()


@router.post("/{task_id}/resume", summary="Resume a paused task")
def resume_task(task_id: str, request: Request) -> dict[str, Any]:
    """Resume. 409 unless the task is Paused."""
    return _service(request).resume(task_id).to_doc()


@router.post("/{task_id}/cancel", summary="Cancel a task")
def cancel_task(task_id: str, request: Request) -> dict[str, Any]:
    """Cancel: stop flag, then SIGTERM, then SIGKILL. 409 if the task already ended."""
    return _service(request).cancel(task_id).to_doc()
