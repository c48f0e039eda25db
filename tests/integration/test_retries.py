"""Retries per task (``maxRetries``, ``retryBackoff`` in ``POST /api/tasks``) and per class (in
the pool), judged from what the workers journal: each run's pid and when it started."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from skalds.backends.local import LocalEventBus, MemoryLiveState, SqliteTaskStore
from skalds.core.lifecycle import RetryPolicy
from skalds.core.records import NodeInfo
from skalds.core.task import Task, TaskLifecycleStatus
from skalds.service.catalog import ClusterCatalog
from skalds.service.requests import CreateTaskRequest
from skalds.service.tasks import TaskService
from skalds.system import SkaldsSystem
from skalds.testing import wait_until
from skalds.worker.registry import RETRIES_KEY, WorkerCatalog
from tests.conftest import PROBE
from tests.probe_workers import read

pytestmark = pytest.mark.integration

#: ProbeWorker retries nothing by its class; MyWorker keeps the config's policy.
CLASSES = {
    "MyWorker": "skalds.workers.demo:MyWorker",
    "ProbeWorker": {"path": PROBE, "max_retries": 0, "retry_backoff_s": 1.5},
}


def write_classes(path: Path, classes: dict) -> Path:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"name": "retrypool", "classes": classes}, sort_keys=False))
    tmp.replace(path)
    return path


@pytest.fixture
def pool_path(tmp_path: Path) -> Path:
    return write_classes(tmp_path / "retrypool.yaml", CLASSES)


def mains(journal: str) -> list[dict]:
    return [e for e in read(journal) if e["event"] == "main"]


def create(api: TestClient, journal: str, **fields: object) -> dict:
    body = {"className": "ProbeWorker", "attachments": {"journal": journal}, **fields}
    r = api.post("/api/tasks", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def kill_run(journal: str, run: int) -> float:
    """SIGKILL the ``run``-th worker (1 for the first) once it runs; the time of the kill."""
    pid = wait_until(lambda: mains(journal)[run - 1 :], message=f"run {run} started")[0]["pid"]
    killed = time.time()
    os.kill(pid, signal.SIGKILL)
    return killed


def task(api: TestClient, task_id: str) -> dict:
    body: dict = api.get(f"/api/tasks/{task_id}").json()
    return body


def test_a_task_with_max_retries_0_fails_at_its_first_lost_worker(api: TestClient, journal: str) -> None:
    tid = create(api, journal, maxRetries=0, retryBackoff=0.1)["id"]
    kill_run(journal, 1)
    wait_until(lambda: task(api, tid)["lifecycleStatus"] == "Failed", message="failed")
    t = task(api, tid)
    assert t["attempt"] == 0 and [a["outcome"] for a in t["attempts"]] == ["worker_lost"]
    assert "no retries left (maxRetries 0)" in t["history"][-1]["reason"]
    time.sleep(0.5)
    assert len(mains(journal)) == 1, "never run again"


def test_a_task_with_max_retries_2_is_retried_after_its_backoff_then_fails(api: TestClient, journal: str) -> None:
    tid = create(api, journal, maxRetries=2, retryBackoff=1.0, retryBackoffMax=10)["id"]
    assert (task(api, tid)["maxRetries"], task(api, tid)["retryBackoff"]) == (2, 1.0)
    first_kill = kill_run(journal, 1)
    second_kill = kill_run(journal, 2)
    kill_run(journal, 3)
    wait_until(lambda: task(api, tid)["lifecycleStatus"] == "Failed", timeout_s=15, message="failed")
    runs = mains(journal)
    assert len(runs) == 3 and len({r["pid"] for r in runs}) == 3
    # What really ran: retry 1 waited 1 s, retry 2 waited 1 s * 2.
    assert runs[1]["t"] - first_kill >= 1.0
    assert runs[2]["t"] - second_kill >= 2.0
    assert runs[1]["t"] - first_kill < 10, "not much later either"
    t = task(api, tid)
    assert t["attempt"] == 2 and [a["outcome"] for a in t["attempts"]] == ["worker_lost"] * 3
    reasons = [h["reason"] for h in t["history"] if h["action"] in ("requeue", "fail")]
    assert "retry 1/2 in 1s" in reasons[0] and "retry 2/2 in 2s" in reasons[1] and "no retries left" in reasons[2]


def test_a_class_policy_from_the_pool_applies_unless_the_task_has_its_own(api: TestClient, tmp_path: Path) -> None:
    workers = {w["className"]: w for w in api.get("/api/workers").json()}
    assert workers["ProbeWorker"]["retries"] == {"max_retries": 0, "retry_backoff_s": 1.5}
    assert "retries" not in workers["MyWorker"] and "x-skalds-retries" not in workers["ProbeWorker"]["schema"]

    by_class = str(tmp_path / "by-class.jsonl")
    tid = create(api, by_class)["id"]
    t = task(api, tid)
    assert (t["maxRetries"], t["retryBackoff"], t["retryBackoffMax"]) == (0, 1.5, 30.0), "class, then config"
    kill_run(by_class, 1)
    wait_until(lambda: task(api, tid)["lifecycleStatus"] == "Failed", message="the class allows no retry")

    own = str(tmp_path / "own.jsonl")
    tid = create(api, own, maxRetries=1)["id"]
    killed = kill_run(own, 1)
    second = wait_until(lambda: mains(own)[1:], message="retried: the task's own maxRetries wins")[0]
    assert second["t"] - killed >= 1.5, "the class's backoff still applies"
    wait_until(lambda: task(api, tid)["lifecycleStatus"] == "Running", message="running again")
    api.post(f"/api/tasks/{tid}/cancel")

    plain = api.post("/api/tasks", json={"className": "MyWorker", "attachments": {"rtspUrl": "x", "fixFrame": 1}})
    assert (plain.json()["maxRetries"], plain.json()["retryBackoff"]) == (3, 0.5), "the config's defaults"
    api.post(f"/api/tasks/{plain.json()['id']}/cancel")


def test_a_pool_edit_of_a_class_policy_applies_to_tasks_created_after_it(
    system: SkaldsSystem, api: TestClient, pool_path: Path, journal: str
) -> None:
    before = create(api, journal)
    write_classes(pool_path, {**CLASSES, "ProbeWorker": {"path": PROBE, "max_retries": 4}})
    assert system.reloader is not None and system.reloader.reload().ok
    after = create(api, journal)
    assert (before["maxRetries"], after["maxRetries"], after["retryBackoff"]) == (0, 4, 0.5)
    assert task(api, before["id"])["maxRetries"] == 0, "a task keeps the policy it was created with"
    write_classes(pool_path, {**CLASSES, "ProbeWorker": {"path": PROBE, "max_retries": -1}})
    result = system.reloader.reload()
    assert not result.ok and result.error is not None and result.error.field == "classes.ProbeWorker.max_retries"
    for t in (before, after):
        api.post(f"/api/tasks/{t['id']}/cancel")


def test_the_monitor_judges_a_lost_node_s_task_by_the_task_s_own_policy(system: SkaldsSystem) -> None:
    store, monitor = system.backends.store, system.monitor
    assert monitor is not None
    for task_id, retries in (("none-left", 0), ("one-left", 1)):
        store.create(
            Task(
                id=task_id,
                class_name="MyWorker",
                lifecycle_status=TaskLifecycleStatus.RUNNING,
                executor="ghost",
                epoch=1,
                max_retries=retries,
                retry_backoff_s=60,
            )
        )
        monitor.recover(store.get(task_id))
    assert store.get("none-left").lifecycle_status is TaskLifecycleStatus.FAILED
    moved = store.get("one-left")
    assert (moved.lifecycle_status, moved.attempt, moved.executor) == (TaskLifecycleStatus.CREATED, 1, None)
    # The backoff counts from when its run ended: a lease TTL before the monitor could tell.
    lease_ms = int(monitor.settings.lease_ttl_s * 1000)
    assert moved.retry_at is not None and moved.retry_at - moved.update_date_time >= 60_000 - lease_ms
    assert system.service is not None
    system.service.cancel("one-left")  # its retry would wait a minute


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"maxRetries": -1}, "maxRetries"),
        ({"maxRetries": 10**6}, "maxRetries"),
        ({"maxRetries": "many"}, "maxRetries"),
        ({"retryBackoff": -0.5}, "retryBackoff"),
        ({"retryBackoff": 10**9}, "retryBackoff"),
        ({"retryBackoffMax": -1}, "retryBackoffMax"),
        ({"retryBackoff": 10, "retryBackoffMax": 5}, "retryBackoffMax"),
    ],
)
def test_bad_retry_settings_are_422_naming_the_field_and_store_nothing(
    api: TestClient, journal: str, fields: dict, field: str
) -> None:
    r = api.post("/api/tasks", json={"className": "ProbeWorker", "attachments": {"journal": journal}, **fields})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "ValidationFailed" and [e["field"] for e in body["errors"]] == [field]
    assert api.get("/api/tasks").json()["total"] == 0


DEMO = {"MyWorker": "skalds.workers.demo:MyWorker", "CountdownWorker": "skalds.workers.demo:CountdownWorker"}
CONFIG_POLICY = RetryPolicy(3, 0.5, 30)


@pytest.fixture
def remote() -> Iterator[tuple[ClusterCatalog, MemoryLiveState]]:
    """A controller with only MyWorker, beside a node that has CountdownWorker under its own policy."""
    live = MemoryLiveState()
    node_catalog = WorkerCatalog(DEMO, {"CountdownWorker": {"max_retries": 1, "retry_backoff_s": 4.0}})
    schemas = {e["className"]: e["schema"] for e in node_catalog.schemas()}
    live.claim_node(NodeInfo(id="n1", mode="node", classes=sorted(DEMO), capacity=2, schemas=schemas), ttl_s=60)
    yield ClusterCatalog(WorkerCatalog({"MyWorker": DEMO["MyWorker"]}), live), live


def test_a_controller_without_the_pool_learns_a_class_s_policy_from_its_node(
    remote: tuple[ClusterCatalog, MemoryLiveState],
) -> None:
    catalog, live = remote
    assert catalog.retries("CountdownWorker") == {"max_retries": 1, "retry_backoff_s": 4.0}
    shown = {e["className"]: e for e in catalog.schemas()}
    assert shown["CountdownWorker"]["retries"] == {"max_retries": 1, "retry_backoff_s": 4.0}
    assert RETRIES_KEY not in shown["CountdownWorker"]["schema"] and "retries" not in shown["MyWorker"]

    store, bus = SqliteTaskStore(":memory:"), LocalEventBus()
    try:
        service = TaskService(store, bus, live, catalog, retry=CONFIG_POLICY)
        by_class = service.create(CreateTaskRequest(class_name="CountdownWorker"))
        assert RetryPolicy(9, 9, 9).for_task(store.get(by_class.id)) == RetryPolicy(1, 4.0, 30)
        own = service.create(CreateTaskRequest(class_name="CountdownWorker", max_retries=5))
        assert (own.max_retries, own.retry_backoff_s) == (5, 4.0)
        plain = service.create(CreateTaskRequest(class_name="MyWorker", attachments={"rtspUrl": "x", "fixFrame": 1}))
        assert RetryPolicy(9, 9, 9).for_task(plain) == CONFIG_POLICY
    finally:
        bus.close()
        store.close()
