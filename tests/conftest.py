"""Shared fixtures: an in-process standalone Skalds on a temporary data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from skalds.settings import load_settings
from skalds.system import SkaldsSystem
from skalds.testing import compose_config

PROBE = str(Path(__file__).with_name("probe_workers.py").resolve()) + ":ProbeWorker"
FAULT = str(Path(__file__).parent.joinpath("faults", "workers.py").resolve()) + ":FaultWorker"

#: Fast timings so failure paths run in a test's lifetime.
FAST = [
    "node.id=test-node",
    "node.heartbeat_interval_s=0.2",
    "node.heartbeat_timeout_s=3",
    "node.cancel_grace_s=0.5",
    "node.terminate_grace_s=0.5",
    "node.lease_ttl_s=2",
    "monitor.check_interval_s=0.2",
    "node.fence_check_interval_s=0.5",
    "log_level=DEBUG",
]


def write_pool(path: Path, tasks: dict | None = None, **extra: object) -> Path:
    """Write a worker pool file with the demo classes plus ``ProbeWorker``."""
    pool = {
        "name": "testpool",
        "classes": {
            "MyWorker": "skalds.workers.demo:MyWorker",
            "CountdownWorker": "skalds.workers.demo:CountdownWorker",
            "AlwaysFailWorker": "skalds.workers.demo:AlwaysFailWorker",
            "ProbeWorker": PROBE,
            "FaultWorker": FAULT,
        },
        "tasks": tasks or {},
        **extra,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(pool, sort_keys=False))
    tmp.replace(path)  # atomic, so a watcher never sees half a file unless a test wants it
    return path


def make_system(data_dir: Path, *overrides: str, pool: Path | None = None) -> SkaldsSystem:
    """A standalone system on the pool file ``pool`` (default: one with no tasks), not started."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if pool is None:
        pool = write_pool(data_dir / "pool.yaml")
    settings = load_settings(compose_config([*FAST, f"reload.pool_file={pool}", *overrides], data_dir=data_dir))
    return SkaldsSystem(settings)


@pytest.fixture
def pool_path() -> Path | None:
    """The pool file the ``system`` fixture runs; None for one without declared tasks.
    Override it in a test module to run another."""
    return None


@pytest.fixture
def system(tmp_path: Path, pool_path: Path | None) -> Iterator[SkaldsSystem]:
    """A running standalone Skalds (controller + node) on local backends."""
    s = make_system(tmp_path / "data", pool=pool_path).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def api(system: SkaldsSystem) -> TestClient:
    """An HTTP client of the system's REST API (in-process ASGI)."""
    return TestClient(system.app, base_url="http://localhost")


@pytest.fixture
def journal(tmp_path: Path) -> str:
    """A journal file for a ProbeWorker."""
    return str(tmp_path / "journal.jsonl")
