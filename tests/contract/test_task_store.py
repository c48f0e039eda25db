"""Contract of the TaskStore port, run against every adapter."""

from __future__ import annotations

import threading

import pytest

from skalds.core.lifecycle import Action, Transition, ended_attempt, plan
from skalds.core.task import MAX_ATTEMPTS_KEPT, AttemptOutcome, Task, TaskError, TaskLifecycleStatus, failure_fields
from skalds.errors import StaleWrite, TaskAlreadyExists, TaskNotFound
from skalds.ports.task_store import TaskQuery, TaskStore

S = TaskLifecycleStatus


def new(task_id: str, **fields: object) -> Task:
    return Task(id=task_id, class_name=str(fields.pop("class_name", "C")), **fields)  # type: ignore[arg-type]


def test_create_then_get_returns_the_same_task(task_store: TaskStore) -> None:
    task = new("a", attachments={"rtspUrl": "x", "nested": {"k": [1, 2]}}, priority=3)
    task_store.create(task)
    assert task_store.get("a") == task


def test_a_duplicate_id_is_refused_and_the_first_task_kept(task_store: TaskStore) -> None:
    task_store.create(new("a", attachments={"v": 1}))
    with pytest.raises(TaskAlreadyExists):
        task_store.create(new("a", attachments={"v": 2}))
    assert task_store.get("a").attachments == {"v": 1}


def test_a_missing_task_raises_not_found(task_store: TaskStore) -> None:
    with pytest.raises(TaskNotFound):
        task_store.get("nope")
    with pytest.raises(TaskNotFound):
        task_store.apply(Transition("nope", {}, {"priority": 1}))


def test_apply_writes_only_while_the_expected_state_and_epoch_hold(task_store: TaskStore) -> None:
    task = task_store.create(new("a"))
    written = task_store.apply(plan(task, Action.ASSIGN, executor="n1"))
    assert (written.lifecycle_status, written.epoch, written.executor) == (S.ASSIGNING, 1, "n1")
    assert task_store.get("a") == written
    with pytest.raises(StaleWrite):
        task_store.apply(plan(task, Action.ASSIGN, executor="n2"))  # planned from the old copy
    assert task_store.get("a").executor == "n1"


def test_complex_fields_survive_a_conditional_write(task_store: TaskStore) -> None:
    task = task_store.create(new("a"))
    error = TaskError(message="boom", traceback="Traceback...", exit_code=-9)
    task_store.apply(plan(task, Action.FAIL, **failure_fields(error)))
    stored = task_store.get("a")
    assert (stored.error, stored.exception, stored.error_detail) == ("boom", "Traceback...", error)


def test_of_two_racing_writers_exactly_one_wins(task_store: TaskStore) -> None:
    task = task_store.create(new("a"))
    wins: list[str] = []
    barrier = threading.Barrier(8)

    def assign(node: str) -> None:
        barrier.wait()
        try:
            task_store.apply(plan(task, Action.ASSIGN, executor=node))
            wins.append(node)
        except StaleWrite:
            pass

    threads = [threading.Thread(target=assign, args=(f"n{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert task_store.get("a").executor == wins[0]


def test_find_filters_pages_and_counts(task_store: TaskStore) -> None:
    for i in range(7):
        task_store.create(new(f"t{i}", class_name="A" if i % 2 else "B"))
    task_store.apply(plan(task_store.get("t1"), Action.ASSIGN, executor="n1"))
    task_store.apply(plan(task_store.get("t3"), Action.ASSIGN, executor="n2"))
    page = task_store.find(TaskQuery(offset=2, limit=3))
    assert page.total == 7 and [t.id for t in page.items] == ["t2", "t3", "t4"]
    assert task_store.find(TaskQuery(class_name="A")).total == 3
    assert [t.id for t in task_store.find(TaskQuery(lifecycle_status=[S.ASSIGNING])).items] == ["t1", "t3"]
    assert [t.id for t in task_store.find(TaskQuery(executor="n2")).items] == ["t3"]
    assert task_store.count_active_by_executor() == {"n1": 1, "n2": 1}


def test_find_orders_by_creation_time_then_id(task_store: TaskStore) -> None:
    base = 1_767_323_045_250  # epoch ms
    for task_id, offset_ms in [("c", 0), ("a", 2000), ("b", 0), ("d", -1)]:
        task_store.create(new(task_id, create_date_time=base + offset_ms))
    assert [t.id for t in task_store.find(TaskQuery()).items] == ["d", "b", "c", "a"]
    assert [t.id for t in task_store.find(TaskQuery(newest_first=True)).items] == ["a", "c", "b", "d"]
    page = task_store.find(TaskQuery(offset=3, limit=10))
    assert ([t.id for t in page.items], page.total) == (["a"], 4)


def test_apply_may_expect_any_field_and_a_none_value(task_store: TaskStore) -> None:
    task_store.create(new("a", attachments={"v": 1}))
    written = task_store.apply(Transition("a", {"executor": None, "attachments": {"v": 1}}, {"priority": 5}))
    assert written.priority == 5 and task_store.get("a") == written
    with pytest.raises(StaleWrite):
        task_store.apply(Transition("a", {"executor": "n9"}, {"priority": 6}))
    assert task_store.get("a").priority == 5


def test_only_active_tasks_with_an_executor_are_counted(task_store: TaskStore) -> None:
    for task_id in ("a", "b", "c", "d"):
        task_store.create(new(task_id))
    for task_id in ("a", "b", "c"):
        task_store.apply(plan(task_store.get(task_id), Action.ASSIGN, executor="n1"))
    task_store.apply(plan(task_store.get("b"), Action.FINISH))
    task_store.apply(plan(task_store.get("c"), Action.REQUEUE))
    assert task_store.count_active_by_executor() == {"n1": 1}
    assert task_store.find(TaskQuery(lifecycle_status=[S.CREATED, S.FINISHED])).total == 3


def test_find_filters_by_source_and_by_waiting_for_a_node(task_store: TaskStore) -> None:
    task_store.create(new("api-1"))
    task_store.create(new("yaml-1", source="yaml:demo"))
    paused = task_store.create(new("paused", source="yaml:demo"))
    task_store.apply(plan(paused, Action.PAUSE))
    placed = task_store.create(new("placed"))
    task_store.apply(plan(plan_and_write(task_store, placed, Action.ASSIGN, executor="n1"), Action.PAUSE))
    assert {t.id for t in task_store.find(TaskQuery(source="yaml:demo")).items} == {"yaml-1", "paused"}
    assert {t.id for t in task_store.find(TaskQuery(unplaced=True)).items} == {"api-1", "yaml-1", "paused"}


def test_find_filters_by_the_node_a_task_is_pinned_to(task_store: TaskStore) -> None:
    task_store.create(new("edge-own", pinned_node="edge-1"))
    task_store.create(new("anywhere"))
    assert [t.id for t in task_store.find(TaskQuery(pinned_node="edge-1", unplaced=True)).items] == ["edge-own"]


def test_the_originals_list_filters_are_case_insensitive_patterns(task_store: TaskStore) -> None:
    for task_id, cls in (("cam-1", "CameraWorker"), ("cam-2", "MyWorker"), ("feed-1", "FeedWorker")):
        task_store.create(new(task_id, class_name=cls))
    plan_and_write(task_store, task_store.get("cam-2"), Action.ASSIGN, executor="n1")
    assert {t.id for t in task_store.find(TaskQuery(id_pattern="^CAM")).items} == {"cam-1", "cam-2"}
    assert {t.id for t in task_store.find(TaskQuery(class_pattern="worker$", id_pattern="1")).items} == {
        "cam-1",
        "feed-1",
    }
    assert [t.id for t in task_store.find(TaskQuery(status_pattern="assign")).items] == ["cam-2"]


def test_time_windows_counts_class_names_and_conditional_deletes(task_store: TaskStore) -> None:
    old = task_store.create(new("old", class_name="A", create_date_time=1_000, update_date_time=1_000))
    task_store.create(new("new", class_name="B"))
    assert [t.id for t in task_store.find(TaskQuery(created_after=10_000)).items] == ["new"]
    assert [t.id for t in task_store.find(TaskQuery(updated_after=10_000)).items] == ["new"]
    assert task_store.class_names() == ["A", "B"]
    ended = plan_and_write(task_store, old, Action.CANCEL)
    assert task_store.count_by_status() == {S.CREATED: 1, S.CANCELLED: 1}
    with pytest.raises(StaleWrite):
        task_store.delete("new", {"lifecycle_status": S.CANCELLED})
    task_store.delete("old", {"lifecycle_status": ended.lifecycle_status, "epoch": ended.epoch})
    with pytest.raises(TaskNotFound):
        task_store.get("old")
    with pytest.raises(TaskNotFound):
        task_store.delete("old", {})
    assert task_store.class_names() == ["B"]


def plan_and_write(store: TaskStore, task: Task, action: Action, **changes: object) -> Task:
    return store.apply(plan(task, action, **changes))


def test_attempts_are_appended_and_only_the_newest_kept(task_store: TaskStore) -> None:
    task = task_store.create(new("a"))
    for i in range(MAX_ATTEMPTS_KEPT + 3):
        task = plan_and_write(task_store, task, Action.ASSIGN, executor=f"n{i}")
        ended = ended_attempt(task, AttemptOutcome.WORKER_LOST, f"lost {i}")
        task = task_store.apply(plan(task, Action.REQUEUE, ended=ended, attempt=i + 1))
    attempts = task_store.get("a").attempts
    assert len(attempts) == MAX_ATTEMPTS_KEPT
    assert attempts[-1].error == f"lost {MAX_ATTEMPTS_KEPT + 2}" and attempts[-1].node == f"n{MAX_ATTEMPTS_KEPT + 2}"
    assert attempts[0].error == "lost 3" and attempts[-1].outcome is AttemptOutcome.WORKER_LOST


def test_times_are_epoch_milliseconds(task_store: TaskStore) -> None:
    task = task_store.create(new("a"))
    assert isinstance(task.create_date_time, int) and task.create_date_time > 1_700_000_000_000
    assert task_store.get("a").to_doc()["createDateTime"] == task.create_date_time


def test_an_unreadable_record_is_served_as_a_failed_task_that_says_why(task_store: TaskStore) -> None:
    from tests.contract.corrupt import corrupt

    task_store.create(new("good"))
    task_store.create(new("bad"))
    if not corrupt(task_store, "bad", {"lifecycleStatus": "NoSuchState"}):
        pytest.skip("this adapter offers no way to corrupt a record")
    bad = task_store.get("bad")
    assert bad.lifecycle_status is S.FAILED and "unreadable" in (bad.error or "")
    assert {t.id for t in task_store.find(TaskQuery()).items} == {"good", "bad"}
    assert task_store.find(TaskQuery(lifecycle_status=[S.CREATED])).total == 1
    written = task_store.apply(plan(bad, Action.REPLACE, class_name="C", attachments={}))
    assert written.lifecycle_status is S.CREATED and task_store.get("bad").lifecycle_status is S.CREATED


def test_active_usage_sums_what_placed_tasks_hold_per_executor(task_store: TaskStore) -> None:
    from skalds.core.dispatch import assignment, pending

    for task_id in ("gpu", "wide", "plain", "paused", "done", "waiting", "legacy"):
        task_store.create(new(task_id))
    task_store.apply(assignment(task_store.get("gpu"), "n1", holds={"slots": 1, "gpu": 1, "memory_mb": 512}))
    task_store.apply(assignment(task_store.get("wide"), "n1", holds={"slots": 3}))
    task_store.apply(assignment(task_store.get("plain"), "n2"))
    paused = task_store.apply(assignment(task_store.get("paused"), "n2", holds={"slots": 1, "gpu": 2}))
    plan_and_write(task_store, paused, Action.PAUSE)
    done = task_store.apply(assignment(task_store.get("done"), "n1", holds={"slots": 1, "gpu": 4}))
    plan_and_write(task_store, done, Action.FINISH)
    task_store.apply(pending(task_store.get("waiting"), "no node offers class C"))
    # placed by an older version: no holds recorded, one slot
    plan_and_write(task_store, task_store.get("legacy"), Action.ASSIGN, executor="n3")
    assert task_store.active_usage() == {
        "n1": {"slots": 4, "gpu": 1, "memory_mb": 512},
        "n2": {"slots": 2, "gpu": 2},
        "n3": {"slots": 1},
    }
    assert task_store.get("waiting").pending_reason == "no node offers class C"
    assert task_store.get("gpu").pending_reason is None


def test_a_pending_reason_changes_neither_history_nor_update_time_and_never_lands_on_a_placed_task(
    task_store: TaskStore,
) -> None:
    from skalds.core.dispatch import assignment, pending

    task = task_store.create(new("a", update_date_time=1_000))
    noted = task_store.apply(pending(task, "all 4 matching slots busy (position 2)"))
    assert noted.pending_reason == "all 4 matching slots busy (position 2)"
    assert (noted.update_date_time, len(noted.history)) == (1_000, len(task.history))
    placed = task_store.apply(assignment(noted, "n1"))
    assert placed.pending_reason is None
    with pytest.raises(StaleWrite):
        task_store.apply(pending(task, "stale: read before the placement"))
    assert task_store.get("a").pending_reason is None


def test_scheduling_fields_survive_the_store(task_store: TaskStore) -> None:
    from skalds.core.task import DependencyCondition

    task = new(
        "a",
        resources={"gpu": 1, "memory_mb": 1536.5},
        required_labels={"zone": "a"},
        preferred_labels={"disk": "ssd"},
        dependencies=["b"],
        dependency_condition=DependencyCondition.RUNNING,
        deadline_date_time=1_800_000_000_000,
    )
    task_store.create(task)
    assert task_store.get("a") == task


def test_create_many_stores_every_task_of_a_batch(task_store: TaskStore) -> None:
    batch = [new(f"b{i}", attachments={"n": i}, priority=i % 3) for i in range(50)]
    assert task_store.create_many(batch) == batch
    assert [task_store.get(t.id) for t in batch] == batch
    assert task_store.find(TaskQuery(limit=1)).total == 50
    assert task_store.create_many([]) == []


def test_create_many_stores_nothing_when_an_id_is_taken_and_names_each_one(task_store: TaskStore) -> None:
    task_store.create(new("b3", attachments={"v": "old"}))
    task_store.create(new("b7"))
    batch = [new(f"b{i}", attachments={"v": "new"}) for i in range(10)]  # the taken ones mid-batch
    with pytest.raises(TaskAlreadyExists) as refused:
        task_store.create_many(batch)
    assert refused.value.detail["task_ids"] == ["b3", "b7"]
    assert sorted(t.id for t in task_store.find(TaskQuery(limit=100)).items) == ["b3", "b7"], "nothing of it kept"
    assert task_store.get("b3").attachments == {"v": "old"}


def test_create_many_refuses_an_id_given_twice(task_store: TaskStore) -> None:
    batch = [new("x"), new("y"), new("x"), new("z")]
    with pytest.raises(TaskAlreadyExists) as refused:
        task_store.create_many(batch)
    assert refused.value.detail["task_ids"] == ["x"]
    assert task_store.find(TaskQuery(limit=10)).total == 0


def test_time_windows_have_an_upper_bound_too(task_store: TaskStore) -> None:
    for i, at in enumerate((1_000, 2_000, 3_000)):
        task_store.create(new(f"t{i}", create_date_time=at, update_date_time=at + 10))
    ids = lambda **q: [t.id for t in task_store.find(TaskQuery(**q)).items]  # noqa: E731
    assert ids(created_before=2_000) == ["t0"], "exclusive"
    assert ids(created_after=2_000, created_before=3_001) == ["t1", "t2"]
    assert ids(updated_after=1_500, updated_before=3_010) == ["t1"]


def test_a_keyset_page_continues_after_a_task_in_either_order(task_store: TaskStore) -> None:
    for task_id, at in (("a", 1_000), ("c", 1_000), ("b", 1_000), ("d", 2_000), ("e", 500)):
        task_store.create(new(task_id, create_date_time=at))
    ids = lambda **q: [t.id for t in task_store.find(TaskQuery(**q)).items]  # noqa: E731
    assert ids() == ["e", "a", "b", "c", "d"]
    assert ids(after=(1_000, "b"), limit=2) == ["c", "d"]
    assert ids(after=(1_000, "b"), newest_first=True) == ["a", "e"]
    assert task_store.find(TaskQuery(after=(1_000, "b"))).total == 2
    walked, after = [], None
    while True:  # pages stay whole while what was read changes state
        page = task_store.find(TaskQuery(lifecycle_status=[S.CREATED], after=after, limit=2)).items
        if not page:
            break
        for task in page:
            plan_and_write(task_store, task, Action.CANCEL)
        walked += [t.id for t in page]
        after = (page[-1].create_date_time, page[-1].id)
    assert walked == ["e", "a", "b", "c", "d"]
