"""The whole task lifecycle through the REST API, on a standalone Skalds in this process."""

from __future__ import annotations

import os
import signal

import pytest
from fastapi.testclient import TestClient

from skalds.testing import process_gone, wait_until
from tests.probe_workers import read

pytestmark = pytest.mark.integration


def status(api: TestClient, task_id: str) -> str:
    return api.get(f"/api/tasks/{task_id}").json()["lifecycleStatus"]


def events(journal: str, kind: str) -> list[dict]:
    return [e for e in read(journal) if e["event"] == kind]


def create_probe(api: TestClient, journal: str, **attachments: object) -> dict:
    r = api.post("/api/tasks", json={"className": "ProbeWorker", "attachments": {"journal": journal, **attachments}})
    assert r.status_code == 201, r.text
    return r.json()


def test_create_update_pause_resume_cancel_walks_the_whole_lifecycle(api: TestClient, journal: str) -> None:
    task = create_probe(api, journal)
    tid = task["id"]
    assert task["lifecycleStatus"] == "Created"
    wait_until(lambda: status(api, tid) == "Running", message="task running")
    wait_until(lambda: events(journal, "main"), message="main handler called")

    r = api.patch(f"/api/tasks/{tid}/attachments", json={"attachments": {"level": 7, "label": "seven"}})
    assert r.status_code == 200, r.text
    assert r.json()["desiredVersion"] == 1
    assert r.json()["attachments"]["level"] == 7
    update = wait_until(lambda: events(journal, "update"), message="update handler called")[0]
    assert (update["level"], update["label"]) == (7, "seven")
    wait_until(lambda: api.get(f"/api/tasks/{tid}").json()["appliedVersion"] == 1, message="appliedVersion")

    assert api.post(f"/api/tasks/{tid}/pause").json()["lifecycleStatus"] == "Paused"
    wait_until(lambda: events(journal, "paused"), message="worker saw the pause")
    assert api.post(f"/api/tasks/{tid}/pause").status_code == 409
    assert api.post(f"/api/tasks/{tid}/resume").json()["lifecycleStatus"] == "Running"
    wait_until(lambda: events(journal, "resumed"), message="worker resumed")

    pid = events(journal, "main")[0]["pid"]
    assert api.post(f"/api/tasks/{tid}/cancel").json()["lifecycleStatus"] == "Cancelled"
    wait_until(
        lambda: process_gone(pid),
        message="worker process gone",
    )
    wait_until(lambda: events(journal, "release"), message="release handler ran")
    assert status(api, tid) == "Cancelled"
    assert api.post(f"/api/tasks/{tid}/cancel").status_code == 409


def test_progress_reaches_the_api_and_a_returning_worker_finishes(api: TestClient, journal: str) -> None:
    tid = create_probe(api, journal, mode="finish", steps=4)["id"]
    wait_until(lambda: status(api, tid) == "Finished", message="finished")
    assert [e["event"] for e in read(journal)] == ["before", "main", "after", "release"]


def test_loop_progress_is_visible_while_running(api: TestClient, journal: str) -> None:
    tid = create_probe(api, journal)["id"]
    wait_until(lambda: api.get(f"/api/tasks/{tid}").json()["progress"] == 0.5, message="progress in API")
    api.post(f"/api/tasks/{tid}/cancel")


def test_a_worker_that_raises_fails_with_its_error_and_traceback(api: TestClient, journal: str) -> None:
    tid = create_probe(api, journal, mode="raise", level=3)["id"]
    wait_until(lambda: status(api, tid) == "Failed", message="failed")
    task = api.get(f"/api/tasks/{tid}").json()
    assert task["error"] == "ValueError: probe failure at level 3"
    assert "Traceback" in task["exception"] and "probe_workers.py" in task["exception"]
    assert task["errorDetail"]["message"] == task["error"] and task["errorDetail"]["exitCode"] == 1
    assert [a["outcome"] for a in task["attempts"]] == ["failed"]
    assert events(journal, "error")[0]["message"] == "probe failure at level 3"
    assert events(journal, "release")


def test_demo_always_fail_worker_fails_with_empty_attachments(api: TestClient) -> None:
    tid = api.post("/api/tasks", json={"className": "AlwaysFailWorker", "attachments": {}}).json()["id"]
    wait_until(lambda: status(api, tid) == "Failed", message="failed")
    assert "RuntimeError" in api.get(f"/api/tasks/{tid}").json()["error"]


def test_demo_countdown_worker_finishes_by_itself(api: TestClient) -> None:
    r = api.post("/api/tasks", json={"className": "CountdownWorker", "attachments": {"steps": 2, "stepS": 0.01}})
    wait_until(lambda: status(api, r.json()["id"]) == "Finished", message="finished")


def test_a_worker_killed_with_sigkill_is_retried_and_the_kill_kept_in_its_attempts(
    api: TestClient, journal: str
) -> None:
    tid = create_probe(api, journal)["id"]
    pid = wait_until(lambda: events(journal, "main"), message="main")[0]["pid"]
    os.kill(pid, signal.SIGKILL)
    second = wait_until(lambda: events(journal, "main")[1:], message="ran again")[0]
    assert second["pid"] != pid
    wait_until(lambda: status(api, tid) == "Running", message="running again")
    task = api.get(f"/api/tasks/{tid}").json()
    assert task["attempt"] == 1 and task["error"] is None, "the error shown is the current attempt's"
    (lost,) = task["attempts"]
    assert lost["outcome"] == "worker_lost" and "SIGKILL" in lost["error"]
    api.post(f"/api/tasks/{tid}/cancel")


def test_cancel_stops_a_worker_that_ignores_the_stop_flag(api: TestClient, journal: str) -> None:
    tid = create_probe(api, journal, mode="ignore_stop")["id"]
    pid = wait_until(lambda: events(journal, "main"), message="main")[0]["pid"]
    api.post(f"/api/tasks/{tid}/cancel")
    # grace 0.5 s, then SIGTERM: the release handler still runs
    wait_until(
        lambda: process_gone(pid),
        timeout_s=10,
        message="process gone",
    )
    assert events(journal, "release")
    assert status(api, tid) == "Cancelled"


def test_pause_before_start_starts_the_worker_paused(system, api: TestClient, journal: str) -> None:
    from skalds.core.task import Task

    # Stored without an assign event, so it is surely paused before any node sees it.
    system.backends.store.create(Task(id="early", class_name="ProbeWorker", attachments={"journal": journal}))
    assert api.post("/api/tasks/early/pause").json()["lifecycleStatus"] == "Paused"
    system.dispatcher.submit(["early"])
    before = wait_until(lambda: events(journal, "before"), message="worker started")[0]
    assert before["paused"], "the worker process began already paused"
    assert status(api, "early") == "Paused"
    tid = "early"
    api.post(f"/api/tasks/{tid}/resume")
    wait_until(lambda: events(journal, "resumed"), message="resumed")
    api.post(f"/api/tasks/{tid}/cancel")


def test_a_node_starts_an_assignment_whose_event_was_lost_and_stops_a_copy_it_lost(system, journal: str) -> None:
    from skalds.core.lifecycle import Action, plan
    from skalds.core.task import Task

    store = system.backends.store
    task = store.create(Task(id="quiet", class_name="ProbeWorker", attachments={"journal": journal}))
    store.apply(plan(task, Action.ASSIGN, executor="test-node"))  # no event published
    wait_until(lambda: store.get("quiet").lifecycle_status.value == "Running", message="started by the reconcile sweep")
    pid = wait_until(lambda: events(journal, "main"), message="main")[0]["pid"]

    moved = store.get("quiet")
    store.apply(plan(moved, Action.REQUEUE))  # as if the monitor had moved it, again silently
    wait_until(lambda: events(journal, "release"), message="the stale copy was stopped")
    wait_until(
        lambda: process_gone(pid),
        message="its process gone",
    )
