"""Who may use the API: operator and viewer keys on every mutating endpoint, and the Origin and
Host checks that always apply."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from skalds.system import SkaldsSystem
from tests.conftest import make_system

pytestmark = pytest.mark.integration

OPERATOR, VIEWER = "op-secret-1", "view-secret-2"


@pytest.fixture
def keyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SkaldsSystem]:
    monkeypatch.setenv("SKALDS_API_KEYS", f"{OPERATOR},op-secret-3")
    monkeypatch.setenv("SKALDS_VIEWER_KEYS", VIEWER)
    system = make_system(tmp_path / "data").start()
    try:
        yield system
    finally:
        system.stop()


def mutations(app) -> list[tuple[str, str]]:
    """Every (method, path) that changes something, with ids filled in."""
    out = []
    for path, operations in app.openapi()["paths"].items():
        for method in sorted(m.upper() for m in operations if m.upper() in ("POST", "PUT", "PATCH", "DELETE")):
            out.append((method, path.replace("{task_id}", "x").replace("{skald_id}", "x")))
    return out


def test_every_change_needs_an_operator_key_and_reads_a_viewer_key(keyed: SkaldsSystem) -> None:
    api = TestClient(keyed.app, base_url="http://localhost")
    routes = mutations(keyed.app)
    assert len(routes) >= 11, routes
    for method, path in routes:
        assert api.request(method, path, json={}).status_code == 401, (method, path)
        viewer = api.request(method, path, json={}, headers={"Authorization": f"Bearer {VIEWER}"})
        assert viewer.status_code == 403 and viewer.json()["error"] == "Forbidden", (method, path)
        wrong = api.request(method, path, json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        operator = api.request(method, path, json={}, headers={"Authorization": f"Bearer {OPERATOR}"})
        assert operator.status_code not in (401, 403), (method, path, operator.text)
    for path in ("/api/tasks", "/api/skalds", "/metrics", "/api/system/config"):
        assert api.get(path).status_code == 401
        assert api.get(path, headers={"Authorization": f"Bearer {VIEWER}"}).status_code == 200, path
    assert api.get("/api/system/health").status_code == 200, "a load balancer's probe needs no key"
    assert api.get("/api/openapi.json").status_code == 200


def test_the_keys_appear_in_no_log_and_no_config_dump(
    keyed: SkaldsSystem, caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = TestClient(keyed.app, base_url="http://localhost")
    with caplog.at_level(logging.DEBUG):
        api.post("/api/tasks", json={"className": "MyWorker"}, headers={"Authorization": f"Bearer {OPERATOR}"})
        api.get("/api/tasks", headers={"Authorization": "Bearer wrong-key"})
    assert OPERATOR not in caplog.text and "wrong-key" not in caplog.text
    dump = subprocess.run([sys.executable, "-m", "skalds", "--cfg", "job"], capture_output=True, text=True, timeout=60)
    assert OPERATOR not in dump.stdout and "SKALDS_API_KEYS" in dump.stdout
    config = api.get("/api/system/config", headers={"Authorization": f"Bearer {VIEWER}"}).text
    assert OPERATOR not in config and VIEWER not in config


def test_changes_from_another_site_are_refused_whether_keys_are_set_or_not(api: TestClient) -> None:
    for method, path in mutations(api.app):
        cross = api.request(method, path, json={}, headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403 and cross.json()["error"] == "ForbiddenOrigin", (method, path)
        same = api.request(method, path, json={}, headers={"Origin": "http://localhost"})
        assert same.status_code != 403, (method, path)
        plain = api.request(method, path, json={})  # curl, scripts: no Origin at all
        assert plain.status_code != 403, (method, path)
    assert api.get("/api/tasks", headers={"Origin": "https://evil.example"}).status_code == 200, "reads are not changes"


def test_a_host_that_is_not_this_controller_is_refused(api: TestClient) -> None:
    for host in ("evil.example", "rebind.attacker.test:8000"):
        r = api.get("/api/tasks", headers={"Host": host})
        assert r.status_code == 421 and r.json()["error"] == "MisdirectedRequest"
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "127.0.0.5"):
        assert api.get("/api/tasks", headers={"Host": host}).status_code == 200, host
