"""The dashboard as an operator uses it, on a standalone Skalds: create a task from the form
generated from its class's schema, watch it run, pause, resume, update and cancel it, find it
in the table, see the node and the watched pool file. What the page shows is checked against
what the worker itself recorded (its journal), not only against the API."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from skalds.testing import wait_until
from tests.browser.conftest import ROOT, TIMEOUT_MS, screenshot
from tests.probe_workers import read
from tests.procs import SkaldsProcess

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def events(journal: Path, name: str) -> list[dict]:
    return [e for e in read(str(journal)) if e["event"] == name]


def create(api: Any, task_id: str, class_name: str, attachments: dict[str, Any]) -> None:
    """Create a task through the REST API (not through the page)."""
    r = api.post("/api/tasks", json={"id": task_id, "className": class_name, "attachments": attachments})
    assert r.status_code == 201, r.text


def mark_document(page: Any) -> None:
    """Tag the loaded document; the tag survives everything except a reload."""
    page.evaluate("window.__sameDocument = true")


def same_document(page: Any) -> bool:
    return bool(page.evaluate("window.__sameDocument === true"))


def test_a_task_created_from_the_generated_form_is_driven_through_its_life(
    page: Any, skalds: SkaldsProcess, tmp_path: Path
) -> None:
    journal = tmp_path / "probe.jsonl"
    page.goto(f"http://127.0.0.1:{skalds.port}/#/tasks")
    expect(page.locator(".tasks-page")).to_have_attribute("data-loaded", "true")
    mark_document(page)

    # the form is generated from ProbeWorker's JSON Schema: required journal, defaults filled
    page.click("#new-task")
    page.select_option("#new-task-class", "ProbeWorker")
    attachments = page.locator('form[data-form="create-task"] [data-form="attachments"]')
    expect(attachments.locator('[data-path="journal"] .required')).to_be_visible()
    expect(attachments.locator('[data-path="level"] input')).to_have_value("1")
    page.locator('form[data-form="create-task"] [data-form="meta"] [data-path="id"] input').fill("ui-probe")
    page.get_by_role("button", name="Create task").click()
    expect(attachments.locator('[data-path="journal"] .field-error')).to_have_text("required")
    attachments.locator('[data-path="journal"] input').fill(str(journal))
    attachments.locator('[data-path="label"] input').fill("from the form")
    screenshot(page, "task-create-form")
    page.get_by_role("button", name="Create task").click()

    # the detail page follows the task to Running through the event stream
    detail = page.locator('.task-page[data-task="ui-probe"]')
    expect(detail).to_have_attribute("data-state", "Running", timeout=TIMEOUT_MS)
    wait_until(lambda: events(journal, "main"), timeout_s=10, message="the worker runs")
    assert read(str(journal))[0]["level"] == 1  # the schema's default reached the worker
    expect(detail.locator('[data-fact="heartbeat"]')).not_to_have_text("\u2013")  # the dash of "no beat"
    expect(detail.locator('[data-fact="progress"]')).to_contain_text("looping")
    expect(detail.locator(".log-panel .log-lines")).to_be_visible()
    screenshot(page, "task-running")

    detail.locator('.page-head [data-action="pause"]').click()
    expect(detail).to_have_attribute("data-state", "Paused")
    wait_until(lambda: events(journal, "paused"), timeout_s=10, message="the worker paused")
    detail.locator('.page-head [data-action="resume"]').click()
    expect(detail).to_have_attribute("data-state", "Running")
    wait_until(lambda: events(journal, "resumed"), timeout_s=10, message="the worker resumed")

    # a value the model refuses is shown next to its field, and nothing is sent
    detail.locator('.page-head [data-action="edit"]').click()
    edit = page.locator('form[data-form="edit-attachments"]')
    edit.locator('[data-path="level"] input').fill("500")
    edit.get_by_role("button", name="Send update").click()
    error = edit.locator('[data-path="level"] .field-error')
    expect(error).to_contain_text("less than or equal to 100")
    screenshot(page, "task-edit-validation-error")
    assert not events(journal, "update")
    edit.locator('[data-path="level"] input').fill("42")
    edit.get_by_role("button", name="Send update").click()
    expect(edit).to_have_count(0)
    expect(detail.locator('[data-fact="version"]')).to_contain_text("applied 1")
    assert [e["level"] for e in events(journal, "update")] == [42]

    detail.locator('.page-head [data-action="cancel"]').click()
    page.get_by_role("button", name="Cancel task").click()
    expect(detail).to_have_attribute("data-state", "Cancelled")
    wait_until(lambda: events(journal, "release"), timeout_s=15, message="the worker was released")
    expect(detail.locator('.page-head [data-action="retry"]')).to_be_visible()
    screenshot(page, "task-cancelled")
    assert same_document(page), "the page reloaded"


def test_the_tasks_table_filters_searches_and_follows_changes_made_elsewhere(
    page: Any, skalds: SkaldsProcess, tmp_path: Path
) -> None:
    api = skalds.http
    for task_id in ("flt-alpha", "flt-beta"):
        create(api, task_id, "ProbeWorker", {"journal": str(tmp_path / f"{task_id}.jsonl")})
    wait_until(lambda: api.get("/api/tasks/flt-beta").json()["lifecycleStatus"] == "Running", timeout_s=15)
    api.post("/api/tasks/flt-beta/cancel")

    page.goto(f"http://127.0.0.1:{skalds.port}/#/tasks?q=flt-")
    table = page.locator("table.tasks tbody")
    expect(table.locator("tr[data-task]")).to_have_count(2)
    mark_document(page)

    page.select_option('select[name="state"]', "Cancelled")
    expect(table.locator("tr[data-task]")).to_have_count(1)
    expect(table.locator('tr[data-task="flt-beta"]')).to_have_attribute("data-state", "Cancelled")
    assert "state=Cancelled" in page.url

    page.select_option('select[name="state"]', "")
    page.fill('input[name="q"]', "flt-alpha")
    expect(table.locator("tr[data-task]")).to_have_count(1)
    row = table.locator('tr[data-task="flt-alpha"]')
    expect(row).to_have_attribute("data-state", "Running")

    # a change made through the API (not this page) shows up live
    api.post("/api/tasks/flt-alpha/pause")
    expect(row).to_have_attribute("data-state", "Paused")
    expect(row.locator('[data-action="resume"]')).to_be_visible()
    screenshot(page, "tasks-filtered")
    api.post("/api/tasks/flt-alpha/cancel")
    expect(row).to_have_attribute("data-state", "Cancelled")
    assert same_document(page), "the page reloaded"


def test_the_task_page_shows_the_state_history_and_follows_the_worker_log(
    page: Any, skalds: SkaldsProcess, tmp_path: Path
) -> None:
    journal = tmp_path / "j.jsonl"
    create(skalds.http, "logged", "ProbeWorker", {"journal": str(journal), "mode": "chatty", "label": "hello"})
    wait_until(lambda: events(journal, "chatted"), message="the worker wrote its output")
    page.goto(f"http://127.0.0.1:{skalds.port}/#/tasks/logged")
    timeline = page.locator(".timeline li")
    expect(timeline.last).to_contain_text("Running")
    expect(page.locator(".timeline")).to_contain_text("by dispatcher")
    expect(page.locator(".timeline")).to_contain_text("by proc-node")
    log = page.locator(".log-lines")
    expect(log).to_contain_text("plain stdout hello")
    expect(log).to_contain_text("logged error hello")
    expect(log.locator(".log-line.level-error").first).to_be_visible()
    mark_document(page)
    # a line the worker writes now reaches the open page through the followed log
    r = skalds.http.patch("/api/tasks/logged/attachments", json={"attachments": {"label": "later"}})
    assert r.status_code == 200, r.text
    expect(log).to_contain_text("update applied: later")
    assert page.locator(".log-line", has_text="plain stdout hello").count() == 1, "no line shown twice"
    assert same_document(page)
    screenshot(page, "task-history-and-log")


def test_the_event_stream_reader_takes_chunks_cut_anywhere(page: Any, skalds: SkaldsProcess) -> None:
    page.goto(f"http://127.0.0.1:{skalds.port}/#/overview")
    stream = (
        'retry: 500\r\n: a comment\r\nid: 7\r\nevent: task.status\r\ndata: {"a":\r\ndata: 1}\r\n\r\ndata: plain\n\n'
    )
    parsed = page.evaluate(
        """async (text) => {
            const {SseParser} = await import('/dashboard/js/sse.js');
            const results = [];
            for (let cut = 0; cut <= text.length; cut++) {
                const parser = new SseParser();
                const events = [...parser.feed(text.slice(0, cut)), ...parser.feed(text.slice(cut))];
                results.push(JSON.stringify({events, retry: parser.retry}));
            }
            return [...new Set(results)];
        }""",
        stream,
    )
    assert len(parsed) == 1, parsed  # the same events wherever the text was cut
    assert json.loads(parsed[0]) == {
        "events": [
            {"id": "7", "event": "task.status", "data": '{"a":\n1}'},
            {"id": "7", "event": "message", "data": "plain"},
        ],
        "retry": 500,
    }


def test_the_page_follows_a_restarted_controller(page: Any, tmp_path: Path) -> None:
    skalds = SkaldsProcess(tmp_path, node_id="restarting")
    try:
        api = skalds.http
        create(api, "survivor", "ProbeWorker", {"journal": str(tmp_path / "s.jsonl")})
        page.goto(f"http://127.0.0.1:{skalds.port}/#/tasks?q=survivor")
        row = page.locator('tr[data-task="survivor"]')
        expect(row).to_have_attribute("data-state", "Running")
        mark_document(page)
        # Move the page's position in the stream far ahead of what the restarted controller
        # will number its events with (it counts from 1 again).
        for level in range(60):
            api.patch("/api/tasks/survivor/attachments", json={"attachments": {"level": level}})
        wait_until(lambda: api.get("/api/events/status").json()["lastEventId"] > 100, timeout_s=20)
        page.wait_for_timeout(500)

        skalds.stop()
        expect(page.locator("#live")).to_have_attribute("data-state", "retrying")
        skalds.start()
        expect(page.locator("#live")).to_have_attribute("data-state", "open", timeout=TIMEOUT_MS)
        wait_until(lambda: api.get("/api/tasks/survivor").json()["lifecycleStatus"] == "Running", timeout_s=20)
        api.post("/api/tasks/survivor/pause")
        expect(row).to_have_attribute("data-state", "Paused")
        assert same_document(page), "the page reloaded"
    finally:
        skalds.stop()


def test_the_nodes_page_shows_the_node_online_with_its_load(page: Any, skalds: SkaldsProcess) -> None:
    page.goto(f"http://127.0.0.1:{skalds.port}/#/nodes")
    row = page.locator('table.nodes tr[data-node="proc-node"]')
    expect(row).to_have_attribute("data-status", "online")
    expect(row.locator('[title*="ProbeWorker"]')).to_have_count(1)  # "+2 more", all on hover
    expect(row.locator(".load-text")).to_contain_text("/ 16")
    screenshot(page, "nodes")


def test_the_config_page_shows_each_watched_pool_file_and_its_last_reload(page: Any, skalds: SkaldsProcess) -> None:
    pool = str(skalds.cwd / "pool.yaml")
    page.goto(f"http://127.0.0.1:{skalds.port}/#/config")
    row = page.locator(f'tr[data-file="{pool}"]')
    expect(row).to_contain_text("proc-node")
    expect(row).to_contain_text("applied")
    screenshot(page, "config")


def test_the_dashboard_asks_for_an_api_key_and_sends_it_on_every_request(page: Any, tmp_path: Path) -> None:
    keyed = SkaldsProcess(tmp_path, env={"SKALDS_API_KEYS": "s3cret"})
    try:
        seen: list[str | None] = []
        page.on("request", lambda request: seen.append(request.headers.get("authorization")))
        page.goto(f"http://127.0.0.1:{keyed.port}/#/overview")
        dialog = page.locator("#key-dialog")
        expect(dialog).to_be_visible()
        dialog.locator('input[name="key"]').fill("wrong")
        dialog.get_by_role("button", name="Use key").click()
        expect(dialog).to_be_visible()  # the controller refused it: asked again
        dialog.locator('input[name="key"]').fill("s3cret")
        dialog.get_by_role("button", name="Use key").click()
        expect(page.locator(".overview")).to_have_attribute("data-loaded", "true")
        expect(page.locator("#live")).to_have_attribute("data-state", "open")
        assert page.evaluate("sessionStorage.getItem('skalds.apiKey')") == "s3cret"
        assert "Bearer s3cret" in seen
        expect(page.locator("#forget-key")).to_be_visible()
        assert keyed.http.get("/api/tasks").status_code == 401, "the controller itself demands the key"
    finally:
        keyed.stop()


def test_the_overview_counts_tasks_by_state_and_lists_failures_and_waiting_tasks(page: Any, tmp_path: Path) -> None:
    # A node of three slots, so two of the five long-running tasks wait for one.
    skalds = SkaldsProcess(tmp_path, "node.capacity=3", node_id="node-hall-1")
    try:
        api = skalds.http
        quick = [
            ("ingest-batch", "CountdownWorker", {"steps": 3, "stepS": 0.05}),
            ("bad-feed", "AlwaysFailWorker", {"reason": "feed unreachable: connection refused"}),
        ]
        lasting = [
            ("camera-entrance", "MyWorker", {"rtspUrl": "rtsp://cams.local/entrance", "fixFrame": 10}),
            ("camera-dock", "MyWorker", {"rtspUrl": "rtsp://cams.local/dock", "fixFrame": 25}),
            ("model-server", "ProbeWorker", {"journal": str(tmp_path / "m.jsonl"), "label": "serving"}),
            ("camera-yard", "MyWorker", {"rtspUrl": "rtsp://cams.local/yard", "fixFrame": 5}),
            ("camera-gate", "MyWorker", {"rtspUrl": "rtsp://cams.local/gate", "fixFrame": 5}),
        ]
        for task in quick:
            create(api, *task)
        wait_until(lambda: api.get("/api/tasks/ingest-batch").json()["lifecycleStatus"] == "Finished", timeout_s=20)
        wait_until(lambda: api.get("/api/tasks/bad-feed").json()["lifecycleStatus"] == "Failed", timeout_s=20)
        for task in lasting:
            create(api, *task)
        wait_until(lambda: api.get("/api/system/dashboard/summary").json()["runningTasks"] == 3, timeout_s=20)

        page.goto(f"http://127.0.0.1:{skalds.port}/")
        overview = page.locator(".overview")
        expect(overview).to_have_attribute("data-loaded", "true")
        summary = api.get("/api/system/dashboard/summary").json()
        expect(page.locator('[data-count="total"] .card-value')).to_have_text(str(summary["totalTasks"]))
        expect(page.locator('[data-count="Failed"] .card-value')).to_have_text("1")
        expect(page.locator('[data-count="Running"] .card-value')).to_have_text("3")
        expect(page.locator('[data-count="nodes-online"]')).to_have_text("1")
        expect(overview.locator('tr[data-task="bad-feed"]')).to_contain_text("feed unreachable")
        expect(overview.locator('tr[data-node="node-hall-1"]')).to_contain_text("3 / 3")
        expect(overview.locator('.panel tr[data-task="camera-yard"]')).to_be_visible()
        expect(overview.locator('.panel tr[data-task="camera-gate"]')).to_be_visible()
        # why each waits, as the dispatcher wrote it on the task
        yard, gate = (overview.locator(f'.panel tr[data-task="{t}"]') for t in ("camera-yard", "camera-gate"))
        expect(yard).to_contain_text("all 3 matching slots busy (position 1)")
        expect(gate).to_contain_text("all 3 matching slots busy (position 2)")

        # the counts move with the event stream (a paused task keeps its slot)
        api.post("/api/tasks/camera-dock/pause")
        expect(page.locator('[data-count="Running"] .card-value')).to_have_text("2")
        expect(page.locator('[data-count="Paused"] .card-value')).to_have_text("1")
        page.wait_for_timeout(1500)  # let the relative times settle for the picture
        page.set_viewport_size({"width": 1440, "height": 500})  # the picture ends with the content
        shot = screenshot(page, "overview")
        if os.environ.get("SKALDS_UPDATE_DOCS_SCREENSHOT"):
            shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")
    finally:
        skalds.stop()


def test_the_original_dashboard_path_opens_the_dashboard(page: Any, skalds: SkaldsProcess) -> None:
    page.goto(f"http://127.0.0.1:{skalds.port}/dashboard")
    expect(page.locator(".overview")).to_have_attribute("data-loaded", "true")
    page.click('.tabs a[data-page="tasks"]')
    expect(page.locator(".tasks-page")).to_have_attribute("data-loaded", "true")
