"""Scheduling through the REST API on the embedded backends: priority order under a full node,
resources and selectors on two nodes with different labels, a freed slot filled at once,
dependencies, the start deadline, and preemption judged from what the workers recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from skalds.backends.factory import Backends
from skalds.backends.local import SqliteTaskStore
from skalds.controller.reasons import ReasonWriter
from skalds.core.lifecycle import Transition
from skalds.core.task import Task, TaskLifecycleStatus
from skalds.ports.task_store import TaskPage, TaskQuery, TaskStore
from skalds.settings import load_settings
from skalds.system import SkaldsSystem
from skalds.testing import compose_config, wait_until
from tests.conftest import FAST, FAULT, PROBE, make_system, write_pool
from tests.probe_workers import read

pytestmark = pytest.mark.integration


def probe(task_id: str, journal: str, **body: Any) -> dict[str, Any]:
    attachments = {"journal": journal, **body.pop("attachments", {})}
    return {"id": task_id, "className": "ProbeWorker", "attachments": attachments, **body}


def created(api: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post("/api/tasks", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def shown(api: TestClient, task_id: str) -> dict[str, Any]:
    return api.get(f"/api/tasks/{task_id}").json()


def state(api: TestClient, task_id: str) -> str:
    return shown(api, task_id)["lifecycleStatus"]


def reason(api: TestClient, task_id: str, text: str, timeout_s: float = 15) -> dict[str, Any]:
    """Wait until the task shows ``text`` as why it waits."""
    return wait_until(
        lambda: (t := shown(api, task_id)).get("pendingReason") == text and t,
        timeout_s=timeout_s,
        message=f"{task_id} waits: {text}",
    )


def mains(journal: str) -> list[dict[str, Any]]:
    return [e for e in read(journal) if e["event"] == "main"]


@pytest.fixture
def one_slot(tmp_path: Path) -> Iterator[SkaldsSystem]:
    s = make_system(tmp_path / "data", "node.capacity=1", "dispatch.aging_s=0").start()
    try:
        yield s
    finally:
        s.stop()


def test_under_a_full_node_the_highest_priority_starts_first_and_each_waiting_task_says_where_it_is(
    one_slot: SkaldsSystem, tmp_path: Path
) -> None:
    api = TestClient(one_slot.app, base_url="http://localhost")
    journal = str(tmp_path / "journal.jsonl")
    created(api, probe("blocker", journal))
    wait_until(lambda: state(api, "blocker") == "Running", message="blocker runs")
    finish = {"mode": "finish", "steps": 4}
    for task_id, priority in (("p0", 0), ("p10", 10), ("p5", 5), ("p5-later", 5)):
        created(api, probe(task_id, journal, priority=priority, attachments=finish))
    reason(api, "p10", "all 1 matching slots busy (position 1)")
    reason(api, "p5", "all 1 matching slots busy (position 2)")
    reason(api, "p0", "all 1 matching slots busy (position 4)")
    listed = api.get("/api/tasks", params={"lifecycleStatus": "Created", "limit": 10}).json()["items"]
    assert {t["id"]: t["pendingReason"] for t in listed}["p5-later"] == "all 1 matching slots busy (position 3)"

    api.post("/api/tasks/blocker/cancel")
    wait_until(lambda: all(state(api, t) == "Finished" for t in ("p0", "p5", "p5-later", "p10")), timeout_s=30)
    order = [e["task_id"] for e in mains(journal) if e["task_id"] != "blocker"]
    assert order == ["p10", "p5", "p5-later", "p0"]
    assert all(shown(api, t)["pendingReason"] is None for t in order), "cleared once placed"


def test_a_freed_slot_is_filled_at_once_not_by_the_monitors_sweep(tmp_path: Path) -> None:
    system = make_system(tmp_path / "data", "node.capacity=2", "monitor.sweep_interval_s=600").start()
    try:
        api = TestClient(system.app, base_url="http://localhost")
        journals = {f"t{i}": str(tmp_path / f"t{i}.jsonl") for i in range(6)}
        for task_id, journal in journals.items():
            created(api, probe(task_id, journal, attachments={"mode": "finish", "steps": 6}))
        # No sweep in the test's lifetime: only a task's end can place the next one.
        wait_until(lambda: all(state(api, t) == "Finished" for t in journals), timeout_s=60)
        starts = sorted(mains(j)[0]["t"] for j in journals.values())
        ends = sorted(max(e["t"] for e in read(j) if e["event"] == "release") for j in journals.values())
        gaps = [start - end for start, end in zip(starts[2:], ends, strict=False)]
        assert max(gaps) < 5, f"slot refills took {gaps}"  # behaviour, not a benchmark: the sweep is 600 s
    finally:
        system.stop()


def test_dependencies_start_a_task_when_they_run_or_finish_and_fail_it_when_one_is_cancelled(
    tmp_path: Path,
) -> None:
    system = make_system(tmp_path / "data").start()
    try:
        api = TestClient(system.app, base_url="http://localhost")
        journal = str(tmp_path / "journal.jsonl")
        created(api, probe("parent", journal))
        created(api, probe("after-start", journal, dependencies=["parent"], dependencyCondition="running"))
        created(api, probe("after-end", journal, dependencies=["parent"]))
        created(api, probe("orphan", journal, dependencies=["ghost"]))
        wait_until(lambda: state(api, "after-start") == "Running", message="starts once its dependency runs")
        reason(api, "after-end", "waiting for task parent to be Finished")
        reason(api, "orphan", "waiting for task ghost, which does not exist")
        assert shown(api, "after-end")["dependencyCondition"] == "finished", "the default"

        created(api, probe("short", journal, attachments={"mode": "finish"}))
        created(api, probe("after-short", journal, dependencies=["short"]))
        wait_until(lambda: state(api, "after-short") == "Running", message="starts once its dependency finished")
        assert state(api, "short") == "Finished"

        api.post("/api/tasks/parent/cancel")
        failed = wait_until(lambda: (t := shown(api, "after-end"))["lifecycleStatus"] == "Failed" and t)
        assert failed["error"] == "dependency parent is Cancelled"
        assert state(api, "after-start") == "Running", "already started: the condition was met"
        assert [e["task_id"] for e in mains(journal)].count("after-end") == 0
        r = api.post("/api/tasks", json=probe("me", journal, dependencies=["me"]))
        assert r.status_code == 422 and "itself" in r.text
    finally:
        system.stop()


def test_a_task_still_waiting_at_its_deadline_fails_and_a_placed_one_is_never_stopped_by_it(
    one_slot: SkaldsSystem, tmp_path: Path
) -> None:
    api = TestClient(one_slot.app, base_url="http://localhost")
    journal = str(tmp_path / "journal.jsonl")
    now_ms = int(time.time() * 1000)
    created(api, probe("runs", journal, deadlineDateTime=now_ms + 1500))
    wait_until(lambda: state(api, "runs") == "Running", message="placed before its deadline")
    created(api, probe("late", journal, deadlineDateTime=now_ms + 1500))
    reason(api, "late", "all 1 matching slots busy (position 1)")
    failed = wait_until(lambda: (t := shown(api, "late"))["lifecycleStatus"] == "Failed" and t, timeout_s=15)
    assert failed["error"] == "deadline passed while waiting" and failed["executor"] is None
    time.sleep(max(0.0, now_ms / 1000 + 2.5 - time.time()))
    assert state(api, "runs") == "Running", "a deadline never stops a task that started"
    assert [e["task_id"] for e in mains(journal)] == ["runs"]


# ---- two nodes with different labels, on shared embedded backends --------------------------
def test_a_clean_start_and_stop_say_nothing_false_about_why_a_task_waits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Observed before: every clean stop warned "task ... waits: no node offers class
    # MyWorker" (the only node offering it was stopping), as if the pool lacked the class.
    pool = write_pool(
        tmp_path / "pool.yaml", {"declared": {"className": "MyWorker", "attachments": {"rtspUrl": "x", "fixFrame": 1}}}
    )
    with caplog.at_level("INFO"):
        system = make_system(tmp_path / "data", pool=pool).start()
        try:
            api = TestClient(system.app, base_url="http://localhost")
            wait_until(lambda: state(api, "declared") == "Running", message="declared task runs")
        finally:
            system.stop()
    waits = [(r.levelname, r.getMessage()) for r in caplog.records if " waits: " in r.getMessage()]
    assert all("no node offers" not in m for _, m in waits), waits
    assert all(level == "INFO" for level, _ in waits), "nothing an operator must act on"


def _pool(path: Path, classes: dict[str, Any], **extra: Any) -> Path:
    path.write_text(yaml.safe_dump({"name": path.stem, "classes": classes, "tasks": {}, **extra}))
    return path


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[SkaldsSystem, list[SkaldsSystem]]]:
    """A controller (no node of its own) and two nodes in this process, sharing the embedded
    backends: node-a (zone a, one gpu; ProbeWorker and FaultWorker), node-b (zone b;
    ProbeWorker only)."""
    controller = make_system(tmp_path / "data", "+mode=controller", "backend=local").start()
    nodes = []
    try:
        setups = [
            ("node-a", {"ProbeWorker": PROBE, "FaultWorker": FAULT}, ["+node.labels.zone=a", "+node.offers.gpu=1"]),
            ("node-b", {"ProbeWorker": PROBE}, ["+node.labels.zone=b"]),
        ]
        for node_id, classes, extra in setups:
            pool = _pool(tmp_path / f"{node_id}.yaml", classes)
            overrides = [*FAST, "+mode=node", "backend=local", f"node.id={node_id}", f"reload.pool_file={pool}", *extra]
            settings = load_settings(compose_config(overrides, data_dir=tmp_path / "data"))
            nodes.append(SkaldsSystem(settings, backends=controller.backends).start())
        yield controller, nodes
    finally:
        for n in nodes:
            n.stop()
        controller.stop()


def test_resources_and_selectors_choose_between_two_nodes_and_say_why_a_task_waits(
    two_nodes: tuple[SkaldsSystem, list[SkaldsSystem]], tmp_path: Path
) -> None:
    controller, _ = two_nodes
    api = TestClient(controller.app, base_url="http://localhost")
    journal = str(tmp_path / "journal.jsonl")
    wait_until(lambda: {n["id"] for n in api.get("/api/skalds").json()["items"]} == {"node-a", "node-b"})
    created(api, probe("gpu-1", journal, resources={"gpu": 1}))
    created(api, probe("in-b", journal, requiredLabels={"zone": "b"}))
    created(api, probe("likes-b", journal, preferredLabels={"zone": "b"}))
    for task_id, node in (("gpu-1", "node-a"), ("in-b", "node-b"), ("likes-b", "node-b")):
        task = wait_until(lambda t=task_id: (x := shown(api, t))["lifecycleStatus"] == "Running" and x)
        assert task["executor"] == node, task_id
    assert shown(api, "gpu-1")["holds"] == {"slots": 1, "gpu": 1}

    created(api, probe("gpu-2", journal, resources={"gpu": 1}))
    created(api, probe("in-c", journal, requiredLabels={"zone": "c"}))
    created(
        api,
        {
            "id": "fault-b",
            "className": "FaultWorker",
            "attachments": {"journal": journal},
            "requiredLabels": {"zone": "b"},
        },
    )
    created(api, {"id": "demo", "className": "CountdownWorker"})
    reason(api, "gpu-2", "not enough gpu (needs 1, most free 0)")
    reason(api, "in-c", "no node matches selector zone=c")
    reason(api, "fault-b", "no node matches selector zone=b")
    reason(api, "demo", "no node offers class CountdownWorker")

    api.post("/api/tasks/gpu-1/cancel")
    placed = wait_until(lambda: (t := shown(api, "gpu-2"))["lifecycleStatus"] == "Running" and t)
    assert (placed["executor"], placed["pendingReason"]) == ("node-a", None)
    nodes = {n["id"]: n for n in api.get("/api/skalds").json()["items"]}
    assert nodes["node-a"]["labels"] == {"zone": "a"}


def test_a_class_declares_its_resources_and_labels_in_the_pool(tmp_path: Path) -> None:
    pool = write_pool(tmp_path / "pool.yaml")
    data = yaml.safe_load(pool.read_text())
    data["classes"]["ProbeWorker"] = {"path": PROBE, "resources": {"gpu": 2}, "requiredLabels": {"gpu": "yes"}}
    data["offers"] = {"gpu": 1}
    pool.write_text(yaml.safe_dump(data))
    system = make_system(tmp_path / "data", "+node.labels.gpu=yes", pool=pool).start()
    try:
        api = TestClient(system.app, base_url="http://localhost")
        journal = str(tmp_path / "journal.jsonl")
        created(api, probe("needs-two", journal))
        reason(api, "needs-two", "not enough gpu (needs 2, most free 1)")
        created(api, probe("needs-one", journal, resources={"gpu": 1}))
        task = wait_until(lambda: (t := shown(api, "needs-one"))["lifecycleStatus"] == "Running" and t)
        assert task["holds"] == {"slots": 1, "gpu": 1}, "the task's own amount wins over its class's"
        node = api.get("/api/skalds").json()["items"][0]
        assert node["labels"] == {"gpu": "yes"}
    finally:
        system.stop()


def test_preemption_displaces_the_lowest_priority_task_which_waits_again_with_no_retry_consumed_and_never_overlaps(
    tmp_path: Path,
) -> None:
    from tests.faults.observe import Journal, overlap_s

    system = make_system(tmp_path / "data", "node.capacity=2", "dispatch.preempt=true", "dispatch.aging_s=0").start()
    journal_path = tmp_path / "journal.jsonl"
    journal = Journal(journal_path)
    try:
        api = TestClient(system.app, base_url="http://localhost")

        def fault(task_id: str, priority: int) -> dict[str, Any]:
            body = {"id": task_id, "className": "FaultWorker", "priority": priority}
            return {**body, "attachments": {"journal": str(journal_path)}}

        created(api, fault("low", 1))
        created(api, fault("mid", 3))
        wait_until(lambda: state(api, "low") == state(api, "mid") == "Running", message="the node is full")
        created(api, fault("urgent", 8))
        wait_until(lambda: state(api, "urgent") == "Running", timeout_s=20, message="urgent displaced someone")
        low = reason(api, "low", "all 2 matching slots busy (position 1)")
        assert state(api, "mid") == "Running", "the lowest priority one was displaced"
        assert (low["lifecycleStatus"], low["attempt"], low["executor"]) == ("Created", 0, None)
        assert low["attempts"][-1]["outcome"] == "preempted"
        assert "preempted by task urgent" in low["attempts"][-1]["error"]

        created(api, fault("meh", 1))
        reason(api, "meh", "all 2 matching slots busy (position 2)")  # no one below it to displace

        api.post("/api/tasks/urgent/cancel")
        wait_until(lambda: state(api, "low") == "Running", timeout_s=20, message="low runs again")
        wait_until(lambda: len([c for c in journal.snapshot() if c.task == "low"]) == 2)
        copies = journal.snapshot()
        lows = sorted((c for c in copies if c.task == "low"), key=lambda c: c.start)
        urgent = next(c for c in copies if c.task == "urgent")
        assert lows[0].end is not None and lows[0].end <= urgent.start, "the displaced copy was gone first"
        assert lows[0].end <= lows[1].start and lows[1].epoch > lows[0].epoch
        assert overlap_s(copies, time.monotonic()) == 0
        assert shown(api, "low")["attempt"] == 0, "no retry consumed"
    finally:
        journal.close()
        system.stop()


class CountingStore(TaskStore):
    """The real store, counting the tasks a node reads (what each read was for)."""

    def __init__(self, inner: TaskStore) -> None:
        self.inner = inner
        self.read: list[str] = []

    def get(self, task_id: str) -> Task:
        self.read.append(task_id)
        return self.inner.get(task_id)

    def create(self, task: Task) -> Task:
        return self.inner.create(task)

    def create_many(self, tasks: list[Task]) -> list[Task]:
        return self.inner.create_many(tasks)

    def find(self, query: TaskQuery) -> TaskPage:
        return self.inner.find(query)

    def apply(self, transition: Transition) -> Task:
        return self.inner.apply(transition)

    def delete(self, task_id: str, expect: dict[str, Any]) -> None:
        self.inner.delete(task_id, expect)

    def count_by_status_and_class(self) -> dict[tuple[TaskLifecycleStatus, str], int]:
        return self.inner.count_by_status_and_class()

    def class_names(self) -> list[str]:
        return self.inner.class_names()

    def count_active_by_executor(self) -> dict[str, int]:
        return self.inner.count_active_by_executor()

    def active_usage(self) -> dict[str, dict[str, float]]:
        return self.inner.active_usage()

    def touch_node(self, node_id: str, instance: str) -> None:
        self.inner.touch_node(node_id, instance)

    def node_marks(self) -> dict[str, str]:
        return self.inner.node_marks()


def test_a_node_reads_only_the_tasks_addressed_to_it(tmp_path: Path) -> None:
    controller = make_system(tmp_path / "data", "+mode=controller", "backend=local").start()
    nodes: list[SkaldsSystem] = []
    b = controller.backends
    try:
        for node_id, zone in (("node-a", "a"), ("node-b", "b")):
            pool = _pool(tmp_path / f"{node_id}.yaml", {"ProbeWorker": PROBE})
            overrides = [*FAST, "+mode=node", "backend=local", f"node.id={node_id}", f"reload.pool_file={pool}"]
            settings = load_settings(
                compose_config([*overrides, f"+node.labels.zone={zone}"], data_dir=tmp_path / "data")
            )
            counting = Backends(b.kind, b.bus, CountingStore(b.store), b.live)
            nodes.append(SkaldsSystem(settings, backends=counting).start())
        api = TestClient(controller.app, base_url="http://localhost")
        journal = str(tmp_path / "journal.jsonl")
        ids = [f"a{i}" for i in range(10)]
        for task_id in ids:
            created(api, probe(task_id, journal, requiredLabels={"zone": "a"}))
        wait_until(lambda: all(state(api, t) == "Running" for t in ids), timeout_s=30)
        reads_a = nodes[0].backends.store.read  # type: ignore[attr-defined]
        reads_b = nodes[1].backends.store.read  # type: ignore[attr-defined]
        assert set(ids) <= set(reads_a)
        assert not set(ids) & set(reads_b), "node-b never looked at a task placed on node-a"
        # the seed's event names no one: every node looks it up, as the seed's nodes did
        from skalds.core.events import TaskEvent, Topic

        b.bus.publish(Topic.TASK_ASSIGN, "a0", TaskEvent(task_ids=["a0"]).to_value())
        wait_until(lambda: "a0" in reads_b, message="node-b looked up the seed's event")
    finally:
        for n in nodes:
            n.stop()
        controller.stop()


def test_a_controllers_declared_task_that_no_node_can_run_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The README's distributed quick start: the controller declares the demo pool's MyWorker
    # task, the nodes serve another pool.
    declared = {"demo-camera": {"className": "MyWorker", "attachments": {"rtspUrl": "rtsp://x", "fixFrame": 1}}}
    pool = write_pool(tmp_path / "controller.yaml", tasks=declared)
    controller = make_system(tmp_path / "data", "+mode=controller", "backend=local", pool=pool).start()
    node_pool = _pool(tmp_path / "node.yaml", {"ProbeWorker": PROBE})
    overrides = [*FAST, "+mode=node", "backend=local", "node.id=node-a", f"reload.pool_file={node_pool}"]
    node = SkaldsSystem(
        load_settings(compose_config(overrides, data_dir=tmp_path / "data")), backends=controller.backends
    )
    try:
        node.start()
        api = TestClient(controller.app, base_url="http://localhost")
        task = reason(api, "demo-camera", "no node offers class MyWorker")
        assert task["source"] == "yaml:testpool" and task["lifecycleStatus"] == "Created"
        assert any(
            r.levelname == "WARNING" and "demo-camera waits: no node offers class MyWorker" in r.getMessage()
            for r in caplog.records
        )
    finally:
        node.stop()
        controller.stop()


class _ReasonStore(SqliteTaskStore):
    """Records every reason written; ``hold`` (when given) is waited on inside each write."""

    def __init__(self, path: Path, hold: threading.Event | None = None) -> None:
        super().__init__(path)
        self.writes: list[str | None] = []
        self.writing = threading.Event()
        self.hold = hold

    def apply(self, transition: Transition) -> Task:
        self.writes.append(transition.changes.get("pending_reason"))
        self.writing.set()
        if self.hold is not None:
            self.hold.wait(5)
        return super().apply(transition)


def _written_after(writer: ReasonWriter, store: _ReasonStore, task: Task, marker: str) -> list[str | None]:
    """What the writer wrote up to a new cause offered last: it writes in order, so what was
    queued before the marker is written before it (no sleep to wait for nothing to happen)."""
    writer.offer(task, marker)
    wait_until(lambda: store.get(task.id).pending_reason == marker, message=f"{marker!r} written")
    assert store.writes[-1] == marker
    return store.writes[:-1]


def test_why_a_task_waits_is_written_only_when_it_changes_and_a_queue_position_at_most_every_refresh(
    tmp_path: Path,
) -> None:
    store = _ReasonStore(tmp_path / "tasks.db")
    writer = ReasonWriter(store, refresh_s=0.5)
    writer.start()
    try:
        task = store.create(Task(id="t", class_name="A"))
        busy = "all 4 matching slots busy (position {})"
        writer.offer(task, busy.format(3))
        wait_until(lambda: store.get("t").pending_reason == busy.format(3))
        for _ in range(5):  # every round says the same: nothing more is written
            writer.offer(task, busy.format(3))
        writer.offer(task, busy.format(2))  # the queue moved, just now written: not yet
        # a new cause: at once
        assert _written_after(writer, store, task, "no node offers class A") == [busy.format(3)]
        time.sleep(0.6)  # past refresh_s: the position may be written again
        writer.offer(task, "no node offers class A")
        writer.offer(task, busy.format(1))
        wait_until(lambda: store.get("t").pending_reason == busy.format(1))
        assert store.writes == [busy.format(3), "no node offers class A", busy.format(1)]
    finally:
        writer.stop()
        store.close()


def test_a_cause_offered_again_while_it_is_being_written_is_logged_and_written_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A create places its task on the request's thread, and the dispatcher's thread runs a
    # round for the same event right after: both offer the reason, the second one while the
    # first is being written. Seen before: every such task's reason logged twice.
    release = threading.Event()
    store = _ReasonStore(tmp_path / "tasks.db", hold=release)
    writer = ReasonWriter(store, refresh_s=0.5)
    writer.start()
    try:
        task = store.create(Task(id="t", class_name="A"))
        with caplog.at_level("INFO", logger="skalds.controller.reasons"):
            writer.offer(task, "no node offers class A")
            assert store.writing.wait(5), "the writer took the reason"
            writer.offer(task, "no node offers class A")
            release.set()
            wait_until(lambda: store.get("t").pending_reason == "no node offers class A")
            assert _written_after(writer, store, task, "no node matches selector zone=a") == ["no node offers class A"]
        assert [r.getMessage() for r in caplog.records] == [
            "task t waits: no node offers class A",
            "task t waits: no node matches selector zone=a",
        ]
    finally:
        release.set()
        writer.stop()
        store.close()
