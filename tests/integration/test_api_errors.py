"""Bad requests get a 4xx JSON error that names what is wrong, and store nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

GOOD = {"rtspUrl": "rtsp://example.com/stream", "fixFrame": 10}


def count(api: TestClient) -> int:
    return api.get("/api/tasks").json()["total"]


def test_attachments_failing_the_model_are_422_naming_the_field(api: TestClient) -> None:
    r = api.post("/api/tasks", json={"className": "MyWorker", "attachments": {"rtspUrl": "x", "fixFrame": "ten"}})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "ValidationFailed"
    assert "fixFrame" in body["detail"]
    assert [e["field"] for e in body["errors"]] == ["fixFrame"]
    r = api.post("/api/tasks", json={"className": "MyWorker", "attachments": {"fixFrame": 1}})
    assert r.status_code == 422 and "rtspUrl" in r.json()["detail"]
    assert count(api) == 0


def test_unknown_class_is_422_listing_the_known_ones(api: TestClient) -> None:
    r = api.post("/api/tasks", json={"className": "NoSuchWorker", "attachments": {}})
    assert r.status_code == 422
    assert r.json()["error"] == "UnknownWorkerClass"
    assert {"MyWorker", "CountdownWorker", "AlwaysFailWorker"} <= set(r.json()["known"])
    assert count(api) == 0


def test_a_duplicate_id_is_409(api: TestClient) -> None:
    assert api.post("/api/tasks", json={"id": "cam-1", "className": "MyWorker", "attachments": GOOD}).status_code == 201
    r = api.post("/api/tasks", json={"id": "cam-1", "className": "MyWorker", "attachments": GOOD})
    assert r.status_code == 409 and r.json()["error"] == "TaskAlreadyExists"
    api.post("/api/tasks/cam-1/cancel")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"attachments": {}}, "className"),
        ({"className": "MyWorker", "attachments": [1]}, "attachments"),
        ({"className": "MyWorker", "attachments": GOOD, "priority": "high"}, "priority"),
        ({"className": "MyWorker", "attachments": GOOD, "id": "bad id!"}, "id"),
        ({"className": "MyWorker", "attachments": GOOD, "colour": "red"}, "colour"),
    ],
)
def test_malformed_bodies_are_422_naming_the_field(api: TestClient, body: dict, field: str) -> None:
    r = api.post("/api/tasks", json=body)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


def test_missing_tasks_are_404_everywhere(api: TestClient) -> None:
    assert api.get("/api/tasks/nope").status_code == 404
    assert api.get("/api/tasks/nope").json() == {
        "error": "TaskNotFound",
        "detail": "task 'nope' not found",
        "task_id": "nope",
    }
    for action in ("pause", "resume", "cancel"):
        assert api.post(f"/api/tasks/nope/{action}").status_code == 404
    assert api.patch("/api/tasks/nope/attachments", json={"attachments": {}}).status_code == 404


def test_an_update_that_breaks_the_model_is_422_and_changes_nothing(api: TestClient) -> None:
    tid = api.post("/api/tasks", json={"className": "MyWorker", "attachments": GOOD}).json()["id"]
    r = api.patch(f"/api/tasks/{tid}/attachments", json={"attachments": {"fixFrame": "many"}})
    assert r.status_code == 422 and "fixFrame" in r.json()["detail"]
    task = api.get(f"/api/tasks/{tid}").json()
    assert task["attachments"] == GOOD and task["desiredVersion"] == 0
    # snake_case field names are accepted too and merge onto the aliased attachments
    r = api.patch(f"/api/tasks/{tid}/attachments", json={"attachments": {"fix_frame": 11}})
    assert r.status_code == 200 and r.json()["attachments"] == {**GOOD, "fixFrame": 11}
    api.post(f"/api/tasks/{tid}/cancel")
    assert api.patch(f"/api/tasks/{tid}/attachments", json={"attachments": {"fixFrame": 1}}).status_code == 409


def test_list_filters_and_pages(api: TestClient) -> None:
    for i in range(3):
        api.post("/api/tasks", json={"id": f"c{i}", "className": "MyWorker", "attachments": GOOD})
    api.post("/api/tasks", json={"id": "f1", "className": "AlwaysFailWorker", "attachments": {}})
    page = api.get("/api/tasks", params={"className": "MyWorker", "limit": 2, "offset": 1, "order": "oldest"}).json()
    assert page["total"] == 3 and [t["id"] for t in page["items"]] == ["c1", "c2"]
    newest = api.get("/api/tasks", params={"className": "^my", "page": 1, "pageSize": 2}).json()
    assert [t["id"] for t in newest["items"]] == ["c2", "c1"] and (newest["page"], newest["pageSize"]) == (1, 2)
    assert api.get("/api/tasks", params={"lifecycleStatus": "Bogus"}).json()["total"] == 0
    bad = api.get("/api/tasks", params={"id": "c[0"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "id"
    for i in range(3):
        api.post(f"/api/tasks/c{i}/cancel")
    cancelled = api.get("/api/tasks", params={"lifecycleStatus": "Cancelled"}).json()
    assert {t["id"] for t in cancelled["items"]} == {"c0", "c1", "c2"}


def test_workers_nodes_and_health_describe_the_system(api: TestClient) -> None:
    workers = {w["className"]: w["schema"] for w in api.get("/api/workers").json()}
    assert set(workers["MyWorker"]["properties"]) == {"rtspUrl", "fixFrame"}
    nodes = api.get("/api/skalds").json()
    assert nodes["total"] == 1
    assert [(n["id"], n["type"], n["status"], n["capacity"]) for n in nodes["items"]] == [
        ("test-node", "node", "online", 16)
    ]
    assert api.get("/api/system/health").json()["status"] == "healthy"
    assert api.get("/api/openapi.json").status_code == 200
