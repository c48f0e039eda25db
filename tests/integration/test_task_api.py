"""The task API beyond one task at a time: retry an ended task, delete, create a batch all or
none, and cancel, pause or resume every task a filter matches. What ran is judged from the
workers' own journals."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from skalds.core.events import TaskEvent, Topic
from skalds.ports.event_bus import Event
from skalds.service import bulk
from skalds.system import SkaldsSystem
from skalds.testing import process_gone, wait_until
from tests.probe_workers import read

pytestmark = pytest.mark.integration

GOOD = {"rtspUrl": "rtsp://example.com/stream", "fixFrame": 10}


def events(journal: str | Path, kind: str) -> list[dict]:
    return [e for e in read(str(journal)) if e["event"] == kind]


def status(api: TestClient, task_id: str) -> str:
    return str(api.get(f"/api/tasks/{task_id}").json()["lifecycleStatus"])


def probe(api: TestClient, task_id: str, journal: str | Path, **fields: object) -> dict:
    attachments = {"journal": str(journal), **fields.pop("attachments", {})}  # type: ignore[dict-item]
    r = api.post("/api/tasks", json={"id": task_id, "className": "ProbeWorker", "attachments": attachments, **fields})
    assert r.status_code == 201, r.text
    return r.json()


def cam(api: TestClient, task_id: str) -> None:
    r = api.post("/api/tasks", json={"id": task_id, "className": "MyWorker", "attachments": GOOD})
    assert r.status_code == 201, r.text


def running(api: TestClient, *ids: str) -> None:
    wait_until(lambda: all(status(api, t) == "Running" for t in ids), message=f"{ids} running")


# ---- retry -------------------------------------------------------------------------------


def test_retry_runs_a_failed_task_again_with_a_fresh_attempt_budget(api: TestClient, journal: str) -> None:
    probe(api, "flaky", journal, maxRetries=1, retryBackoff=0.05)
    for run in (1, 2):  # the first loss is retried, the second exhausts the budget
        pid = wait_until(lambda run=run: events(journal, "main")[run - 1 :], message=f"run {run}")[0]["pid"]
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: status(api, "flaky") == "Failed", message="out of retries")

    r = api.post("/api/tasks/flaky/retry")
    assert r.status_code == 200, r.text
    assert (r.json()["attempt"], r.json()["error"], r.json()["maxRetries"]) == (0, None, 1)
    (retry,) = [h for h in api.get("/api/tasks/flaky/history").json()["items"] if h["action"] == "retry"]
    assert (retry["status"], retry["actor"], retry["attempt"]) == ("Created", "api", 0)
    assert retry["reason"] == "run again after it was Failed: attempts reset, 1 retries"

    third = wait_until(lambda: events(journal, "main")[2:], message="run again")[0]
    os.kill(third["pid"], signal.SIGKILL)  # a loss: the fresh budget retries it
    wait_until(lambda: events(journal, "main")[3:], message="retried under the fresh budget")
    running(api, "flaky")
    assert api.get("/api/tasks/flaky").json()["attempt"] == 1
    api.post("/api/tasks/flaky/cancel")


def test_retry_runs_finished_and_cancelled_tasks_again_and_refuses_a_live_one(api: TestClient, tmp_path: Path) -> None:
    done = tmp_path / "done.jsonl"
    probe(api, "done", done, attachments={"mode": "finish", "steps": 1})
    wait_until(lambda: status(api, "done") == "Finished", message="finished")
    stopped = tmp_path / "stopped.jsonl"
    probe(api, "stopped", stopped)
    running(api, "stopped")

    live = api.post("/api/tasks/stopped/retry")
    assert live.status_code == 409
    assert live.json() == {
        "error": "InvalidTransition",
        "detail": "cannot retry task 'stopped': it is Running",
        "task_id": "stopped",
        "lifecycle_status": "Running",
    }
    assert api.post("/api/tasks/stopped/cancel").status_code == 200
    wait_until(lambda: events(stopped, "release"), message="worker stopped")

    for task_id, journal in (("done", done), ("stopped", stopped)):
        assert api.post(f"/api/tasks/{task_id}/retry").status_code == 200
        wait_until(lambda journal=journal: len(events(journal, "main")) == 2, message=f"{task_id} ran again")
    api.post("/api/tasks/stopped/cancel")
    assert api.post("/api/tasks/nope/retry").status_code == 404


# ---- delete ------------------------------------------------------------------------------


def test_delete_cancels_a_live_task_then_removes_the_ended_one_so_its_id_is_free(
    api: TestClient, journal: str, tmp_path: Path
) -> None:
    probe(api, "del-1", journal)
    running(api, "del-1")
    pid = events(journal, "main")[0]["pid"]

    first = api.delete("/api/tasks/del-1")
    assert first.status_code == 200 and first.json()["data"] == {"taskId": "del-1", "status": "Cancelled"}
    wait_until(lambda: process_gone(pid), message="the worker stopped")
    assert status(api, "del-1") == "Cancelled", "a live task is cancelled, not removed"

    second = api.delete("/api/tasks/del-1")
    assert second.status_code == 200 and second.json()["data"] == {"taskId": "del-1", "status": "Deleted"}
    assert api.get("/api/tasks/del-1").status_code == 404
    assert api.delete("/api/tasks/del-1").status_code == 404

    again = tmp_path / "again.jsonl"
    fresh = probe(api, "del-1", again)
    assert fresh["attempt"] == 0 and [h["action"] for h in fresh["history"]] == ["create"]
    wait_until(lambda: events(again, "main"), message="the new task of that id runs")
    api.post("/api/tasks/del-1/cancel")


# ---- batch -------------------------------------------------------------------------------


def test_a_batch_is_stored_whole_announced_once_and_every_task_runs(system: SkaldsSystem, api: TestClient) -> None:
    seen: list[TaskEvent] = []
    lock = threading.Lock()

    def on_assign(event: Event) -> None:
        assign = TaskEvent.model_validate(event.value)
        if assign.executor is None:
            with lock:
                seen.append(assign)

    subscription = system.backends.bus.subscribe([str(Topic.TASK_ASSIGN)], "test-batch", on_assign)
    try:
        items = [{"id": f"b-{i}", "className": "MyWorker", "attachments": GOOD} for i in range(4)]
        items.append({"className": "CountdownWorker", "maxRetries": 0})
        r = api.post("/api/tasks/batch", json={"items": items})
        assert r.status_code == 201, r.text
        body = r.json()
        ids = [t["id"] for t in body["items"]]
        assert body["total"] == 5 and ids[:4] == ["b-0", "b-1", "b-2", "b-3"] and ids[4]
        assert body["items"][4]["maxRetries"] == 0 and body["items"][0]["maxRetries"] == 3
        wait_until(lambda: seen, message="the assign event")
        with lock:
            assert [e.task_ids for e in seen] == [ids], "one event for the whole batch"
        running(api, *ids[:4])
        assert api.get("/api/tasks", params={"id": "^b-"}).json()["total"] == 4
    finally:
        subscription.close()
    for task_id in ids[:4]:
        api.post(f"/api/tasks/{task_id}/cancel")


def test_a_batch_whose_ids_outgrow_one_event_is_announced_in_a_few(system: SkaldsSystem, api: TestClient) -> None:
    assert system.service is not None
    system.service.limits = dataclasses.replace(system.service.limits, max_event_bytes=1024)
    seen: list[list[str]] = []
    subscription = system.backends.bus.subscribe(
        [str(Topic.TASK_ASSIGN)],
        "test-chunks",
        lambda e: seen.append(TaskEvent.model_validate(e.value).task_ids) if "executor" not in e.value else None,
    )
    try:
        items = [{"id": f"chunk-{i:03d}-{'x' * 40}", "className": "CountdownWorker"} for i in range(30)]
        assert api.post("/api/tasks/batch", json={"items": items}).status_code == 201
        wait_until(lambda: sum(map(len, seen)) == 30, message="every id announced")
        assert 2 <= len(seen) <= 4 and [i for ids in seen for i in ids] == [t["id"] for t in items]
        assert all(len(json.dumps({"taskIds": ids})) < 1024 for ids in seen)
    finally:
        subscription.close()
    api.post("/api/tasks/cancel", params={"id": "^chunk-"})


def test_a_batch_with_any_bad_item_is_refused_whole_naming_each_item_and_field(api: TestClient) -> None:
    items = [
        {"id": "ok-0", "className": "MyWorker", "attachments": GOOD},
        {"id": "ok-1", "className": "NoSuchWorker"},
        {"id": "ok-2", "className": "MyWorker", "attachments": GOOD},
        {"id": "ok-3", "className": "MyWorker", "attachments": {**GOOD, "fixFrame": "ten"}},
        {"id": "ok-0", "className": "MyWorker", "attachments": GOOD},
    ]
    r = api.post("/api/tasks/batch", json={"items": items})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "ValidationFailed" and body["detail"].startswith("3 of 5 tasks invalid, none stored")
    assert [e["field"] for e in body["errors"]] == ["items.1.className", "items.3.attachments.fixFrame", "items.4.id"]
    assert "NoSuchWorker" in body["errors"][0]["message"] and "items.0" in body["errors"][2]["message"]
    assert api.get("/api/tasks").json()["total"] == 0, "nothing stored"

    r = api.post("/api/tasks/batch", json={"items": [items[0], {"className": "MyWorker", "priority": "high"}]})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["items.1.priority"]
    r = api.post("/api/tasks/batch", json={"items": [items[0], {"className": "MyWorker", "maxRetries": -1}]})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["items.1.maxRetries"]
    r = api.post("/api/tasks/batch", json={"items": []})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "items"
    assert api.get("/api/tasks").json()["total"] == 0


def test_a_batch_naming_a_taken_id_is_409_and_stores_nothing(api: TestClient) -> None:
    cam(api, "taken")
    items = [{"id": f"n-{i}", "className": "MyWorker", "attachments": GOOD} for i in range(3)]
    items.insert(2, {"id": "taken", "className": "MyWorker", "attachments": GOOD})
    r = api.post("/api/tasks/batch", json={"items": items})
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"] == "TaskAlreadyExists" and body["task_ids"] == ["taken"]
    assert body["errors"] == [{"field": "items.2.id", "message": "task 'taken' already exists"}]
    assert [t["id"] for t in api.get("/api/tasks").json()["items"]] == ["taken"]
    api.post("/api/tasks/taken/cancel")


def test_a_batch_larger_than_controller_max_batch_is_413(system: SkaldsSystem, api: TestClient) -> None:
    assert system.service is not None
    system.service.limits = dataclasses.replace(system.service.limits, max_batch=2)
    items = [{"className": "MyWorker", "attachments": GOOD}] * 3
    r = api.post("/api/tasks/batch", json={"items": items})
    assert r.status_code == 413 and r.json()["errors"][0]["field"] == "items"
    assert "at most 2 (controller.max_batch)" in r.json()["detail"]
    assert api.get("/api/tasks").json()["total"] == 0


# ---- by filter ---------------------------------------------------------------------------


def test_cancel_by_filter_stops_every_matching_live_task_and_no_other(api: TestClient, tmp_path: Path) -> None:
    for i in range(3):
        cam(api, f"cam-{i}")
    journals = {f"probe-{i}": tmp_path / f"probe-{i}.jsonl" for i in range(2)}
    for task_id, journal in journals.items():
        probe(api, task_id, journal)
    cam(api, "cam-old")
    api.post("/api/tasks/cam-old/cancel")
    running(api, "cam-0", "cam-1", "cam-2", *journals)

    r = api.post("/api/tasks/cancel", params={"className": "^myworker$"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "action": "cancel",
        "matched": 3,
        "count": 3,
        "ids": ["cam-0", "cam-1", "cam-2"],
        "skipped": [],
    }
    assert {t: status(api, t) for t in ("cam-0", "probe-0", "probe-1")} == {
        "cam-0": "Cancelled",
        "probe-0": "Running",
        "probe-1": "Running",
    }
    (cancel,) = [h for h in api.get("/api/tasks/cam-1/history").json()["items"] if h["action"] == "cancel"]
    assert cancel["reason"] == "cancel by filter {'className': '^myworker$'}"

    # the filters as a JSON body; the workers really stop
    pids = {t: events(j, "main")[0]["pid"] for t, j in journals.items()}
    r = api.post("/api/tasks/cancel", json={"id": "^probe-1$", "lifecycleStatus": ["running", "paused"]})
    assert r.json()["ids"] == ["probe-1"]
    wait_until(lambda: process_gone(pids["probe-1"]), message="probe-1's worker stopped")
    assert not process_gone(pids["probe-0"]) and status(api, "probe-0") == "Running"


def test_cancel_by_filter_needs_a_filter_or_all(api: TestClient) -> None:
    cam(api, "c-1")
    r = api.post("/api/tasks/cancel")
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"field": "all", "message": "give at least one filter, or all=true to cancel every task"}
    ]
    assert api.post("/api/tasks/cancel", json={}).status_code == 422
    bad = api.post("/api/tasks/cancel", json={"id": "c[0"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "id"
    both = api.post("/api/tasks/cancel", params={"id": "c"}, json={"className": "x"})
    assert both.status_code == 422 and both.json()["errors"][0]["field"] == "body"
    unknown = api.post("/api/tasks/cancel", json={"colour": "red"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "colour"
    assert status(api, "c-1") != "Cancelled"

    r = api.post("/api/tasks/cancel", params={"all": "true"})
    assert r.status_code == 200 and r.json()["ids"] == ["c-1"]
    assert api.post("/api/tasks/cancel", json={"all": True}).json()["count"] == 0, "nothing live is left"


def test_cancel_by_filter_pages_through_every_match_and_skips_what_ended_meanwhile(
    system: SkaldsSystem, api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(7):
        cam(api, f"p-{i}")
    assert system.service is not None
    store = system.service.store
    monkeypatch.setattr(bulk, "PAGE", 2)
    real_find = store.find

    def find_then_race(query):  # type: ignore[no-untyped-def]
        page = real_find(query)
        if any(t.id == "p-3" for t in page.items):
            api.post("/api/tasks/p-3/cancel")  # ends after it was read, before the filter gets to it
        return page

    monkeypatch.setattr(store, "find", find_then_race)
    r = api.post("/api/tasks/cancel", params={"id": "^p-"})
    assert r.status_code == 200, r.text
    assert r.json()["ids"] == ["p-0", "p-1", "p-2", "p-4", "p-5", "p-6"] and r.json()["skipped"] == ["p-3"]
    monkeypatch.undo()
    assert api.get("/api/tasks", params={"lifecycleStatus": "Cancelled"}).json()["total"] == 7


def test_pause_and_resume_by_filter(api: TestClient, tmp_path: Path) -> None:
    journals = {f"pr-{i}": tmp_path / f"pr-{i}.jsonl" for i in range(3)}
    for task_id, journal in journals.items():
        probe(api, task_id, journal)
    running(api, *journals)
    r = api.post("/api/tasks/pause", params={"id": "pr-[01]"})
    assert r.status_code == 200 and r.json()["ids"] == ["pr-0", "pr-1"]
    wait_until(lambda: all(events(journals[t], "paused") for t in ("pr-0", "pr-1")), message="workers paused")
    assert status(api, "pr-2") == "Running" and not events(journals["pr-2"], "paused")
    r = api.post("/api/tasks/resume", json={"className": "Probe"})
    assert r.json()["ids"] == ["pr-0", "pr-1"], "only paused tasks resume"
    wait_until(lambda: all(events(journals[t], "resumed") for t in ("pr-0", "pr-1")), message="workers resumed")
    assert api.post("/api/tasks/cancel", params={"className": "Probe"}).json()["count"] == 3


def test_the_list_filters_have_time_windows(api: TestClient) -> None:
    cam(api, "w-1")
    created = api.get("/api/tasks/w-1").json()["createDateTime"]
    cam(api, "w-2")

    def ids(**params: object) -> list[str]:
        return [t["id"] for t in api.get("/api/tasks", params={**params, "order": "oldest"}).json()["items"]]

    assert "w-1" not in ids(createdBefore=created) and "w-1" in ids(createdBefore=created + 1), "before: exclusive"
    assert ids(createdAfter=created)[0] == "w-1", "after: inclusive"
    assert ids(updatedAfter=10**14) == []
    bad = api.get("/api/tasks", params={"updatedAfter": -1})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.updatedAfter"
    api.post("/api/tasks/cancel", params={"id": "^w-"})
