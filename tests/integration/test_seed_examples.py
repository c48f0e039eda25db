"""The seed README's examples (examples/) run as a user would run them, on embedded backends."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from skalds.testing import wait_until
from tests.servers import free_port

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_seed_node_app_runs_a_registered_worker_from_its_script(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "node.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "node_app.py"), str(port)],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return http.get("/api/system/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout_s=60, interval_s=0.1, message="node app up")
        assert [w["className"] for w in http.get("/api/workers").json()] == ["MyWorker"]
        body = {"id": "seed-1", "className": "MyWorker", "attachments": {"rtspUrl": "rtsp://cam/1", "fixFrame": 30}}
        assert http.post("/api/tasks", json=body).status_code == 201
        wait_until(
            lambda: http.get("/api/tasks/seed-1").json()["lifecycleStatus"] == "Running",
            timeout_s=20,
            message="running",
        )
        http.patch("/api/tasks/seed-1/attachments", json={"attachments": {"fixFrame": 31}})
        wait_until(lambda: "Updating event for MyWorker" in log.read_text(), timeout_s=10, message="update handled")
        assert "[seed-1]" in log.read_text(), "worker log lines carry the task id"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
