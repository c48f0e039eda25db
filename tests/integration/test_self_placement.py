"""A node places the tasks bound to it itself (an edge's declared tasks, a task whose executor
a script set), with no controller; a controller's dispatcher honours the same binding. In this
process, on the embedded backends."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from skalds.core.events import TaskEvent, Topic
from skalds.core.records import NodeInfo
from skalds.core.task import Task, TaskLifecycleStatus, TaskMode
from skalds.ports.task_store import TaskQuery
from skalds.system import SkaldsSystem
from skalds.testing import wait_until
from tests.conftest import make_system, write_pool
from tests.probe_workers import read

pytestmark = pytest.mark.integration
S = TaskLifecycleStatus


def started(journal: str) -> list[dict]:
    return [e for e in read(journal) if e["event"] == "main"]


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[SkaldsSystem]:
    journal = str(tmp_path / "journal.jsonl")
    pool = write_pool(
        tmp_path / "pool.yaml",
        tasks={"own-1": {"className": "ProbeWorker", "attachments": {"journal": journal}}},
    )
    system = make_system(tmp_path / "data", "+mode=edge", "backend=local", "node.retry_backoff_s=0.3", pool=pool)
    system.start()
    try:
        yield system
    finally:
        system.stop()


def test_an_edge_on_the_embedded_backends_runs_and_retries_its_declared_tasks_with_no_controller(
    edge: SkaldsSystem, tmp_path: Path
) -> None:
    assert edge.app is None and edge.dispatcher is None and edge.monitor is None, "no controller, no API"
    store = edge.backends.store
    task = wait_until(
        lambda: (t := store.get("own-1")).lifecycle_status is S.RUNNING and t, message="the edge runs its own task"
    )
    assert (task.executor, task.pinned_node, task.mode) == ("test-node", "test-node", TaskMode.ACTIVE)

    journal = str(tmp_path / "journal.jsonl")
    os.kill(started(journal)[0]["pid"], signal.SIGKILL)
    wait_until(lambda: len(started(journal)) == 2, timeout_s=15, message="retried on the edge itself")
    again = wait_until(lambda: (t := store.get("own-1")).lifecycle_status is S.RUNNING and t, message="running")
    assert (again.executor, again.attempt) == ("test-node", 1)
    assert again.epoch > task.epoch


def test_a_lone_edge_restarted_runs_its_own_tasks_again_paused_ones_paused(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal.jsonl")
    tasks = {
        "cam": {"className": "ProbeWorker", "attachments": {"journal": journal}},
        "held": {"className": "ProbeWorker", "attachments": {"journal": journal, "label": "held"}},
    }
    pool = write_pool(tmp_path / "pool.yaml", tasks=tasks)
    first = make_system(tmp_path / "data", "+mode=edge", "backend=local", pool=pool).start()
    store = first.backends.store
    for task_id in tasks:
        wait_until(lambda t=task_id: store.get(t).lifecycle_status is S.RUNNING, message=f"{task_id} runs")
    first.service.pause("held")  # type: ignore[union-attr]
    wait_until(lambda: any(e["event"] == "paused" for e in read(journal)), message="held paused")
    first.stop()

    again = make_system(tmp_path / "data", "+mode=edge", "backend=local", pool=pool).start()
    try:
        store = again.backends.store
        cam = wait_until(lambda: (t := store.get("cam")).lifecycle_status is S.RUNNING and t, message="cam runs again")
        held = wait_until(lambda: (t := store.get("held")).executor == "test-node" and t, message="held placed again")
        assert held.lifecycle_status is S.PAUSED and cam.attempt == held.attempt == 0, "no retry consumed"
        wait_until(lambda: len(started(journal)) == 4, message="both started again, by this edge alone")
        assert store.find(TaskQuery(limit=100)).total == 2, "no duplicates"
    finally:
        again.stop()


def test_a_node_without_a_controller_runs_a_task_whose_executor_a_script_set(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal.jsonl")
    system = make_system(tmp_path / "data", "+mode=node", "backend=local").start()
    try:
        assert system.dispatcher is None
        store, bus = system.backends.store, system.backends.bus
        # The seed's script: create (Created, no executor), name the executor, announce it.
        store.create(
            Task(id="preset", class_name="ProbeWorker", attachments={"journal": journal}, executor="test-node")
        )
        bus.publish(Topic.TASK_ASSIGN, "preset", TaskEvent(task_ids=["preset"]).to_value())
        # ... and one whose event was lost: the reconcile sweep places it.
        quiet = str(tmp_path / "quiet.jsonl")
        store.create(Task(id="quiet", class_name="ProbeWorker", attachments={"journal": quiet}, executor="test-node"))
        for task_id in ("preset", "quiet"):
            task = wait_until(
                lambda t=task_id: (x := store.get(t)).lifecycle_status is S.RUNNING and x, message=f"{task_id} runs"
            )
            assert (task.executor, task.pinned_node) == ("test-node", "test-node"), "pinned to it from now on"
        store.create(Task(id="not-mine", class_name="ProbeWorker", attachments={"journal": quiet}, executor="other"))
        bus.publish(Topic.TASK_ASSIGN, "not-mine", TaskEvent(task_ids=["not-mine"]).to_value())
        system.node.reconciler.place_waiting()  # type: ignore[union-attr]
        assert store.get("not-mine").lifecycle_status is S.CREATED, "bound to another node: left alone"
    finally:
        system.stop()


def test_the_dispatcher_places_a_task_whose_executor_was_set_only_on_that_node(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal.jsonl")
    system = make_system(tmp_path / "data", "monitor.sweep_interval_s=0.05").start()  # controller + test-node
    try:
        store, live = system.backends.store, system.backends.live
        store.create(Task(id="there", class_name="ProbeWorker", attachments={"journal": journal}, executor="node-b"))
        system.dispatcher.submit(["there"])  # type: ignore[union-attr]
        assert system.dispatcher.dispatch(["there"]) == ["there"], "node-b holds no lease: it waits"  # type: ignore[union-attr]
        for _ in range(3):
            system.monitor.sweep()  # type: ignore[union-attr]
        assert store.get("there").lifecycle_status is S.CREATED, "never placed on test-node by the policy"

        live.claim_node(NodeInfo(id="node-b", mode="node", classes=["ProbeWorker"], capacity=4, instance="b"), 30)
        assert system.dispatcher.dispatch(["there"]) == []  # type: ignore[union-attr]
        placed = store.get("there")
        assert (placed.lifecycle_status, placed.executor, placed.pinned_node) == (S.ASSIGNING, "node-b", "node-b")
    finally:
        system.stop()


def test_the_monitor_takes_a_lost_edges_own_task_back_without_cancelling_its_copy(tmp_path: Path) -> None:
    from skalds.backends.local import LocalEventBus, MemoryLiveState, SqliteTaskStore
    from skalds.controller.dispatcher import Dispatcher
    from skalds.controller.monitor import Monitor, MonitorSettings
    from skalds.core.dispatch import assignment, build_policy

    store, bus, live = SqliteTaskStore(tmp_path / "tasks.db"), LocalEventBus(), MemoryLiveState()
    seen: list[str] = []
    bus.subscribe([str(Topic.TASK_CANCEL)], "test", lambda event: seen.append(event.value["taskId"]))
    monitor = Monitor(MonitorSettings(), Dispatcher(build_policy("least_loaded"), bus, store, live), bus, store, live)
    for task_id, pinned in (("own", "edge-x"), ("free", None)):
        task = store.create(Task(id=task_id, class_name="ProbeWorker", pinned_node=pinned))
        monitor.recover(store.apply(assignment(task, "edge-x")))
    own, free = store.get("own"), store.get("free")
    assert (own.lifecycle_status, own.pinned_node, own.attempt) == (S.CREATED, "edge-x", 0), "waits for its edge"
    assert (free.lifecycle_status, free.attempt) == (S.CREATED, 1), "retried elsewhere"
    wait_until(lambda: seen == ["free"], message="the free task's stale copy is cancelled")
    assert seen == ["free"], "the edge keeps its own copy, to take it back as it is"
    bus.close()
    store.close()
