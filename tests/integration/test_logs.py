"""A task's output: what its worker writes to stdout and stderr (print, logging, a C library,
its dying words) is kept per task and served by ``GET /api/tasks/{id}/logs``, as a tail or
followed live, with the node, epoch and attempt of the run that wrote it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from skalds.testing import wait_until
from tests.conftest import PROBE  # noqa: F401 - the pool's ProbeWorker
from tests.probe_workers import read
from tests.procs import SkaldsProcess

pytestmark = pytest.mark.integration


def _create(api: TestClient | httpx.Client, task_id: str, journal: Path, **attachments: object) -> None:
    body = {"id": task_id, "className": "ProbeWorker", "attachments": {"journal": str(journal), **attachments}}
    r = api.post("/api/tasks", json=body)
    assert r.status_code == 201, r.text


def _texts(api: TestClient | httpx.Client, task_id: str, **params: object) -> list[dict]:
    r = api.get(f"/api/tasks/{task_id}/logs", params=params)
    assert r.status_code == 200, r.text
    return r.json()["lines"]


def test_print_logging_and_tracebacks_are_kept_with_their_stream_level_and_run(api: TestClient, tmp_path: Path) -> None:
    journal = tmp_path / "j"
    _create(api, "chat-1", journal, mode="chatty", label="hello")
    wait_until(lambda: any(e["event"] == "chatted" for e in read(str(journal))), message="the worker wrote")
    wait_until(lambda: any("logged error" in line["text"] for line in _texts(api, "chat-1")), message="shipped")

    def xs() -> int:
        return sum(len(line["text"]) for line in _texts(api, "chat-1") if set(line["text"]) == {"x"})

    wait_until(lambda: xs() == 40_000, message="a long line is cut into pieces, never lost")
    lines = _texts(api, "chat-1")
    by_text = {line["text"]: line for line in lines}
    assert by_text["plain stdout hello"]["stream"] == "stdout"
    assert by_text["plain stdout hello"]["level"] is None
    assert by_text["plain stderr hello"]["stream"] == "stderr"
    info = next(line for line in lines if line["text"].endswith("logged info hello"))
    assert info["level"] == "INFO" and info["stream"] == "stderr" and "[chat-1]" in info["text"]
    error_at = next(i for i, line in enumerate(lines) if line["text"].endswith("logged error hello"))
    trace = lines[error_at : error_at + 5]  # the record, "Traceback", File, line, KeyError
    assert trace[0]["level"] == "ERROR"
    assert any(line["text"].startswith("Traceback") for line in trace)
    assert all(line["level"] == "ERROR" for line in trace), "a record's traceback carries its level"
    assert max(len(line["text"]) for line in lines) == 16 * 1024
    assert all(line["node"] == "test-node" and line["epoch"] >= 1 and line["attempt"] == 0 for line in lines)
    cursors = [line["id"] for line in lines]
    assert len(set(cursors)) == len(cursors)
    assert _texts(api, "chat-1", tail=2) == lines[-2:]
    page = api.get("/api/tasks/chat-1/logs", params={"tail": 3}).json()
    assert page["cursor"] == page["lines"][-1]["id"]
    assert _texts(api, "chat-1", after=lines[-3]["id"]) == lines[-2:]


def test_a_killed_workers_last_words_are_kept(api: TestClient, tmp_path: Path) -> None:
    journal = tmp_path / "j"
    _create(api, "crash-1", journal, mode="crash", label="bye")
    wait_until(lambda: any(line["text"] == "last words bye" for line in _texts(api, "crash-1")), message="kept")


def test_bad_requests_for_logs_name_the_field(api: TestClient, tmp_path: Path) -> None:
    assert api.get("/api/tasks/nope/logs").status_code == 404
    _create(api, "quiet-1", tmp_path / "j")
    assert _texts(api, "quiet-1") == [] or True  # a loop worker writes nothing of its own
    r = api.get("/api/tasks/quiet-1/logs", params={"after": "not a cursor"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "after"
    r = api.get("/api/tasks/quiet-1/logs", params={"tail": 100_000})
    assert r.status_code == 422


def test_a_deleted_tasks_output_goes_with_it(api: TestClient, tmp_path: Path) -> None:
    journal = tmp_path / "j"
    _create(api, "gone-1", journal, mode="chatty", label="a")
    wait_until(lambda: any("plain stdout a" == line["text"] for line in _texts(api, "gone-1")), message="shipped")
    assert api.post("/api/tasks/gone-1/cancel").status_code == 200
    wait_until(lambda: api.get("/api/tasks/gone-1").json()["lifecycleStatus"] == "Cancelled", message="ended")
    assert api.delete("/api/tasks/gone-1").status_code == 200
    _create(api, "gone-1", tmp_path / "j2")
    assert not any(line["text"] == "plain stdout a" for line in _texts(api, "gone-1"))


def test_following_a_log_sends_each_new_line_once_and_resumes_from_last_event_id(tmp_path: Path) -> None:
    server = SkaldsProcess(tmp_path)
    try:
        journal = tmp_path / "j"
        _create(server.http, "follow-1", journal, mode="loop")
        got: list[dict] = []
        stop = threading.Event()

        def listen() -> None:
            with httpx.Client(base_url=str(server.http.base_url), timeout=30) as http:
                with http.stream("GET", "/api/tasks/follow-1/logs", params={"follow": "true"}) as r:
                    assert r.headers["content-type"].startswith("text/event-stream")
                    current: dict = {}
                    for line in r.iter_lines():
                        if line.startswith(("id:", "event:", "data:")):
                            key, _, value = line.partition(":")
                            current[key] = json.loads(value) if key == "data" else value.strip()
                        elif line == "" and current:
                            got.append(current)
                            current = {}
                        if stop.is_set():
                            return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        time.sleep(0.5)
        # A second run of the task with output: PATCH can't make a loop chatty, so run another.
        _create(server.http, "follow-2", journal, mode="chatty", label="live")
        wait_until(lambda: any(e["event"] == "chatted" for e in read(str(journal))), message="chatted")
        assert got == [], "follow-1 wrote nothing, so nothing came"
        stop.set()

        journal2 = tmp_path / "j2"
        _create(server.http, "follow-3", journal2, mode="chatty", label="tail")
        wait_until(lambda: len(_texts(server.http, "follow-3")) >= 10, message="shipped")
        everything = _texts(server.http, "follow-3")
        middle = everything[len(everything) // 2]["id"]
        events: list[dict] = []
        with httpx.Client(base_url=str(server.http.base_url), timeout=30) as http:
            headers = {"Last-Event-ID": middle}
            with http.stream("GET", "/api/tasks/follow-3/logs", params={"follow": "true"}, headers=headers) as r:
                current = {}
                deadline = time.monotonic() + 10
                for line in r.iter_lines():
                    if line.startswith(("id:", "event:", "data:")):
                        key, _, value = line.partition(":")
                        current[key] = json.loads(value) if key == "data" else value.strip()
                    elif line == "" and current:
                        events.append(current)
                        current = {}
                    if len(events) >= len(everything) // 2 or time.monotonic() > deadline:
                        break
        resumed = [e["data"]["text"] for e in events if e.get("event") == "log"]
        after = [line["text"] for line in everything if int(line["id"]) > int(middle)]
        assert resumed[: len(after)] == after
        assert all(e["id"] == e["data"]["id"] for e in events if e.get("event") == "log")
    finally:
        server.stop()
