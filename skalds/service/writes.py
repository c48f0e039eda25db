"""Conditional writes of lifecycle actions through the task store port.

:func:`apply` is for actors whose action is valid against whatever state a task is in now
(a user's pause, the monitor's requeue); :func:`apply_fenced` is for a node acting on its own
copy of a task, which must lose to anyone who moved the task on meanwhile.
"""

from __future__ import annotations

from typing import Any

from skalds.core.lifecycle import Action, Transition, allowed, plan
from skalds.core.task import Attempt, Task, TaskLifecycleStatus
from skalds.errors import StaleWrite
from skalds.ports.task_store import TaskStore


def apply(
    store: TaskStore,
    task_id: str,
    action: Action,
    *,
    retries: int = 5,
    actor: str | None = None,
    reason: str | None = None,
    **changes: Any,
) -> Task:
    """Read, plan and write ``action`` on a task, re-reading when a racing writer won.

    Raises:
        TaskNotFound: no such task.
        InvalidTransition: the current state does not allow the action.
        StaleWrite: the task kept changing under us ``retries`` times in a row.
    """
    for _ in range(retries):
        task = store.get(task_id)
        try:
            return store.apply(plan(task, action, actor=actor, reason=reason, **changes))
        except StaleWrite:
            continue
    raise StaleWrite(f"task {task_id!r} kept changing; {action.value} not applied", task_id=task_id)


def apply_fenced(
    store: TaskStore,
    task_id: str,
    epoch: int,
    executor: str,
    action: Action,
    *,
    assume: TaskLifecycleStatus | None = None,
    ended: Attempt | None = None,
    retries: int = 5,
    **changes: Any,
) -> Task | None:
    """Apply an executor's action only while it still owns the task at ``epoch``.

    Returns the task as written, or None when the executor was fenced out (the epoch or
    executor moved on) or the task's state no longer allows the action (e.g. it was
    cancelled meanwhile). An executor that gets None for a running task must stop its copy.

    With ``assume``, the write is first tried blindly, conditional on the task being in that
    state at ``epoch`` on ``executor``: the common case costs one store round trip instead of
    two. Any other state falls back to reading first.
    """
    if assume is not None:
        guess = Task.model_construct(id=task_id, class_name="", lifecycle_status=assume, epoch=epoch, executor=executor)
        blind = plan(guess, action, ended=ended, **changes)
        try:
            return store.apply(Transition(task_id, {**blind.expect, "executor": executor}, blind.changes, blind.push))
        except StaleWrite:
            pass
    for _ in range(retries):
        task = store.get(task_id)
        if task.epoch != epoch or task.executor != executor or not allowed(task.lifecycle_status, action):
            return None
        transition = plan(task, action, ended=ended, **changes)
        try:
            return store.apply(
                Transition(task_id, {**transition.expect, "executor": executor}, transition.changes, transition.push)
            )
        except StaleWrite:
            continue
    return None
