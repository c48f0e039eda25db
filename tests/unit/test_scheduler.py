"""A dispatch round: priority order with aging, deadlines, dependencies, backoff, queue
positions, and the choice of a task to displace. Hand-built snapshots, no I/O."""

from __future__ import annotations

import pytest

from skalds.core.dispatch import build_policy
from skalds.core.scheduler import (
    DEADLINE_PASSED,
    RoundOptions,
    backoff_text,
    choose_victim,
    effective_priority,
    plan_round,
    reason_kind,
    waiting_since,
)
from skalds.core.task import (
    Attempt,
    AttemptOutcome,
    DependencyCondition,
    Task,
    TaskLifecycleStatus,
    TransitionRecord,
)
from tests.unit.test_dispatch import node

S = TaskLifecycleStatus
NOW = 1_000_000_000
POLICY = build_policy("least_loaded")


def task(task_id: str, priority: int = 0, created: int = 0, class_name: str = "A", **fields: object) -> Task:
    return Task(id=task_id, class_name=class_name, priority=priority, create_date_time=NOW - 1000 + created, **fields)  # type: ignore[arg-type]


def placed(result: object) -> list[str]:
    return [p.task.id for p in result.placements]  # type: ignore[attr-defined]


def test_higher_priority_goes_first_then_the_older_task() -> None:
    tasks = [
        task("low", 0, created=0),
        task("high", 9, created=5),
        task("mid-new", 5, created=3),
        task("mid", 5, created=1),
    ]
    result = plan_round(tasks, [node("n", 0, capacity=2)], POLICY, RoundOptions(aging_s=0), NOW)
    assert placed(result) == ["high", "mid"]
    assert result.reasons == {
        "mid-new": "all 2 matching slots busy (position 1)",
        "low": "all 2 matching slots busy (position 2)",
    }


def test_a_full_cluster_places_nothing_and_numbers_the_queue_per_set_of_matching_nodes() -> None:
    tasks = [task("a1", created=1), task("b1", created=2, class_name="B"), task("a2", created=3)]
    pool = [node("na", 2, capacity=2), node("nb", 1, capacity=1, classes=("B",))]
    result = plan_round(tasks, pool, POLICY, RoundOptions(), NOW)
    assert result.placements == []
    assert result.reasons == {
        "a1": "all 2 matching slots busy (position 1)",
        "b1": "all 1 matching slots busy (position 1)",
        "a2": "all 2 matching slots busy (position 2)",
    }
    assert [t.id for t in result.short] == ["a1", "b1", "a2"]


def test_a_task_that_cannot_run_does_not_hold_back_one_that_can() -> None:
    tasks = [task("gpu", 9, resources={"gpu": 1}), task("plain", 0)]
    result = plan_round(tasks, [node("n", 0)], POLICY, RoundOptions(), NOW)
    assert placed(result) == ["plain"]
    assert result.reasons == {"gpu": "not enough gpu (needs 1, most free 0)"}


def test_placements_within_a_round_use_up_the_room_they_take() -> None:
    tasks = [task(f"g{i}", created=i, resources={"gpu": 1}) for i in range(3)]
    result = plan_round(tasks, [node("n", 0, capacity=8, offers={"gpu": 2})], POLICY, RoundOptions(), NOW)
    assert placed(result) == ["g0", "g1"]
    assert result.reasons == {"g2": "not enough gpu (needs 1, most free 0)"}
    assert result.nodes[0].used == {"slots": 2, "gpu": 2}


def test_aging_lets_a_long_waiting_low_priority_task_overtake_new_high_priority_ones() -> None:
    old = task("old", 0, created=-600_000)  # waited 600 s (and 1 s more) at NOW
    fresh = [task(f"hi{i}", 9, created=i) for i in range(3)]
    options = RoundOptions(aging_s=60)
    assert effective_priority(old, NOW, 60) == pytest.approx(10 + 1 / 60)
    result = plan_round([*fresh, old], [node("n", 0, capacity=1)], POLICY, options, NOW)
    assert placed(result) == ["old"]
    without = plan_round([*fresh, old], [node("n", 0, capacity=1)], POLICY, RoundOptions(aging_s=0), NOW)
    assert placed(without) == ["hi0"]


def test_waiting_time_counts_from_the_latest_requeue_not_the_creation() -> None:
    history = [
        TransitionRecord(at=NOW - 900_000, actor="api", action="create", status=S.CREATED, epoch=0),
        TransitionRecord(at=NOW - 800_000, actor="d", action="assign", status=S.ASSIGNING, epoch=1),
        TransitionRecord(at=NOW - 799_000, actor="n", action="start", status=S.RUNNING, epoch=1),
        TransitionRecord(at=NOW - 10_000, actor="monitor", action="requeue", status=S.CREATED, epoch=2),
        TransitionRecord(at=NOW - 5_000, actor="api", action="update", status=S.CREATED, epoch=2),
    ]
    requeued = task("t", history=history)
    assert waiting_since(requeued) == NOW - 10_000
    assert waiting_since(task("new")) == NOW - 1000


def test_a_task_that_never_ran_fails_at_its_deadline_and_one_that_ran_does_not() -> None:
    late = task("late", deadline_date_time=NOW - 1)
    due = task("due", deadline_date_time=NOW + 5000)
    ran = Attempt(attempt=0, epoch=1, node="n", ended_at=1, outcome=AttemptOutcome.NODE_LOST)
    requeued = task("requeued", deadline_date_time=NOW - 1, attempts=[ran])
    result = plan_round([late, due, requeued], [node("n", 4, capacity=4)], POLICY, RoundOptions(), NOW)
    assert result.failures == {"late": DEADLINE_PASSED}
    assert DEADLINE_PASSED == "deadline passed while waiting"
    assert result.wake_at == {"due": NOW + 5000}, "looked at again when its deadline comes"
    assert set(result.reasons) == {"due", "requeued"}


def test_a_task_backing_off_waits_for_its_retry_time() -> None:
    backing = task("b", retry_at=NOW + 2500)
    result = plan_round([backing], [node("n", 0)], POLICY, RoundOptions(), NOW)
    assert result.placements == [] and result.wake_at == {"b": NOW + 2500}
    assert result.reasons["b"] == backoff_text(NOW + 2500)
    assert backoff_text(1_795_860_003_250) == "backing off until 2026-11-28T10:00:03.250Z"
    assert placed(plan_round([backing], [node("n", 0)], POLICY, RoundOptions(), NOW + 2500)) == ["b"]


def dep(task_id: str, status: S, **fields: object) -> Task:
    return Task(id=task_id, class_name="A", lifecycle_status=status, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("condition", "state", "outcome"),
    [
        (
            DependencyCondition.FINISHED,
            dep("d", S.RUNNING, executor="n", started_at=1),
            "waiting for task d to be Finished",
        ),
        (DependencyCondition.FINISHED, dep("d", S.FINISHED), None),
        (DependencyCondition.RUNNING, dep("d", S.CREATED), "waiting for task d to be Running"),
        (DependencyCondition.RUNNING, dep("d", S.ASSIGNING, executor="n"), "waiting for task d to be Running"),
        (DependencyCondition.RUNNING, dep("d", S.RUNNING, executor="n", started_at=1), None),
        (DependencyCondition.RUNNING, dep("d", S.PAUSED, executor="n", started_at=1), None),
        (DependencyCondition.RUNNING, dep("d", S.FINISHED), None),
        (DependencyCondition.FINISHED, dep("d", S.FAILED), "fail: dependency d is Failed"),
        (DependencyCondition.RUNNING, dep("d", S.CANCELLED), "fail: dependency d is Cancelled"),
        (DependencyCondition.FINISHED, None, "waiting for task d, which does not exist"),
    ],
)
def test_dependencies_hold_a_task_back_until_met_and_fail_it_when_one_ended_badly(
    condition: DependencyCondition, state: Task | None, outcome: str | None
) -> None:
    waiting = task("w", dependencies=["d"], dependency_condition=condition)
    result = plan_round([waiting], [node("n", 0)], POLICY, RoundOptions(), NOW, {"d": state})
    assert result.watched == {"d"}
    if outcome is None:
        assert placed(result) == ["w"]
    elif outcome.startswith("fail: "):
        assert result.failures == {"w": outcome[6:]} and result.placements == []
    else:
        assert result.reasons == {"w": outcome} and result.placements == []


def test_every_dependency_must_be_met() -> None:
    waiting = task("w", dependencies=["a", "b"])
    deps = {"a": dep("a", S.FINISHED), "b": dep("b", S.CREATED)}
    result = plan_round([waiting], [node("n", 0)], POLICY, RoundOptions(), NOW, deps)
    assert result.reasons == {"w": "waiting for task b to be Finished"}


def test_a_reason_without_its_position_is_its_cause() -> None:
    assert reason_kind("all 16 matching slots busy (position 12)") == "all 16 matching slots busy"
    assert reason_kind("no node offers class A") == "no node offers class A"


# ---- preemption ---------------------------------------------------------------------------------
def running(task_id: str, priority: int, node_id: str = "n", started: int = 0, **fields: object) -> Task:
    fields.setdefault("holds", {"slots": 1})
    return Task(
        id=task_id,
        class_name="A",
        priority=priority,
        lifecycle_status=S.RUNNING,
        executor=node_id,
        started_at=started,
        **fields,  # type: ignore[arg-type]
    )


def test_the_lowest_priority_running_task_below_the_waiting_one_is_displaced() -> None:
    full = [node("n", 3, capacity=3)]
    tasks = {"n": [running("p5", 5), running("p1-old", 1, started=10), running("p1-new", 1, started=20)]}
    chosen = choose_victim(task("urgent", 7), full, tasks)
    assert chosen is not None and (chosen.victim.id, chosen.node) == ("p1-new", "n"), "least work lost"
    assert choose_victim(task("meh", 1), full, tasks) is None, "only lower priorities are displaced"
    assert choose_victim(task("urgent", 7), full, tasks, exclude={"p1-new", "p1-old"}).victim.id == "p5"  # type: ignore[union-attr]


def test_a_pinned_task_and_one_on_a_node_that_cannot_run_the_waiting_task_are_never_displaced() -> None:
    pool = [node("n", 1, capacity=1), node("other", 1, capacity=1, classes=("B",))]
    tasks = {"n": [running("edge-own", 0, pinned_node="n")], "other": [running("b", 0, node_id="other")]}
    assert choose_victim(task("urgent", 9), pool, tasks) is None


def test_a_displacement_must_free_enough_of_every_resource() -> None:
    pool = [node("n", 2, capacity=2, offers={"gpu": 1}, used={"gpu": 1})]
    cpu_only = running("cpu", 0)
    gpu = running("gpu", 3, holds={"slots": 1, "gpu": 1})
    wants_gpu = task("urgent", 9, resources={"gpu": 1})
    chosen = choose_victim(wants_gpu, pool, {"n": [cpu_only, gpu]})
    assert chosen is not None and chosen.victim.id == "gpu", "the lower one would free no gpu"
