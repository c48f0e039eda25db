"""The one transition table of the task lifecycle, and the conditional writes that apply it.

Every change of ``lifecycleStatus`` in Skalds goes through :func:`plan`, which checks the table
and produces a :class:`Transition`: the new field values plus the state and epoch the store must
still hold for the write to win. Two writers racing on one task therefore cannot both succeed;
the loser gets :class:`~skalds.errors.StaleWrite` and re-reads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from skalds.core.task import Task, TaskLifecycleStatus, utc_now
from skalds.errors import InvalidTransition, StaleWrite

if TYPE_CHECKING:
    from skalds.ports.task_store import TaskStore

S = TaskLifecycleStatus


class Action(enum.StrEnum):
    """Something that happens to a task, and who does it."""

    ASSIGN = "assign"  # dispatcher: placed on a node
    START = "start"  # node: the worker process runs
    PAUSE = "pause"  # user
    RESUME = "resume"  # user
    CANCEL = "cancel"  # user
    FINISH = "finish"  # node: main handler returned
    FAIL = "fail"  # node or monitor: raised, died, or out of retries
    REQUEUE = "requeue"  # monitor or node: the executor is gone, place it again
    UPDATE = "update"  # user: new attachments
    REPLACE = "replace"  # declaration: new class (or a re-run of an ended task), start over


_LIVE = (S.CREATED, S.ASSIGNING, S.RUNNING, S.PAUSED)

#: action -> {from state: to state}. A pair that is missing is not allowed.
TRANSITIONS: dict[Action, dict[S, S]] = {
    Action.ASSIGN: {S.CREATED: S.ASSIGNING, S.PAUSED: S.PAUSED},
    Action.START: {S.ASSIGNING: S.RUNNING, S.RUNNING: S.RUNNING, S.PAUSED: S.PAUSED},
    Action.PAUSE: {S.CREATED: S.PAUSED, S.ASSIGNING: S.PAUSED, S.RUNNING: S.PAUSED},
    Action.RESUME: {S.PAUSED: S.RUNNING},
    Action.CANCEL: {s: S.CANCELLED for s in _LIVE},
    Action.FINISH: {S.ASSIGNING: S.FINISHED, S.RUNNING: S.FINISHED, S.PAUSED: S.FINISHED},
    Action.FAIL: {s: S.FAILED for s in _LIVE},
    Action.REQUEUE: {S.ASSIGNING: S.CREATED, S.RUNNING: S.CREATED, S.PAUSED: S.PAUSED},
    Action.UPDATE: {s: s for s in _LIVE},
    Action.REPLACE: {s: S.CREATED for s in S},
}

#: Actions that only the task's current executor may take, fenced by its epoch.
EXECUTOR_ACTIONS = frozenset({Action.START, Action.FINISH})


def allowed(current: S, action: Action) -> bool:
    """Whether ``action`` is allowed on a task in state ``current``."""
    return current in TRANSITIONS[action]


def next_status(task: Task, action: Action) -> S:
    """The state ``task`` moves to under ``action``.

    Raises:
        InvalidTransition: the table does not allow ``action`` from the task's state.
    """
    current = task.lifecycle_status
    target = TRANSITIONS[action].get(current)
    if target is None:
        raise InvalidTransition(
            f"cannot {action.value} task {task.id!r}: it is {current.value}",
            task_id=task.id,
            lifecycle_status=current.value,
        )
    # A paused task that holds no worker anywhere resumes by being placed again.
    if action is Action.RESUME and task.executor is None:
        return S.CREATED
    return target


@dataclass(frozen=True)
class Transition:
    """A conditional write: ``changes`` apply only while every field named in ``expect``
    still holds the given value (snake_case field names, enum members or plain values)."""

    task_id: str
    expect: dict[str, Any]
    changes: dict[str, Any] = field(default_factory=dict)


def plan(task: Task, action: Action, **changes: Any) -> Transition:
    """Check ``action`` against the table and build the write that performs it.

    ``changes`` are extra fields to set (snake_case names), e.g. ``executor`` for ASSIGN or
    ``error`` for FAIL. ASSIGN and REQUEUE bump the epoch, which fences the old executor out.
    """
    target = next_status(task, action)
    fields: dict[str, Any] = {"lifecycle_status": target, "update_date_time": utc_now()}
    if action in (Action.ASSIGN, Action.REQUEUE, Action.REPLACE):
        fields["epoch"] = task.epoch + 1
    if action in (Action.REQUEUE, Action.REPLACE):
        fields["executor"] = None
    if action is Action.REPLACE:
        fields.update(attempt=0, error=None, progress=None)
    if action is Action.RESUME and target is S.CREATED:
        fields["epoch"] = task.epoch + 1
    fields.update(changes)
    expect = {"lifecycle_status": task.lifecycle_status, "epoch": task.epoch}
    return Transition(task.id, expect, fields)


def apply(store: TaskStore, task_id: str, action: Action, *, retries: int = 5, **changes: Any) -> Task:
    """Read, plan and write ``action`` on a task, re-reading when a racing writer won.

    Meant for user actions (pause, cancel...), which are valid against whatever state the task
    is in now. Executor actions must not use it: they are fenced to one epoch instead.

    Raises:
        TaskNotFound: no such task.
        InvalidTransition: the current state does not allow the action.
        StaleWrite: the task kept changing under us ``retries`` times in a row.
    """
    for _ in range(retries):
        task = store.get(task_id)
        try:
            return store.apply(plan(task, action, **changes))
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
    assume: S | None = None,
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
        transition = plan(guess, action, **changes)
        try:
            return store.apply(Transition(task_id, {**transition.expect, "executor": executor}, transition.changes))
        except StaleWrite:
            pass
    for _ in range(retries):
        task = store.get(task_id)
        if task.epoch != epoch or task.executor != executor or not allowed(task.lifecycle_status, action):
            return None
        try:
            return store.apply(plan(task, action, **changes))
        except StaleWrite:
            continue
    return None
