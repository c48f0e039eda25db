"""The package as users get it: a wheel, installed into a fresh venv, run from another directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from skalds.testing import wait_until
from tests.servers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(ROOT)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("skalds-*.whl")
    return built


def test_the_wheel_installs_only_the_skalds_package_with_its_config_and_schemas(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"skalds"}
    for needed in ("skalds/conf/config.yaml", "skalds/conf/workers/demo.yaml", "skalds/conf/mode/node.yaml"):
        assert needed in names
    assert "skalds/schemas/worker_pool.schema.json" in names and "skalds/workers/demo.py" in names
    for needed in ("index.html", "style.css", "js/main.js", "js/pages/tasks.js"):
        assert f"skalds/controller/static/dashboard/{needed}" in names
    version = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert "Version: 0." in zipfile.ZipFile(wheel).read(version).decode()


def test_the_installed_wheel_runs_a_task_from_any_directory(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)]
    subprocess.run(pip, check=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    version = subprocess.run([str(venv / "bin" / "skalds"), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("skalds 0."), version
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.Popen(
        [str(venv / "bin" / "skalds"), f"controller.port={port}"],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

        def up() -> bool:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                return api.get("/api/system/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout_s=60, interval_s=0.2, message="installed skalds up")
        body = {"id": "w1", "className": "MyWorker", "attachments": {"rtspUrl": "rtsp://x", "fixFrame": 1}}
        assert api.post("/api/tasks", json=body).status_code == 201
        wait_until(lambda: api.get("/api/tasks/w1").json()["lifecycleStatus"] == "Running", message="running")
        assert api.get("/api/tasks/demo-camera").json()["className"] == "MyWorker", "the demo pool's declared task"
        assert api.post("/api/tasks/w1/cancel").json()["lifecycleStatus"] == "Cancelled"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    assert (elsewhere / ".skalds" / "tasks.db").is_file()
