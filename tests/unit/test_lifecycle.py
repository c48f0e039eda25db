"""The transition table and the plans built from it."""

from __future__ import annotations

import pytest

from skalds.core.lifecycle import TRANSITIONS, Action, RetryPolicy, allowed, next_status, plan
from skalds.core.task import TERMINAL_STATES, AttemptOutcome, Task, TaskError, TaskLifecycleStatus
from skalds.errors import InvalidTransition

S = TaskLifecycleStatus


def task(status: S, executor: str | None = "n1", epoch: int = 3) -> Task:
    return Task(id="t", class_name="C", lifecycle_status=status, executor=executor, epoch=epoch)


@pytest.mark.parametrize("action", [a for a in Action if a not in (Action.REPLACE, Action.RETRY)])
@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
def test_no_action_but_replace_or_retry_leaves_a_terminal_state(action: Action, terminal: S) -> None:
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


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
def test_an_update_of_an_ended_task_is_refused_by_the_table(terminal: S) -> None:
    with pytest.raises(InvalidTransition, match=terminal.value):
        plan(task(terminal), Action.UPDATE, desired_version=1)


def test_an_update_is_conditional_on_the_state_epoch_and_version_it_read() -> None:
    t = task(S.RUNNING).model_copy(update={"desired_version": 4})
    written = plan(t, Action.UPDATE, desired_version=5)
    assert written.expect == {"lifecycle_status": S.RUNNING, "epoch": 3, "desired_version": 4}


def test_start_clears_the_previous_attempts_error() -> None:
    t = task(S.ASSIGNING).model_copy(update={"error": "old", "exception": "old", "retry_at": 5})
    changes = plan(t, Action.START).changes
    assert changes["error"] is None and changes["exception"] is None and changes["retry_at"] is None
    assert changes["started_at"] is not None


def test_the_retry_policy_backs_off_exponentially_up_to_its_cap() -> None:
    policy = RetryPolicy(max_retries=9, backoff_base_s=0.5, backoff_cap_s=3)
    assert [policy.delay_s(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_lost_run_is_requeued_with_backoff_and_recorded_until_retries_run_out() -> None:
    policy = RetryPolicy(max_retries=1, backoff_base_s=2, backoff_cap_s=30)
    error = TaskError(message="worker process killed by SIGKILL", exit_code=-9)
    requeue = policy.lost(task(S.RUNNING), AttemptOutcome.WORKER_LOST, error)
    assert requeue.changes["lifecycle_status"] is S.CREATED and requeue.changes["attempt"] == 1
    assert requeue.changes["retry_at"] >= requeue.changes["update_date_time"] + 2000
    assert requeue.changes["error"] == "worker process killed by SIGKILL"
    ended = requeue.push["attempts"]
    assert (ended.outcome, ended.node, ended.epoch, ended.attempt) == (AttemptOutcome.WORKER_LOST, "n1", 3, 0)
    exhausted = task(S.RUNNING).model_copy(update={"attempt": 1})
    fail = policy.lost(exhausted, AttemptOutcome.WORKER_LOST, error)
    assert fail.changes["lifecycle_status"] is S.FAILED and fail.changes["error_detail"] == error


def test_a_paused_task_requeued_stays_paused_without_an_executor() -> None:
    t = plan(task(S.PAUSED), Action.REQUEUE)
    assert t.changes["lifecycle_status"] is S.PAUSED and t.changes["executor"] is None and t.changes["epoch"] == 4


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
def test_retry_runs_an_ended_task_again_from_scratch(terminal: S) -> None:
    t = plan(task(terminal).model_copy(update={"attempt": 3, "error": "x"}), Action.RETRY)
    assert t.changes["lifecycle_status"] is S.CREATED and t.changes["attempt"] == 0 and t.changes["error"] is None
