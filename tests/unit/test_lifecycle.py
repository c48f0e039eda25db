"""The transition table and the plans built from it."""

from __future__ import annotations

import pytest

from skalds.core.lifecycle import RETRY_FIELDS, TRANSITIONS, Action, RetryPolicy, allowed, next_status, plan
from skalds.core.task import TERMINAL_STATES, AttemptOutcome, Task, TaskError, TaskLifecycleStatus, now_ms
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


def test_the_backoff_counts_from_when_the_run_was_lost_not_from_when_it_was_noticed() -> None:
    # A lost node's workers stopped by their lease: by the time the monitor tells, a lease
    # TTL has passed, and a backoff shorter than that is over (failover took lease + backoff).
    policy = RetryPolicy(max_retries=3, backoff_base_s=0.5, backoff_cap_s=30)
    error = TaskError(message="node n1 lost its lease")
    now = now_ms()
    over = policy.lost(task(S.RUNNING), AttemptOutcome.NODE_LOST, error, lost_at_ms=now - 2500)
    assert over.changes["retry_at"] <= now_ms() - 2000 and "in 0s" in over.push["history"].reason
    longer = RetryPolicy(max_retries=3, backoff_base_s=10, backoff_cap_s=30)
    left = longer.lost(task(S.RUNNING), AttemptOutcome.NODE_LOST, error, lost_at_ms=now - 2500)
    assert now + 7000 <= left.changes["retry_at"] <= now + 7600
    future = policy.lost(task(S.RUNNING), AttemptOutcome.NODE_LOST, error, lost_at_ms=now + 60_000)
    assert future.changes["retry_at"] <= now_ms() + 600, "a lost time ahead of now counts as now"


CONFIG = RetryPolicy(max_retries=3, backoff_base_s=0.5, backoff_cap_s=30)


def test_a_task_without_its_own_policy_is_judged_by_the_config() -> None:
    assert CONFIG.for_task(task(S.RUNNING)) == CONFIG
    assert CONFIG.merged({}) == CONFIG and CONFIG.merged(dict.fromkeys(RETRY_FIELDS)) == CONFIG


def test_each_setting_of_the_task_wins_over_the_config_field_by_field() -> None:
    own = task(S.RUNNING).model_copy(update={"max_retries": 0})
    assert CONFIG.for_task(own) == RetryPolicy(0, 0.5, 30)
    own = task(S.RUNNING).model_copy(update={"retry_backoff_s": 2.0, "retry_backoff_max_s": 4.0})
    assert CONFIG.for_task(own) == RetryPolicy(3, 2.0, 4.0)


def test_request_over_class_over_config() -> None:
    cls = {"max_retries": 5, "retry_backoff_s": 1.0}
    request = {"max_retries": 1, "retry_backoff_s": None}
    assert CONFIG.merged(cls).merged(request) == RetryPolicy(1, 1.0, 30)
    assert CONFIG.merged(cls).merged({}) == RetryPolicy(5, 1.0, 30)
    assert CONFIG.merged({}).merged(request) == RetryPolicy(1, 0.5, 30)


def test_a_backoff_longer_than_the_inherited_cap_raises_the_cap_unless_a_cap_is_given() -> None:
    assert CONFIG.merged({"retry_backoff_s": 60}) == RetryPolicy(3, 60.0, 60.0)
    assert CONFIG.merged({"retry_backoff_s": 60, "retry_backoff_max_s": 10}) == RetryPolicy(3, 60.0, 10.0)
    assert CONFIG.merged({"retry_backoff_max_s": 10}).merged({"retry_backoff_s": 20}).backoff_cap_s == 20


def test_a_policy_stored_on_a_task_reads_back_as_itself() -> None:
    policy = RetryPolicy(2, 1.5, 8)
    stored = task(S.RUNNING).model_copy(update=policy.fields())
    assert RetryPolicy(9, 9, 9).for_task(stored) == policy
    doc = stored.to_doc()
    assert (doc["maxRetries"], doc["retryBackoff"], doc["retryBackoffMax"]) == (2, 1.5, 8)
    assert Task.from_doc(doc) == stored


def test_a_lost_run_is_judged_by_the_tasks_own_policy() -> None:
    error = TaskError(message="worker lost")
    none_left = task(S.RUNNING).model_copy(update={"max_retries": 0})
    fail = CONFIG.lost(none_left, AttemptOutcome.WORKER_LOST, error)
    assert fail.changes["lifecycle_status"] is S.FAILED and "maxRetries 0" in fail.push["history"].reason
    assert not CONFIG.allows(none_left) and CONFIG.allows(task(S.RUNNING))
    slow = task(S.RUNNING).model_copy(update={"attempt": 1, "max_retries": 2, "retry_backoff_s": 4.0})
    requeue = CONFIG.lost(slow, AttemptOutcome.NODE_LOST, error)
    assert requeue.changes["attempt"] == 2
    assert requeue.changes["retry_at"] - requeue.changes["update_date_time"] >= 8000, "4 s * 2^(2-1)"
    assert "retry 2/2 in 8s" in requeue.push["history"].reason


def test_a_paused_task_requeued_stays_paused_without_an_executor() -> None:
    t = plan(task(S.PAUSED), Action.REQUEUE)
    assert t.changes["lifecycle_status"] is S.PAUSED and t.changes["executor"] is None and t.changes["epoch"] == 4


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
def test_retry_runs_an_ended_task_again_from_scratch(terminal: S) -> None:
    t = plan(task(terminal).model_copy(update={"attempt": 3, "error": "x"}), Action.RETRY)
    assert t.changes["lifecycle_status"] is S.CREATED and t.changes["attempt"] == 0 and t.changes["error"] is None
