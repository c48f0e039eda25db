"""Actions on many tasks at once: create a batch, all or none; cancel, pause or resume every
task a filter matches.

A batch is validated whole before anything is stored, written with one store call
(:meth:`~skalds.ports.task_store.TaskStore.create_many`) and announced with one event. An
action by filter walks the matching tasks in creation order, page by page, and acts on each
with the same conditional write as the single action, so a task that ended or changed
meanwhile is skipped, never overwritten.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from skalds.core.lifecycle import Action, allowed, plan
from skalds.core.task import Task, TaskLifecycleStatus, now_ms
from skalds.errors import (
    InvalidTransition,
    PayloadTooLarge,
    StaleWrite,
    TaskAlreadyExists,
    TaskNotFound,
    ValidationFailed,
    field_path,
)
from skalds.service import writes
from skalds.service.requests import CreateTaskRequest, TaskFilter
from skalds.service.tasks import TaskService

logger = logging.getLogger(__name__)

#: Tasks read per page while acting on every match of a filter.
PAGE = 500


def create_many(service: TaskService, requests: Sequence[CreateTaskRequest], source: str = "api") -> list[Task]:
    """Validate every request, store all the tasks in one write, and ask for them to be
    placed with one event.

    Raises:
        PayloadTooLarge: more than ``service.limits.max_batch`` requests.
        ValidationFailed: no request, or any request is bad: ``errors`` names each field
            at fault as ``items.<index>.<field>`` (``items.3.attachments.fixFrame``); an id
            given twice names its second use. Nothing is stored.
        TaskAlreadyExists: ids are taken: ``task_ids`` lists them, ``errors`` names each
            item. Nothing is stored.
    """
    limit = service.limits.max_batch
    if not requests:
        raise ValidationFailed.of_fields("empty batch", [{"field": "items", "message": "give at least one task"}])
    if len(requests) > limit:
        raise PayloadTooLarge.of_fields(
            "batch too large",
            [{"field": "items", "message": f"{len(requests)} tasks; at most {limit} (controller.max_batch)"}],
        )
    errors: list[dict[str, str]] = []
    first: dict[str, int] = {}
    tasks: list[Task] = []
    for i, request in enumerate(requests):
        if request.id is not None:
            if request.id in first:
                message = f"{request.id!r} is the id of items.{first[request.id]} too"
                errors.append({"field": f"items.{i}.id", "message": message})
            first.setdefault(request.id, i)
        try:
            data = service.attachments_of(request, full_paths=True)
            tasks.append(service.new_task(request, data, source))
        except ValidationFailed as exc:
            errors += [
                {"field": field_path(("items", i, e["field"])) if e["field"] else f"items.{i}", "message": e["message"]}
                for e in exc.detail.get("errors") or [{"field": "", "message": exc.message}]
            ]
    if errors:
        bad = len({e["field"].split(".")[1] for e in errors})
        raise ValidationFailed.of_fields(f"{bad} of {len(requests)} tasks invalid, none stored", errors)
    try:
        service.store.create_many(tasks)
    except TaskAlreadyExists as exc:
        taken = set(exc.detail.get("task_ids", []))
        named = [
            {"field": f"items.{i}.id", "message": f"task {t.id!r} already exists"}
            for i, t in enumerate(tasks)
            if t.id in taken
        ]
        raise TaskAlreadyExists(
            f"task ids taken, none stored: {', '.join(sorted(taken))}", task_ids=sorted(taken), errors=named
        ) from exc
    service.announce(tasks)
    logger.info("batch of %d tasks created (%s...)", len(tasks), tasks[0].id)
    return tasks


@dataclass
class ActionResult:
    """What an action by filter did: how many tasks matched (in a state the action applies
    to), the ids changed and the ids skipped (ended or changed meanwhile), in creation order."""

    matched: int = 0
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def act_on_matching(service: TaskService, filters: TaskFilter, action: Action, actor: str = "api") -> ActionResult:
    """Cancel, pause or resume every task ``filters`` match in a state that allows ``action``,
    created before now. Pages are keyed by the last task seen (creation time, id), so the
    walk neither skips nor repeats a task while the ones behind it change state. Each task
    gets the single action's conditional write, planned from the copy read (re-read only
    when it lost a race) and followed by the single action's event.

    Raises:
        ValidationFailed: a filter is bad (see :meth:`TaskFilter.query`).
    """
    states = [s for s in sorted(TaskLifecycleStatus) if allowed(s, action)]
    base = filters.query()
    if base.lifecycle_status is not None:
        states = [s for s in states if s in base.lifecycle_status]
    result = ActionResult()
    if not states:
        return result
    now = now_ms()
    until = now + 1 if base.created_before is None else min(base.created_before, now + 1)
    query = dataclasses.replace(base, lifecycle_status=states, created_before=until, newest_first=False, limit=PAGE)
    reason = f"{action.value} by filter {filters.given() or 'all'}"
    while True:
        page = service.store.find(query).items
        for task in page:
            result.matched += 1
            written = _act(service, task, action, actor, reason)
            (result.done if written is not None else result.skipped).append(task.id)
            if written is not None:
                service.notify(written, action)
        if len(page) < PAGE:
            break
        query = dataclasses.replace(query, after=(page[-1].create_date_time, page[-1].id))
    logger.info("%s by filter %s: %d of %d tasks", action.value, filters.given(), len(result.done), result.matched)
    return result


def _act(service: TaskService, task: Task, action: Action, actor: str, reason: str) -> Task | None:
    """``action`` on ``task`` by one conditional write; None when it ended or moved on."""
    try:
        return service.store.apply(plan(task, action, actor=actor, reason=reason))
    except StaleWrite:
        pass  # changed since the page was read: judge it as it is now
    except (InvalidTransition, TaskNotFound):
        return None
    try:
        return writes.apply(service.store, task.id, action, actor=actor, reason=reason)
    except (InvalidTransition, TaskNotFound, StaleWrite):
        return None
