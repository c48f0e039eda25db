"""The one transition table of the task lifecycle, the writes built from it, and the retry policy.

Every change of a task in Skalds goes through :func:`plan`, which checks the table and produces a
:class:`Transition`: the new field values plus the state and epoch the store must still hold for
the write to win. Two writers racing on one task therefore cannot both succeed; the loser gets
:class:`~skalds.errors.StaleWrite` and re-reads. This module does no I/O: the application layer
(``skalds.service.writes``) reads, plans and writes through the task store port.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skalds.core.task import (
    KEPT,
    LIVE_STATES,
    Attempt,
    AttemptOutcome,
    Task,
    TaskError,
    TaskLifecycleStatus,
    TransitionRecord,
    failure_fields,
    now_ms,
)
from skalds.errors import InvalidTransition

S = TaskLifecycleStatus


class Action(enum.StrEnum):
    """Something that happens to a task, and who does it."""

    ASSIGN = "assign"  # dispatcher: placed on a node
    START = "start"  # node: the worker process runs
    APPLIED = "applied"  # node: the worker's update handler returned a version
    PAUSE = "pause"  # user
    RESUME = "resume"  # user
    CANCEL = "cancel"  # user
    FINISH = "finish"  # node: main handler returned
    FAIL = "fail"  # node or monitor: raised, or out of retries
    REQUEUE = "requeue"  # monitor or node: the executor is gone or gave it back; place it again
    UPDATE = "update"  # user: new attachments
    REPLACE = "replace"  # declaration: new class (or a re-run of an ended task), start over
    RETRY = "retry"  # user: run an ended task again


_ACTIVE = (S.ASSIGNING, S.RUNNING, S.PAUSED)

#: action -> {from state: to state}. A pair that is missing is not allowed.
TRANSITIONS: dict[Action, dict[S, S]] = {
    Action.ASSIGN: {S.CREATED: S.ASSIGNING, S.PAUSED: S.PAUSED},
    Action.START: {S.ASSIGNING: S.RUNNING, S.RUNNING: S.RUNNING, S.PAUSED: S.PAUSED},
    Action.APPLIED: {s: s for s in _ACTIVE},
    Action.PAUSE: {S.CREATED: S.PAUSED, S.ASSIGNING: S.PAUSED, S.RUNNING: S.PAUSED},
    Action.RESUME: {S.PAUSED: S.RUNNING},
    Action.CANCEL: {s: S.CANCELLED for s in LIVE_STATES},
    Action.FINISH: {s: S.FINISHED for s in _ACTIVE},
    Action.FAIL: {s: S.FAILED for s in LIVE_STATES},
    Action.REQUEUE: {S.ASSIGNING: S.CREATED, S.RUNNING: S.CREATED, S.PAUSED: S.PAUSED},
    Action.UPDATE: {s: s for s in LIVE_STATES},
    Action.REPLACE: {s: S.CREATED for s in S},
    Action.RETRY: {S.FINISHED: S.CREATED, S.FAILED: S.CREATED, S.CANCELLED: S.CREATED},
}

#: Actions that only the task's current executor may take, fenced by its epoch.
EXECUTOR_ACTIONS = frozenset({Action.START, Action.APPLIED, Action.FINISH})
#: Actions after which the task is placed again (at a new epoch, without an executor).
_UNPLACING = frozenset({Action.REQUEUE, Action.REPLACE, Action.RETRY})


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
    still holds the given value (snake_case field names, enum members or plain values).
    ``push`` appends one item to each named list field (keeping its newest
    :data:`~skalds.core.task.KEPT`)."""

    task_id: str
    expect: dict[str, Any]
    changes: dict[str, Any] = field(default_factory=dict)
    push: dict[str, Any] = field(default_factory=dict)


def plan(
    task: Task,
    action: Action,
    *,
    ended: Attempt | None = None,
    actor: str | None = None,
    reason: str | None = None,
    **changes: Any,
) -> Transition:
    """Check ``action`` against the table and build the write that performs it.

    ``changes`` are extra fields to set (snake_case names), e.g. ``executor`` for ASSIGN.
    ASSIGN, REQUEUE, REPLACE and RETRY bump the epoch, which fences the old executor out;
    ``ended`` records how the attempt that just ended went. UPDATE is conditional on the
    ``desired_version`` it read as well, so two updates never both claim one version. The
    write appends a :class:`~skalds.core.task.TransitionRecord` to the task's history, by
    ``actor`` (default: the task's executor, the one actor that names no one else) for
    ``reason``.
    """
    target = next_status(task, action)
    fields: dict[str, Any] = {"lifecycle_status": target, "update_date_time": now_ms()}
    if action is Action.ASSIGN or action in _UNPLACING or (action is Action.RESUME and target is S.CREATED):
        fields["epoch"] = task.epoch + 1
    if action in _UNPLACING:
        fields["executor"] = None
        fields["started_at"] = None
    if action in (Action.REPLACE, Action.RETRY):
        fields.update(attempt=0, retry_at=None, **failure_fields(None))
    if action is Action.START:
        # A new attempt runs: the previous attempt's error is history now (in ``attempts``).
        fields.update(started_at=now_ms(), retry_at=None, **failure_fields(None))
    if target not in (S.CREATED, S.PAUSED):
        fields["pending_reason"] = None  # placed, or ended: it no longer waits for a node
    fields.update(changes)
    expect: dict[str, Any] = {"lifecycle_status": task.lifecycle_status, "epoch": task.epoch}
    if action is Action.UPDATE:
        expect["desired_version"] = task.desired_version
    record = TransitionRecord(
        at=fields["update_date_time"],
        actor=actor or task.executor or "system",
        action=action.value,
        status=target,
        epoch=fields.get("epoch", task.epoch),
        attempt=fields.get("attempt", task.attempt),
        reason=reason or (ended.error if ended is not None else None),
    )
    push: dict[str, Any] = {"history": record}
    if ended is not None:
        push["attempts"] = ended
    return Transition(task.id, expect, fields, push)


def ended_attempt(task: Task, outcome: AttemptOutcome, error: TaskError | str | None = None) -> Attempt:
    """The record of ``task``'s current attempt ending now with ``outcome``."""
    message = error.message if isinstance(error, TaskError) else error
    return Attempt(
        attempt=task.attempt,
        epoch=task.epoch,
        node=task.executor,
        started_at=task.started_at,
        ended_at=now_ms(),
        outcome=outcome,
        error=message,
    )


def keep_newest(name: str, items: list[Any]) -> list[Any]:
    """The newest entries of the history list ``name`` that a task keeps."""
    return items[-KEPT.get(name, 100) :]


#: The task fields that hold a task's own retry policy, as :meth:`RetryPolicy.merged` reads them.
RETRY_FIELDS = ("max_retries", "retry_backoff_s", "retry_backoff_max_s")


@dataclass(frozen=True)
class RetryPolicy:
    """When a lost run is tried again: at most ``max_retries`` times, each after an
    exponential backoff of ``backoff_base_s * 2**(n-1)`` seconds capped at ``backoff_cap_s``.
    The same policy covers every way a run is lost (process killed, crashed, silent, node
    lost); a clean stop or a hand-back consumes nothing.

    A node and a monitor hold the config's policy; a task may carry its own (the fields
    named in :data:`RETRY_FIELDS`), which wins field by field: :meth:`lost` and
    :meth:`allows` judge each task by :meth:`for_task`."""

    max_retries: int
    backoff_base_s: float
    backoff_cap_s: float

    def merged(self, settings: Mapping[str, Any]) -> RetryPolicy:
        """This policy with the values ``settings`` gives (keys of :data:`RETRY_FIELDS`;
        an absent or None value keeps this policy's). A backoff given without a cap raises
        the cap it inherits to at least itself: the more specific setting wins."""
        retries, base, cap = (settings.get(name) for name in RETRY_FIELDS)
        new_base = self.backoff_base_s if base is None else float(base)
        if cap is None:
            new_cap = self.backoff_cap_s if base is None else max(self.backoff_cap_s, new_base)
        else:
            new_cap = float(cap)
        return RetryPolicy(self.max_retries if retries is None else int(retries), new_base, new_cap)

    def for_task(self, task: Task) -> RetryPolicy:
        """The policy that judges ``task``: its own settings where it has them, else this."""
        return self.merged({name: getattr(task, name, None) for name in RETRY_FIELDS})

    def fields(self) -> dict[str, Any]:
        """This policy as task fields (what a task created under it stores)."""
        return dict(zip(RETRY_FIELDS, (self.max_retries, self.backoff_base_s, self.backoff_cap_s), strict=True))

    def allows(self, task: Task) -> bool:
        """Whether ``task`` has a retry left."""
        return task.attempt < self.for_task(task).max_retries

    def delay_s(self, retry: int) -> float:
        """Backoff before retry number ``retry`` (1 for the first)."""
        return float(min(self.backoff_cap_s, self.backoff_base_s * 2 ** max(0, retry - 1)))

    def lost(
        self,
        task: Task,
        outcome: AttemptOutcome,
        error: TaskError,
        actor: str | None = None,
        lost_at_ms: int | None = None,
    ) -> Transition:
        """The write after ``task``'s run was lost, by the task's own policy: a requeue with
        backoff while retries are left (``attempt`` + 1), else Failed with ``error``. The
        backoff counts from ``lost_at_ms`` when the run ended before it was noticed (a lost
        node's workers stopped by their lease, a lease TTL before the monitor could tell).

        Raises:
            InvalidTransition: the task's state allows neither (it ended meanwhile).
        """
        policy = self.for_task(task)
        ended = ended_attempt(task, outcome, error)
        if task.attempt >= policy.max_retries:
            return plan(
                task,
                Action.FAIL,
                ended=ended,
                actor=actor,
                reason=f"{error.message}; no retries left (maxRetries {policy.max_retries})",
                **failure_fields(error),
            )
        retry = task.attempt + 1
        now = now_ms()
        retry_at = min(now, lost_at_ms if lost_at_ms is not None else now) + int(policy.delay_s(retry) * 1000)
        wait_s = max(0, retry_at - now) / 1000
        reason = f"{error.message}; retry {retry}/{policy.max_retries} in {wait_s:g}s"
        # One reading of the clock for the write: its time and its backoff agree to the ms.
        changes = {"attempt": retry, "retry_at": retry_at, "update_date_time": now, **failure_fields(error)}
        return plan(task, Action.REQUEUE, ended=ended, actor=actor, reason=reason, **changes)
