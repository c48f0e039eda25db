"""What the monitor and the dispatcher read on their timers costs the same whether the store
holds no ended task or thousands: ended tasks only pile up, so a read that touched them would
grow without bound. Counted as the work the store does (SQLite virtual-machine steps, MongoDB
index keys and documents examined per ``explain``), never as time."""

from __future__ import annotations

from collections.abc import Callable

import pymongo

from skalds.backends.local.task_store import SqliteTaskStore
from skalds.backends.mongo import MongoTaskStore
from skalds.core.task import ACTIVE_STATES, Task, TaskLifecycleStatus
from skalds.ports.task_store import TaskQuery, TaskStore
from tests.contract.adapters_mongo import DB_NAME

S = TaskLifecycleStatus
ENDED = 5_000


def timer_reads(store: TaskStore) -> None:
    """Every read the controller's and the nodes' loops make on a timer, as they make it."""
    store.node_marks()  # monitor.check
    store.count_active_by_executor()  # monitor.check
    store.find(TaskQuery(unplaced=True, limit=100_000))  # monitor.sweep
    store.find(TaskQuery(lifecycle_status=sorted(ACTIVE_STATES), executor="n1", limit=100_000))  # a lost node
    store.active_usage()  # every dispatch round
    store.find(TaskQuery(lifecycle_status=[S.RUNNING], executor="n1"))  # preemption
    store.find(TaskQuery(unplaced=True, pinned_node="n1", limit=1_000_000))  # a node's own waiting tasks


def full_count(store: TaskStore) -> None:
    """A read that must visit every task (counts per state for the dashboard, on request):
    the control that shows the measure sees ended tasks."""
    store.count_by_status_and_class()


def live_tasks() -> list[Task]:
    """A few tasks in every state that is not an end: waiting, assigned, running, paused."""
    tasks = [Task(id=f"w{i}", class_name="C") for i in range(10)]
    tasks += [Task(id=f"p{i}", class_name="C", lifecycle_status=S.PAUSED) for i in range(3)]
    tasks += [Task(id=f"e{i}", class_name="C", pinned_node="n1") for i in range(2)]
    for i in range(12):
        state = (S.ASSIGNING, S.RUNNING, S.PAUSED)[i % 3]
        holds = {"slots": 1.0, "gpu": 1.0} if i % 2 else None
        tasks.append(Task(id=f"a{i}", class_name="C", lifecycle_status=state, executor=f"n{i % 2 + 1}", holds=holds))
    return tasks


def ended_tasks(count: int) -> list[Task]:
    """Ended tasks as they stay behind: executor, pin and holds of their last run kept."""
    states = (S.FINISHED, S.FAILED, S.CANCELLED)
    return [
        Task(
            id=f"x{i:05d}",
            class_name="C",
            lifecycle_status=states[i % 3],
            executor=f"n{i % 3 + 1}",
            pinned_node="n1" if i % 7 == 0 else None,
            holds={"slots": 1.0} if i % 2 else None,
        )
        for i in range(count)
    ]


def sqlite_work(store: SqliteTaskStore, reads: Callable[[TaskStore], None]) -> int:
    """SQLite virtual-machine steps ``reads`` took (a step per row a scan visits)."""
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    store._db.set_progress_handler(step, 1)
    try:
        reads(store)
    finally:
        store._db.set_progress_handler(None, 1)
    return steps


class _Commands(pymongo.monitoring.CommandListener):
    """The read commands clients send while ``on`` (find, aggregate, count), as sent."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.on = False

    def started(self, event: pymongo.monitoring.CommandStartedEvent) -> None:
        if self.on and event.command_name in ("find", "aggregate", "count"):
            self.sent.append({k: v for k, v in event.command.items() if not k.startswith("$") and k != "lsid"})

    def succeeded(self, event: pymongo.monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: pymongo.monitoring.CommandFailedEvent) -> None:
        pass


_LISTENER = _Commands()
pymongo.monitoring.register(_LISTENER)  # clients made from now on report their commands


def _examined(explained: dict) -> int:
    stats = [explained["executionStats"]] if "executionStats" in explained else []
    stats += [
        s["$cursor"]["executionStats"] for s in explained.get("stages", []) if "executionStats" in s.get("$cursor", {})
    ]
    assert stats, f"the server gave no execution stats: {explained}"
    return sum(int(s["totalKeysExamined"]) + int(s["totalDocsExamined"]) for s in stats)


def mongo_work(store: MongoTaskStore, reads: Callable[[TaskStore], None]) -> int:
    """Index keys plus documents the server examined for the commands ``reads`` sent."""
    _LISTENER.sent, _LISTENER.on = [], True
    try:
        reads(store)
    finally:
        _LISTENER.on = False
    sent = _LISTENER.sent
    assert sent
    db = store._tasks.database
    return sum(_examined(db.command("explain", command, verbosity="executionStats")) for command in sent)


def work(store: TaskStore, reads: Callable[[TaskStore], None]) -> int:
    if isinstance(store, SqliteTaskStore):
        return sqlite_work(store, reads)
    if isinstance(store, MongoTaskStore):
        assert store._tasks.database.name == DB_NAME
        return mongo_work(store, reads)
    raise AssertionError(f"no work counter for {type(store).__name__}")


def test_the_timer_reads_cost_the_same_with_thousands_of_ended_tasks(task_store: TaskStore) -> None:
    task_store.create_many(live_tasks())
    before = work(task_store, timer_reads)
    control_before = work(task_store, full_count)

    for start in range(0, ENDED, 1_000):
        task_store.create_many(ended_tasks(ENDED)[start : start + 1_000])
    after = work(task_store, timer_reads)
    control_after = work(task_store, full_count)

    assert control_after - control_before >= ENDED, "the counter does not see rows a read visits"
    # A read that visited the ended tasks would cost thousands more; B-tree depth a few.
    assert after - before <= max(10, before // 20), f"{before} -> {after} with {ENDED} ended tasks"
