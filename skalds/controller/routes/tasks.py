"""``/api/tasks``: create, list, read, update and control tasks — the original's endpoints and
shapes (paging by ``page``/``pageSize``, pattern filters, ``PUT .../status``, ``PUT
.../attachments``, ``DELETE``, ``.../heartbeat``) beside Skalds' own (``POST``, ``PATCH``,
pause, resume, cancel, retry, ``offset``/``limit``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import ConfigDict

from skalds.controller.models import (
    FilterResult,
    SuccessResponse,
    TaskBatch,
    TaskHeartbeat,
    TaskHistory,
    TaskPage,
    errors,
)
from skalds.core.lifecycle import Action
from skalds.core.task import LIVE_STATES, Task, TaskLifecycleStatus
from skalds.errors import ValidationFailed
from skalds.service import bulk
from skalds.service.requests import (
    CreateBatchRequest,
    CreateTaskRequest,
    FilterActionRequest,
    ReplaceAttachmentsRequest,
    SetStatusRequest,
    TaskFilter,
    UpdateAttachmentsRequest,
)
from skalds.service.tasks import TaskService

router = APIRouter(prefix="/api/tasks", tags=["tasks"], responses=errors(404, 409))


def _service(request: Request) -> TaskService:
    service: TaskService = request.app.state.skalds.tasks
    return service


@router.post("", status_code=201, summary="Create a task", response_model=Task)
@router.post("/", status_code=201, include_in_schema=False, response_model=Task)
def create_task(body: CreateTaskRequest, request: Request) -> Task:
    """Validate the attachments against the class's model, store the task and dispatch it."""
    return _service(request).create(body)


@router.post("/batch", status_code=201, summary="Create many tasks, all or none", response_model=TaskBatch)
def create_batch(body: CreateBatchRequest, request: Request) -> TaskBatch:
    """Validate every task first: any bad one is a 422 naming each field at fault by its
    index (``items.3.attachments.fixFrame``), an id given twice too; a taken id is a 409
    naming it; in both cases nothing is stored. Then all are stored in one write and
    dispatched together. At most ``controller.max_batch`` tasks (413 beyond)."""
    tasks = bulk.create_many(_service(request), body.items)
    return TaskBatch(items=tasks, total=len(tasks))


class QueryFilter(TaskFilter):
    """The filters as query parameters (beside paging parameters, hence no refusal of
    other names)."""

    model_config = ConfigDict(extra="ignore")


@router.get("", summary="List tasks", response_model=TaskPage)
@router.get("/", include_in_schema=False, response_model=TaskPage)
def list_tasks(
    request: Request,
    filters: Annotated[QueryFilter, Query()],
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=1000)] = 20,
    offset: Annotated[int | None, Query(ge=0, le=1_000_000_000)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    order: Literal["newest", "oldest"] = "newest",
) -> TaskPage:
    """Tasks, newest first, filtered and paged; ``total`` counts every match. States are exact
    names (any case, several allowed) or one regular expression; ``className`` and ``id`` are
    case-insensitive regular expressions; ``executor`` and ``source`` are exact; the time
    windows are epoch milliseconds (``…After`` inclusive, ``…Before`` exclusive). Page with
    ``page``/``pageSize`` (the original's) or ``offset``/``limit``."""
    size = limit if limit is not None else page_size
    start = offset if offset is not None else (page - 1) * size
    query = filters.query(newest_first=order == "newest", offset=start, limit=size)
    found = _service(request).find(query)
    return TaskPage(
        items=found.items, total=found.total, page=start // size + 1, page_size=size, offset=start, limit=size
    )


def _by_filter(
    action: Action, request: Request, filters: TaskFilter, body: FilterActionRequest | None, every: bool
) -> FilterResult:
    if body is not None:
        if filters.given():
            raise ValidationFailed.of_fields(
                "filter given twice",
                [{"field": "body", "message": "give the filters in the body or in the query, not both"}],
            )
        filters, every = body, every or body.all
    if not filters.given() and not every:
        raise ValidationFailed.of_fields(
            "no filter",
            [{"field": "all", "message": f"give at least one filter, or all=true to {action.value} every task"}],
        )
    result = bulk.act_on_matching(_service(request), filters, action)
    return FilterResult(
        action=action.value, matched=result.matched, count=len(result.done), ids=result.done, skipped=result.skipped
    )


Every = Annotated[bool, Query(alias="all", description="With no filter: act on every task the action applies to")]
FILTER_DOC = (
    "Every task the filters match (those of `GET /api/tasks`, as query parameters or as a JSON body; "
    "at least one, or `all`) in a state that allows the action, walked in creation order and changed "
    "with one conditional write each: a task that ended or changed meanwhile is skipped and listed. "
    "Tasks created after the request are left alone."
)


@router.post(
    "/cancel", summary="Cancel every task a filter matches", response_model=FilterResult, description=FILTER_DOC
)
def cancel_matching(
    request: Request,
    filters: Annotated[QueryFilter, Query()],
    body: FilterActionRequest | None = None,
    every: Every = False,
) -> FilterResult:
    """Cancel every live task the filters match."""
    return _by_filter(Action.CANCEL, request, filters, body, every)


@router.post("/pause", summary="Pause every task a filter matches", response_model=FilterResult, description=FILTER_DOC)
def pause_matching(
    request: Request,
    filters: Annotated[QueryFilter, Query()],
    body: FilterActionRequest | None = None,
    every: Every = False,
) -> FilterResult:
    """Pause every pausable task the filters match."""
    return _by_filter(Action.PAUSE, request, filters, body, every)


@router.post(
    "/resume", summary="Resume every paused task a filter matches", response_model=FilterResult, description=FILTER_DOC
)
def resume_matching(
    request: Request,
    filters: Annotated[QueryFilter, Query()],
    body: FilterActionRequest | None = None,
    every: Every = False,
) -> FilterResult:
    """Resume every paused task the filters match."""
    return _by_filter(Action.RESUME, request, filters, body, every)


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
