"""The original Skalds' REST contract (inventory §8.2) as the floor: every path, method, query
parameter and response field its clients and dashboard use answers with its shape, Skalds'
additions beside them."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from skalds.testing import wait_until
from tests.procs import SkaldsProcess

pytestmark = pytest.mark.integration

GOOD = {"rtspUrl": "rtsp://example.com/stream", "fixFrame": 10}
TASK_FIELDS = {
    "id",
    "className",
    "lifecycleStatus",
    "executor",
    "createDateTime",
    "updateDateTime",
    "mode",
    "attachments",
    "heartbeat",
    "error",
    "exception",
    "priority",
}
SKALD_FIELDS = {"id", "type", "status", "lastHeartbeat", "supportedTasks", "currentTasks", "heartbeat", "taskCount"}


def has(body: dict, fields: set[str]) -> None:
    assert fields <= set(body), f"missing {sorted(fields - set(body))}"


def running(api: TestClient, task_id: str) -> bool:
    return api.get(f"/api/tasks/{task_id}").json()["lifecycleStatus"] == "Running"


@pytest.fixture
def tasks(api: TestClient) -> list[str]:
    ids = []
    for i in range(3):
        r = api.post("/api/tasks", json={"id": f"cam-{i}", "className": "MyWorker", "attachments": GOOD})
        assert r.status_code == 201
        ids.append(r.json()["id"])
    wait_until(lambda: all(running(api, t) for t in ids), message="running")
    return ids


def test_the_task_list_pages_sorts_and_filters_as_the_original(api: TestClient, tasks: list[str]) -> None:
    page = api.get("/api/tasks/", params={"page": 2, "pageSize": 2}).json()
    assert {"items", "total", "page", "pageSize"} <= set(page)
    assert (page["total"], page["page"], page["pageSize"], len(page["items"])) == (3, 2, 2, 1)
    first = api.get("/api/tasks/", params={"page": 1, "pageSize": 2}).json()["items"]
    assert first[0]["createDateTime"] >= first[1]["createDateTime"], "newest first"
    for task in first:
        has(task, TASK_FIELDS)
        assert isinstance(task["createDateTime"], int) and task["mode"] == "Passive"
        assert isinstance(task["heartbeat"], int)
    assert api.get("/api/tasks/", params={"lifecycleStatus": "running", "id": "CAM-[12]"}).json()["total"] == 2
    assert api.get("/api/tasks/", params={"className": "worker", "executor": "test-node"}).json()["total"] == 3
    assert api.get("/api/tasks/classnames").json() == ["MyWorker"]


def test_a_task_its_heartbeat_and_the_originals_actions(api: TestClient, tasks: list[str]) -> None:
    task = api.get("/api/tasks/cam-0").json()
    has(task, TASK_FIELDS)
    beat = api.get("/api/tasks/cam-0/heartbeat").json()
    has(
        beat,
        {
            "taskId",
            "heartbeat",
            "status",
            "isAlive",
            "isAssigning",
            "error",
            "exception",
            "lastUpdate",
            "heartbeatHistory",
        },
    )
    wait_until(lambda: api.get("/api/tasks/cam-0/heartbeat").json()["isAlive"], message="a heartbeat arrived")

    r = api.put("/api/tasks/cam-0/attachments", json={"attachments": {"rtspUrl": "rtsp://other", "fixFrame": 3}})
    assert r.status_code == 200 and r.json()["success"] and r.json()["data"]["taskId"] == "cam-0"
    assert api.get("/api/tasks/cam-0").json()["attachments"] == {"rtspUrl": "rtsp://other", "fixFrame": 3}
    bad = api.put("/api/tasks/cam-0/attachments", json={"attachments": {"rtspUrl": "x"}})
    assert bad.status_code == 422, "validated, unlike the original"

    r = api.put("/api/tasks/cam-1/status", json={"lifecycleStatus": "Cancelled"})
    assert r.status_code == 200 and r.json()["data"] == {
        "taskId": "cam-1",
        "status": "Cancelled",
        "lifecycleStatus": "Cancelled",
    }
    r = api.put("/api/tasks/cam-1/status", json={"lifecycleStatus": "Created"})
    assert r.status_code == 200, "Created runs it again from scratch"
    wait_until(lambda: running(api, "cam-1"), message="running again")
    assert api.put("/api/tasks/cam-1/status", json={"lifecycleStatus": "Running"}).status_code == 422

    r = api.delete("/api/tasks/cam-2")
    assert r.status_code == 200 and r.json()["data"]["status"] == "Cancelled", "DELETE of a live task cancels it"
    r = api.delete("/api/tasks/cam-2")
    assert r.status_code == 200 and r.json()["data"]["status"] == "Deleted", "of an ended one, removes it"
    assert api.get("/api/tasks/cam-2").status_code == 404
    assert api.post("/api/tasks", json={"id": "cam-2", "className": "MyWorker", "attachments": GOOD}).status_code == 201


def test_skalds_and_their_sub_resources(api: TestClient, tasks: list[str]) -> None:
    page = api.get("/api/skalds/").json()
    assert page["total"] == 1
    skald = page["items"][0]
    has(skald, SKALD_FIELDS)
    assert (skald["type"], skald["status"], skald["taskCount"]) == ("node", "online", 3)
    assert sorted(skald["currentTasks"]) == tasks and "MyWorker" in skald["supportedTasks"]
    assert isinstance(skald["lastHeartbeat"], str)
    assert api.get("/api/skalds", params={"type": "edge"}).json()["total"] == 0
    has(api.get("/api/skalds/test-node").json(), SKALD_FIELDS)
    listed = api.get("/api/skalds/test-node/tasks").json()
    assert listed["skaldId"] == "test-node" and listed["totalTasks"] == 3
    has(listed["tasks"][0], {"id", "className", "assignedAt"})
    status = api.get("/api/skalds/test-node/status").json()
    has(status, {"skaldId", "status", "type", "heartbeat", "lastUpdate", "taskCount", "isOnline", "uptime", "details"})
    has(status["details"], {"canAcceptTasks", "lastHeartbeatAge", "tasks"})
    has(
        api.get("/api/skalds/test-node/heartbeat").json(),
        {"skaldId", "heartbeat", "lastUpdate", "heartbeatAge", "isOnline", "timestamp"},
    )
    stats = api.get("/api/skalds/summary/statistics").json()
    has(stats, {"totalSkalds", "onlineSkalds", "offlineSkalds", "nodeSkalds", "edgeSkalds", "availableNodes"})
    has(stats, {"totalRunningTasks", "averageTasksPerSkald", "details"})
    assert stats["totalRunningTasks"] == 3
    ping = api.post("/api/skalds/test-node/ping").json()
    assert ping["success"] and ping["data"]["online"]
    missing = api.get("/api/skalds/nobody")
    assert missing.status_code == 404 and set(missing.json()) >= {"error", "detail"}


def test_the_system_endpoints(api: TestClient, tasks: list[str]) -> None:
    root = api.get("/api").json()
    assert root["endpoints"] == {
        "tasks": "/api/tasks",
        "skalds": "/api/skalds",
        "events": "/api/events",
        "system": "/api/system",
    }
    health = api.get("/api/system/health").json()
    has(health, {"status", "timestamp", "services"})
    assert health["status"] == "healthy"
    status = api.get("/api/system/status").json()
    has(status, {"mode", "components", "uptime", "version"})
    has(status["components"][0], {"name", "running", "details"})
    summary = api.get("/api/system/dashboard/summary").json()
    has(summary, {"totalSkalds", "onlineSkalds", "totalTasks", "runningTasks", "finishedTasks", "failedTasks"})
    has(summary, {"assigningTasks", "cancelledTasks", "nodeSkalds", "edgeSkalds"})
    assert (summary["runningTasks"], summary["onlineSkalds"]) == (3, 1)
    config = api.get("/api/system/config").json()
    has(config, {"mode", "host", "port", "monitoring", "dispatcher", "environment", "logLevel", "files"})
    has(config["monitoring"], {"skaldInterval", "taskInterval", "heartbeatTimeout"})
    metrics = api.get("/api/system/metrics").json()
    has(metrics, {"timestamp", "skalds", "tasks", "performance"})
    has(metrics["performance"], {"averageTasksPerSkald", "taskDistribution", "systemLoad"})
    assert metrics["performance"]["taskDistribution"] == {"test-node": 3}
    version = api.get("/api/system/version").json()
    has(version, {"version", "buildDate", "gitCommit", "pythonVersion", "dependencies"})
    distribution = api.get("/api/system/analytics/task-distribution").json()
    running_share = next(d for d in distribution["distribution"] if d["status"] == "Running")
    assert (running_share["count"], running_share["percentage"]) == (3, 100.0)
    activity = api.get("/api/system/analytics/recent-activity", params={"hours": 2}).json()
    has(activity, {"timeframe", "tasksCreated", "tasksUpdated", "tasksFinished", "tasksFailed", "successRate"})
    assert activity["tasksCreated"] == 3
    assert api.get("/api/system/analytics/recent-activity", params={"hours": 500}).status_code == 422
    assert api.post("/api/system/cleanup").json()["success"]
    for path in ("/api/docs", "/api/redoc", "/api/openapi.json"):
        assert api.get(path).status_code == 200, path


def test_unknown_routes_and_methods_answer_in_the_one_error_shape(api: TestClient) -> None:
    for method, path, code in (("GET", "/api/nope", 404), ("DELETE", "/api/system/health", 405)):
        r = api.request(method, path)
        assert r.status_code == code and set(r.json()) >= {"error", "detail"}


# ---- the event streams, against a real server -----------------------------------------------
def read_sse(
    http: httpx.Client,
    path: str,
    until: int,
    headers: dict | None = None,
    timeout_s: float = 20,
    opened: threading.Event | None = None,
) -> list[dict]:
    """Events (``{"id", "event", "data"}``) of a stream until ``until`` of them arrived;
    ``opened`` is set once the first one did (the stream is listening then)."""
    events: list[dict] = []
    current: dict = {}
    deadline = time.monotonic() + timeout_s
    with http.stream("GET", path, headers=headers, timeout=timeout_s) as r:
        for line in r.iter_lines():
            if line.startswith(("id:", "event:", "data:")):
                key, _, value = line.partition(":")
                current[key] = json.loads(value) if key == "data" else value.strip()
            elif line == "" and current:
                events.append(current)
                current = {}
                if opened is not None:
                    opened.set()
                if len(events) >= until:
                    break
            if time.monotonic() > deadline:
                break
    return events


@pytest.fixture
def server(tmp_path: Path):
    p = SkaldsProcess(tmp_path, "node.heartbeat_interval_s=0.2")
    yield p
    p.stop()


def test_the_originals_streams_keep_their_event_shapes(server: SkaldsProcess) -> None:
    got: dict[str, list[dict]] = {}
    opened = {"tasks": threading.Event(), "skalds": threading.Event()}

    def listen(name: str, path: str, count: int) -> None:
        got[name] = read_sse(httpx.Client(base_url=str(server.http.base_url)), path, count, opened=opened[name])

    threads = [
        threading.Thread(target=listen, args=("tasks", "/api/events/tasks?task_id=sse-1", 3)),
        threading.Thread(target=listen, args=("skalds", "/api/events/skalds", 2)),
    ]
    for t in threads:
        t.start()
    # Each stream says "connection" once it listens. (Counting connected clients raced: the
    # Skalds stream may get its second event, a node's, and close before the other opens.)
    assert all(e.wait(10) for e in opened.values()), "both streams listening"
    # The task stream waits for events of a task not created yet: it is surely connected.
    assert server.http.get("/api/events/status").json()["connectedClients"] >= 1
    body = {"id": "sse-1", "className": "MyWorker", "attachments": GOOD}
    assert server.http.post("/api/tasks", json=body).status_code == 201
    for t in threads:
        t.join(timeout=30)
    tasks = [e["data"] for e in got["tasks"]]
    assert tasks[0] == {"type": "connection", "message": "Connected to Tasks events"}
    assert all(e["type"] == "task_heartbeat" and e["taskId"] == "sse-1" for e in tasks[1:])
    assert {"heartbeat", "lifecycleStatus"} <= set(tasks[1]["data"])
    assert got["skalds"][0]["data"] == {"type": "connection", "message": "Connected to Skalds events"}


def test_the_event_stream_resumes_from_last_event_id_without_losses_or_duplicates(server: SkaldsProcess) -> None:
    http = httpx.Client(base_url=str(server.http.base_url))
    first = read_sse(http, "/api/events?since=0", until=1)
    assert first[0]["event"] == "hello"
    for i in range(5):
        server.http.post("/api/tasks", json={"id": f"r-{i}", "className": "MyWorker", "attachments": GOOD})
    everything = [e for e in read_sse(http, "/api/events?since=0", until=40, timeout_s=5) if e.get("id")]
    assert everything, "events were recorded"
    ids = [int(e["id"]) for e in everything]
    assert ids == sorted(set(ids)), "in order, no duplicates"
    middle = ids[len(ids) // 2]
    resumed = [
        e
        for e in read_sse(http, "/api/events", until=40, headers={"Last-Event-ID": str(middle)}, timeout_s=5)
        if e.get("id")
    ]
    resumed_ids = [int(e["id"]) for e in resumed]
    assert resumed_ids[: len(ids) - ids.index(middle) - 1] == ids[ids.index(middle) + 1 :], "exactly what was missed"
    pending = [e["data"]["taskId"] for e in everything if e["event"] == "task.pending"]
    assert pending[:5] == [f"r-{i}" for i in range(5)]
    # A cursor from an earlier run of the controller (ids start again at 1) is ahead of the
    # hub: the client is told to read the state again, then gets what follows.
    ahead = read_sse(http, "/api/events", until=2, headers={"Last-Event-ID": str(ids[-1] + 10_000)}, timeout_s=5)
    assert [e["event"] for e in ahead] == ["hello", "reset"]


def test_history_tells_every_change_with_its_actor_epoch_and_reason(api: TestClient) -> None:
    api.post("/api/tasks", json={"id": "h-1", "className": "MyWorker", "attachments": GOOD})
    wait_until(lambda: running(api, "h-1"), message="running")
    api.patch("/api/tasks/h-1/attachments", json={"attachments": {"fixFrame": 5}})
    wait_until(lambda: api.get("/api/tasks/h-1").json()["appliedVersion"] == 1, message="applied")
    api.post("/api/tasks/h-1/pause")
    api.post("/api/tasks/h-1/cancel")
    items = api.get("/api/tasks/h-1/history").json()["items"]
    steps = [(i["action"], i["actor"], i["status"], i["epoch"]) for i in items]
    assert steps == [
        ("create", "api", "Created", 0),
        ("assign", "dispatcher", "Assigning", 1),
        ("start", "test-node", "Running", 1),
        ("update", "api", "Running", 1),
        ("applied", "test-node", "Running", 1),
        ("pause", "api", "Paused", 1),
        ("cancel", "api", "Cancelled", 1),
    ]
    assert items[1]["reason"] == "least_loaded chose test-node" and items[3]["reason"] == "version 1"
    assert all(isinstance(i["at"], int) for i in items)


def test_metrics_speak_prometheus_with_the_clusters_figures(api: TestClient) -> None:
    api.post("/api/tasks", json={"id": "m-1", "className": "MyWorker", "attachments": GOOD})
    wait_until(lambda: running(api, "m-1"), message="running")
    api.patch("/api/tasks/m-1/attachments", json={"attachments": {"fixFrame": 5}})
    wait_until(lambda: api.get("/api/tasks/m-1").json()["appliedVersion"] == 1, message="applied")
    api.post("/api/tasks/m-1/cancel")
    wait_until(lambda: "skalds_cancel_seconds_count 1.0" in api.get("/metrics").text, message="cancel observed")
    text = api.get("/metrics").text
    assert api.get("/metrics").headers["content-type"].startswith("text/plain")
    for line in (
        'skalds_tasks{class="MyWorker",state="Cancelled"} 1.0',
        'skalds_nodes{state="online",type="node"} 1.0',
        'skalds_node_capacity{node="test-node"} 16.0',
        "skalds_dispatch_seconds_count 1.0",
        "skalds_update_seconds_count 1.0",
    ):
        assert line in text, line
    assert 'skalds_node_memory_bytes{node="test-node"}' in text


def test_the_api_docs_load_their_assets_from_the_package(api: TestClient) -> None:
    for page, asset in (
        ("/api/docs", "/docs-assets/swagger-ui-bundle.js"),
        ("/api/redoc", "/docs-assets/redoc.standalone.js"),
    ):
        html = api.get(page).text
        assert asset in html and "cdn" not in html.lower() and "fonts.googleapis" not in html
        assert api.get(asset).status_code == 200
    assert api.get("/docs-assets/swagger-ui.css").status_code == 200
