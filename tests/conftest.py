"""Shared fixtures: an in-process standalone Skalds on a temporary data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from skalds.settings import load_settings
from skalds.system import SkaldsSystem
from skalds.testing import compose_config
from skalds.worker.registry import WorkerCatalog

PROBE = str(Path(__file__).with_name("probe_workers.py").resolve()) + ":ProbeWorker"

#: Fast timings so failure paths run in a test's lifetime.
FAST = [
    "node.id=test-node",
    "node.heartbeat_interval_s=0.2",
    "node.heartbeat_timeout_s=3",
    "node.cancel_grace_s=0.5",
    "node.terminate_grace_s=0.5",
    "node.lease_ttl_s=2",
    "monitor.check_interval_s=0.2",
    "log_level=DEBUG",
]


def make_system(data_dir: Path, *overrides: str) -> SkaldsSystem:
    """A standalone system knowing the demo pool plus ``ProbeWorker``, not started."""
    settings = load_settings(compose_config([*FAST, *overrides], data_dir=data_dir))
    catalog = WorkerCatalog({**settings.pool_classes, "ProbeWorker": PROBE})
    return SkaldsSystem(settings, catalog)


@pytest.fixture
def system(tmp_path: Path) -> Iterator[SkaldsSystem]:
    """A running standalone Skalds (controller + node) on local backends."""
    s = make_system(tmp_path / "data").start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def api(system: SkaldsSystem) -> TestClient:
    """An HTTP client of the system's REST API (in-process ASGI)."""
    return TestClient(system.app)


@pytest.fixture
def journal(tmp_path: Path) -> str:
    """A journal file for a ProbeWorker."""
    return str(tmp_path / "journal.jsonl")
