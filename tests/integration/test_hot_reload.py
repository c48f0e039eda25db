"""Editing a worker pool's YAML updates, starts, cancels and restarts the declared tasks; a
bad edit is rejected whole and harms nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from skalds.testing import wait_until
from tests.conftest import make_system, write_pool
from tests.probe_workers import read

pytestmark = pytest.mark.integration


class Pool:
    """A pool file with declared ProbeWorker tasks and a running system watching it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.path = tmp_path / "pool.yaml"
        self.tasks: dict[str, dict] = {}

    def journal(self, task_id: str) -> str:
        return str(self.tmp / f"{task_id}.jsonl")

    def declare(self, task_id: str, cls: str = "ProbeWorker", **attachments: object) -> None:
        if cls == "ProbeWorker":
            attachments = {"journal": self.journal(task_id), **attachments}
        self.tasks[task_id] = {"className": cls, "attachments": attachments}

    def save(self) -> None:
        write_pool(self.path, self.tasks)

    def events(self, task_id: str, kind: str) -> list[dict]:
        return [e for e in read(self.journal(task_id)) if e["event"] == kind]


def replace_text(path: Path, text: str) -> None:
    """Save ``text`` as an editor that renames into place does: a loaded machine must not
    let the watcher read the file between its truncation and its write."""
    tmp = path.with_suffix(".saving")
    tmp.write_text(text)
    tmp.replace(path)


@pytest.fixture
def pool(tmp_path: Path) -> Pool:
    p = Pool(tmp_path)
    p.declare("cam-1", level=1)
    p.save()
    return p


@pytest.fixture
def pool_path(pool: Pool) -> Path:
    """Run the ``system`` fixture (tests/conftest.py) on this module's pool file."""
    return pool.path


def task(api: TestClient, task_id: str) -> dict:
    return api.get(f"/api/tasks/{task_id}").json()


def running(api: TestClient, task_id: str) -> bool:
    return task(api, task_id).get("lifecycleStatus") == "Running"


def last_reload(api: TestClient) -> dict:
    return api.get("/api/system/config").json()["lastReload"]


def test_a_declared_task_starts_and_an_edit_reaches_its_update_handler(pool: Pool, api: TestClient) -> None:
    wait_until(lambda: pool.events("cam-1", "main"), message="declared task started")
    assert task(api, "cam-1")["source"] == "yaml:testpool"
    pool.declare("cam-1", level=42, label="edited")
    pool.save()
    update = wait_until(lambda: pool.events("cam-1", "update"), message="update handler called")[0]
    assert (update["level"], update["label"]) == (42, "edited")
    wait_until(lambda: task(api, "cam-1")["appliedVersion"] == 1, message="appliedVersion caught up")
    assert task(api, "cam-1")["attachments"]["level"] == 42
    assert last_reload(api)["ok"] and last_reload(api)["applied"]["updated"] == ["cam-1"]


def test_saving_the_same_content_sends_no_update(pool: Pool, api: TestClient) -> None:
    wait_until(lambda: running(api, "cam-1"), message="running")
    reloads_before = last_reload(api)["at"]
    pool.save()
    wait_until(lambda: last_reload(api)["at"] != reloads_before, message="reloaded")
    assert not any(last_reload(api)["applied"].values())
    assert task(api, "cam-1")["desiredVersion"] == 0 and not pool.events("cam-1", "update")


def test_adding_removing_and_reclassing_tasks(pool: Pool, api: TestClient) -> None:
    wait_until(lambda: running(api, "cam-1"), message="running")
    pool.declare("cam-2", level=2)
    pool.save()
    wait_until(lambda: pool.events("cam-2", "main"), message="added task started")

    del pool.tasks["cam-2"]
    pool.save()
    wait_until(lambda: task(api, "cam-2")["lifecycleStatus"] == "Cancelled", message="removed task cancelled")
    wait_until(lambda: pool.events("cam-2", "release"), message="its worker released")

    epoch = task(api, "cam-1")["epoch"]
    pool.tasks["cam-1"] = {"className": "CountdownWorker", "attachments": {"steps": 1000, "stepS": 0.05}}
    pool.save()
    wait_until(lambda: pool.events("cam-1", "release"), message="old class stopped")
    wait_until(
        lambda: task(api, "cam-1")["className"] == "CountdownWorker" and running(api, "cam-1"),
        message="new class running",
    )
    assert task(api, "cam-1")["epoch"] > epoch
    assert last_reload(api)["applied"]["replaced"] == ["cam-1"]


BAD_EDITS = {
    "yaml syntax": ("name: testpool\ntasks: [\n", 3, None),
    "schema": ("name: testpool\nclasses: {}\ntasks:\n  cam-1:\n    klass: ProbeWorker\n", 4, "tasks.cam-1"),
    "attachments": (None, None, "tasks.cam-1.attachments.level"),
    "unknown class": (None, None, "tasks.cam-1.className"),
    "duplicate id": (None, None, "tasks.cam-1"),
}


@pytest.mark.parametrize("kind", list(BAD_EDITS))
def test_a_bad_edit_is_rejected_whole_and_the_next_good_save_applies(pool: Pool, api: TestClient, kind: str) -> None:
    wait_until(lambda: pool.events("cam-1", "main"), message="running")
    text, line, field = BAD_EDITS[kind]
    good = pool.path.read_text()
    if kind == "attachments":
        text = good.replace("level: 1", "level: 1000")  # the model allows 0..100
    elif kind == "unknown class":
        text = good.replace("className: ProbeWorker", "className: NoSuchWorker")
    elif kind == "duplicate id":
        text = good + "  cam-1:\n    className: ProbeWorker\n"
    pool.path.write_text(text)
    error = wait_until(lambda: last_reload(api)["error"], message="edit rejected")
    assert error["file"] == str(pool.path)
    if field:
        assert error["field"] == field
    if line:
        assert error["line"] == line
    assert error["line"] is not None
    (file,) = api.get("/api/system/config").json()["files"]
    assert (file["node"], file["path"], file["ok"], file["error"]) == ("test-node", str(pool.path), False, error)
    assert running(api, "cam-1") and not pool.events("cam-1", "update")
    assert task(api, "cam-1")["attachments"]["level"] == 1

    pool.declare("cam-1", level=5)
    pool.save()
    wait_until(lambda: pool.events("cam-1", "update"), message="next good save applied")
    assert last_reload(api)["ok"]


def test_rapid_saves_end_with_the_last_content(pool: Pool, api: TestClient) -> None:
    wait_until(lambda: running(api, "cam-1"), message="running")
    for level in range(2, 12):
        pool.declare("cam-1", level=level)
        pool.save()
    wait_until(lambda: task(api, "cam-1")["attachments"]["level"] == 11, message="last save wins")
    updates = wait_until(lambda: [e for e in pool.events("cam-1", "update") if e["level"] == 11], message="handler")
    assert updates
    levels = [e["level"] for e in pool.events("cam-1", "update")]
    assert levels == sorted(set(levels)), "each content applied at most once, in save order"


def test_an_in_place_write_and_a_delete_then_recreate(pool: Pool, api: TestClient) -> None:
    wait_until(lambda: running(api, "cam-1"), message="running")
    pool.declare("cam-1", level=3)
    content = yaml.safe_dump(
        {"name": "testpool", "classes": yaml.safe_load(pool.path.read_text())["classes"], "tasks": pool.tasks},
        sort_keys=False,
    )
    with open(pool.path, "w") as f:  # truncate + write, as many editors do
        f.write(content)
    wait_until(lambda: [e for e in pool.events("cam-1", "update") if e["level"] == 3], message="in-place write")

    pool.path.unlink()
    wait_until(lambda: "missing" in (last_reload(api)["error"] or {}).get("message", ""), message="deletion seen")
    assert running(api, "cam-1"), "a deleted file cancels nothing"
    pool.declare("cam-1", level=4)
    pool.save()
    wait_until(lambda: [e for e in pool.events("cam-1", "update") if e["level"] == 4], message="recreated file")


def test_an_edit_while_paused_is_applied_at_once(pool: Pool, api: TestClient) -> None:
    wait_until(lambda: running(api, "cam-1"), message="running")
    api.post("/api/tasks/cam-1/pause")
    wait_until(lambda: pool.events("cam-1", "paused"), message="paused")
    pool.declare("cam-1", level=9)
    pool.save()
    wait_until(lambda: [e for e in pool.events("cam-1", "update") if e["level"] == 9], message="applied while paused")
    assert task(api, "cam-1")["lifecycleStatus"] == "Paused"


def test_declared_tasks_survive_a_restart_without_duplicates(pool: Pool, tmp_path: Path) -> None:
    first = make_system(pool.tmp / "data", pool=pool.path).start()
    try:
        wait_until(lambda: first.service.get("cam-1").lifecycle_status.value == "Running", message="running")
    finally:
        first.stop()
    del pool.tasks["cam-1"]
    pool.declare("cam-3")
    pool.save()  # edited while Skalds was down
    second = make_system(pool.tmp / "data", pool=pool.path).start()
    try:
        ids = sorted(
            t.id
            for t in second.service.find(
                __import__("skalds.ports.task_store", fromlist=["TaskQuery"]).TaskQuery()
            ).items
        )
        assert ids == ["cam-1", "cam-3"]
        wait_until(lambda: second.service.get("cam-1").lifecycle_status.value == "Cancelled", message="removed")
        wait_until(lambda: second.service.get("cam-3").lifecycle_status.value == "Running", message="added")
    finally:
        second.stop()


def test_the_seed_tasks_file_format_declares_tasks(tmp_path: Path) -> None:
    journal = str(tmp_path / "seed.jsonl")
    seed = tmp_path / "all_workers.yml"
    seed.write_text(
        yaml.safe_dump(
            {
                "TaskWorkers": {
                    "TaskWorker1": {
                        "className": "ProbeWorker",
                        "isPersistent": True,
                        "attachments": {"journal": journal, "level": 1},
                    }
                }
            }
        )
    )
    pool = write_pool(tmp_path / "pool.yaml", tasks_file=str(seed))
    s = make_system(tmp_path / "data", pool=pool).start()
    try:
        wait_until(lambda: [e for e in read(journal) if e["event"] == "main"], message="seed task started")
        seed.write_text(seed.read_text().replace("level: 1", "level: 8"))
        wait_until(lambda: [e for e in read(journal) if e["event"] == "update" and e["level"] == 8], message="updated")
    finally:
        s.stop()


def test_a_classes_edit_is_checked_and_applied_like_a_task_edit(
    pool: Pool, api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    wait_until(lambda: running(api, "cam-1"), message="running")
    good = yaml.safe_load(pool.path.read_text())
    broken = {**good, "classes": {**good["classes"], "Camera": "skalds.workers.nope:Camera"}}
    replace_text(pool.path, yaml.safe_dump(broken, sort_keys=False))
    error = wait_until(lambda: last_reload(api)["error"], message="classes edit rejected")
    assert error["field"] == "classes.Camera" and "cannot load worker class" in error["message"]
    lines = pool.path.read_text().splitlines()
    assert lines[error["line"] - 1].strip().startswith("Camera:"), "the line of the class"
    assert "Camera" not in [w["className"] for w in api.get("/api/workers").json()]

    renamed = {**good, "classes": {**good["classes"], "Camera": "skalds.workers.camera:CameraWorker"}}
    renamed["classes"].pop("AlwaysFailWorker")
    with caplog.at_level("INFO", logger="skalds.reload.reloader"):
        replace_text(pool.path, yaml.safe_dump(renamed, sort_keys=False))
        wait_until(lambda: last_reload(api)["ok"], message="good again")
    assert any("good again" in r.message for r in caplog.records)
    assert last_reload(api)["applied"]["classesChanged"] == ["Camera"]
    wait_until(
        lambda: (
            {w["className"] for w in api.get("/api/workers").json()} >= {"Camera"}
            and "AlwaysFailWorker" not in {w["className"] for w in api.get("/api/workers").json()}
        ),
        message="the node advertises its new classes",
    )
    body = {"id": "cam-new", "className": "Camera", "attachments": {"rtspUrl": "synthetic://x?fps=5", "fixFrame": 1}}
    assert api.post("/api/tasks", json=body).status_code == 201
    wait_until(lambda: running(api, "cam-new"), message="a task of the new class runs (the launcher imported it)")
    assert api.post("/api/tasks", json={"className": "AlwaysFailWorker"}).status_code == 422


def test_an_api_patch_of_a_declared_task_lasts_until_its_yaml_entry_changes(pool: Pool, tmp_path: Path) -> None:
    system = make_system(tmp_path / "data", pool=pool.path).start()
    api = TestClient(system.app, base_url="http://localhost")
    try:
        wait_until(lambda: running(api, "cam-1"), message="running")
        assert api.patch("/api/tasks/cam-1/attachments", json={"attachments": {"level": 42}}).status_code == 200
    finally:
        system.stop()
    system = make_system(tmp_path / "data", pool=pool.path).start()
    api = TestClient(system.app, base_url="http://localhost")
    try:
        wait_until(lambda: running(api, "cam-1"), message="running again")
        assert task(api, "cam-1")["attachments"]["level"] == 42, "a restart does not undo the API's edit"
        pool.declare("cam-1", level=7)
        pool.save()
        wait_until(lambda: task(api, "cam-1")["attachments"]["level"] == 7, message="the YAML's edit wins now")
    finally:
        system.stop()
