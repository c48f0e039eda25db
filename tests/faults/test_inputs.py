"""Inputs that used to leave a task stuck or make the API answer 500: refused at the door with
the field at fault, or carried to the worker whatever their size; judged like any fault."""

from __future__ import annotations

import json
import time

import pytest

from skalds.testing import wait_until
from tests.faults.conftest import Watch, assert_truthful
from tests.procs import SkaldsProcess

pytestmark = pytest.mark.faults


def raw(watch: Watch, method: str, url: str, text: str) -> tuple[int, dict]:
    r = watch.api.request(method, url, content=text.encode(), headers={"content-type": "application/json"})
    return r.status_code, r.json()


def test_attachments_of_any_accepted_size_reach_their_worker_and_larger_ones_change_nothing(
    standalone: SkaldsProcess, watch: Watch
) -> None:
    # Observed before: attachments above ~208 KB were accepted (201), the launcher's send
    # failed with EMSGSIZE and the task stayed Assigning forever, holding a slot.
    started = time.monotonic()
    watch.create("big", padding="x" * 300_000)
    watch.running()
    r = watch.api.patch(
        "/api/tasks/big/attachments", json={"attachments": {"label": "bigger", "padding": "y" * 900_000}}
    )
    assert r.status_code == 200, r.text[:300]
    wait_until(lambda: watch.api.get("/api/tasks/big").json()["appliedVersion"] == 1, message="applied")
    assert [u["size"] for u in watch.journal.updates if u["e"] == "update_begin"] == [900_000]
    too_big = {"attachments": {"padding": "z" * 1_100_000}}
    r = watch.api.patch("/api/tasks/big/attachments", json=too_big)
    assert r.status_code == 413 and r.json()["error"] == "PayloadTooLarge", r.text[:300]
    body = {"id": "huge", "className": "FaultWorker", "attachments": {"journal": "j", "padding": "z" * 1_100_000}}
    assert watch.api.post("/api/tasks", json=body).status_code == 413
    assert watch.api.get("/api/tasks/huge").status_code == 404, "nothing half-stored"
    assert watch.api.get("/api/tasks/big").json()["desiredVersion"] == 1
    report = watch.report("attachments of 300 kB / 900 kB / 1.1 MB", (started, time.monotonic()), settle_s=0.5)
    assert_truthful(report)


def test_text_and_numbers_no_store_can_hold_are_refused_naming_the_field(
    standalone: SkaldsProcess, watch: Watch
) -> None:
    # Observed before: a lone surrogate was stored and answered 500, and from then on every
    # read of that task and every list page containing it answered 500; 2**63 answered 500.
    started = time.monotonic()
    watch.create("ok")
    watch.running()
    journal = json.dumps(str(watch.journal_path))
    cases = [
        (
            f'{{"id": "s1", "className": "FaultWorker", "name": "\\ud800", "attachments": {{"journal": {journal}}}}}',
            "name",
        ),
        (
            f'{{"id": "s2", "className": "FaultWorker", "attachments": {{"journal": {journal}, "label": "a\\udfff"}}}}',
            "attachments.label",
        ),
        (
            f'{{"id": "s3", "className": "FaultWorker", "attachments": {{"journal": {journal}, "count": {2**63}}}}}',
            "attachments.count",
        ),
        (
            f'{{"id": "s4", "className": "FaultWorker", "priority": {2**64}, "attachments": {{"journal": {journal}}}}}',
            "priority",
        ),
        (f'{{"id": "..", "className": "FaultWorker", "attachments": {{"journal": {journal}}}}}', "id"),
    ]
    for text, field in cases:
        code, body = raw(watch, "POST", "/api/tasks", text)
        assert code == 422, (field, body)
        assert field in [e["field"] for e in body["errors"]], (field, body)
    code, body = raw(watch, "PATCH", "/api/tasks/ok/attachments", '{"attachments": {"label": "\\ud800"}}')
    assert code == 422 and body["errors"][0]["field"] == "attachments.label", body
    assert watch.api.get("/api/tasks", params={"offset": 2**63}).status_code == 422
    listing = watch.api.get("/api/tasks")
    assert listing.status_code == 200 and [t["id"] for t in listing.json()["items"]] == ["ok"]
    assert watch.api.get("/api/tasks/ok").json()["desiredVersion"] == 0
    report = watch.report("lone surrogates, 2**63, id '..'", (started, time.monotonic()), settle_s=0.5)
    assert_truthful(report)


def test_a_typo_in_an_attachment_key_is_refused_naming_the_key(standalone: SkaldsProcess, watch: Watch) -> None:
    # Observed before: "fixframe" for "fixFrame" was dropped silently: 201, then PATCH 200 with
    # desiredVersion +1 and the handler called with the old values.
    started = time.monotonic()
    body = {"className": "MyWorker", "attachments": {"rtspUrl": "rtsp://x", "fixframe": 3}}
    r = watch.api.post("/api/tasks", json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "fixframe", r.text
    assert "fixFrame" in r.json()["errors"][0]["message"]
    watch.create("typo")
    watch.running()
    r = watch.api.patch("/api/tasks/typo/attachments", json={"attachments": {"labl": "x"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "labl", r.text
    assert watch.api.get("/api/tasks/typo").json()["desiredVersion"] == 0
    assert watch.journal.updates == []
    report = watch.report("typo in an attachment key", (started, time.monotonic()), settle_s=0.5)
    assert_truthful(report)
