"""The transition table and the plans built from it."""

from __future__ import annotations

import pytest

from skalds.core.lifecycle import TRANSITIONS, Action, allowed, next_status, plan
from skalds.core.task import TERMINAL_STATES, Task, TaskLifecycleStatus
from skalds.errors import InvalidTransition

S = TaskLifecycleStatus


def task(status: S, executor: str | None = "n1", epoch: int = 3) -> Task:
    return Task(id="t", class_name="C", lifecycle_status=status, executor=executor, epoch=epoch)


@pytest.mark.parametrize("action", [a for a in Action if a is not Action.REPLACE])
@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
def test_no_action_but_replace_leaves_a_terminal_state(action: Action, terminal: S) -> None:
    assert not allowed(terminal, action)
    with pytest.raises(InvalidTransition):
        next_status(task(terminal), action)


@pytest.mark.parametrize(
    ("start", "action", "end"),
    [
        (S.CREATED, Action.ASSIGN, S.ASSIGNING),
        (S.ASSIGNING, Action.START, S.RUNNING),
        (S.RUNNING, Action.PAUSE, S.PAUSED),
        (S.PAUSED, Action.RESUME, S.RUNNING),
        (S.RUNNING, Action.CANCEL, S.CANCELLED),
        (S.RUNNING, Action.FINISH, S.FINISHED),
        (S.RUNNING, Action.FAIL, S.FAILED),
        (S.RUNNING, Action.REQUEUE, S.CREATED),
        (S.PAUSED, Action.REQUEUE, S.PAUSED),
        (S.PAUSED, Action.START, S.PAUSED),
        (S.CREATED, Action.PAUSE, S.PAUSED),
    ],
)
def test_the_table_moves_tasks_as_designed(start: S, action: Action, end: S) -> None:
    assert next_status(task(start), action) is end


@pytest.mark.parametrize(
    ("start", "action"), [(S.RUNNING, Action.RESUME), (S.PAUSED, Action.PAUSE), (S.CREATED, Action.START)]
)
def test_actions_out_of_place_are_refused_with_the_current_state(start: S, action: Action) -> None:
    with pytest.raises(InvalidTransition, match=start.value):
        next_status(task(start), action)


def test_assign_and_requeue_bump_the_epoch_and_requeue_clears_the_executor() -> None:
    assigned = plan(task(S.CREATED, executor=None), Action.ASSIGN, executor="n2")
    assert assigned.changes["epoch"] == 4 and assigned.changes["executor"] == "n2"
    requeued = plan(task(S.RUNNING), Action.REQUEUE)
    assert requeued.changes["epoch"] == 4 and requeued.changes["executor"] is None
    assert requeued.expect == {"lifecycle_status": S.RUNNING, "epoch": 3}


def test_resuming_a_paused_task_without_a_worker_places_it_again() -> None:
    t = plan(task(S.PAUSED, executor=None), Action.RESUME)
    assert t.changes["lifecycle_status"] is S.CREATED and t.changes["epoch"] == 4


def test_every_state_is_covered_by_cancel_or_is_terminal() -> None:
    for s in S:
        assert s in TRANSITIONS[Action.CANCEL] or s in TERMINAL_STATES


@pytest.mark.parametrize("start", list(S))
def test_replace_starts_any_task_over_unplaced_at_a_new_epoch(start: S) -> None:
    t = plan(task(start), Action.REPLACE, class_name="D")
    assert t.changes["lifecycle_status"] is S.CREATED
    assert (t.changes["epoch"], t.changes["executor"], t.changes["attempt"]) == (4, None, 0)
    assert t.changes["class_name"] == "D"
