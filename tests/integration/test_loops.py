"""The background loops: a backend that is away is waited for quietly; anything else is a bug,
logged with its traceback and counted, and never resets what the loop knows."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from skalds.backends.local import LocalEventBus, MemoryLiveState, SqliteTaskStore
from skalds.controller.dispatcher import Dispatcher
from skalds.controller.monitor import Monitor, MonitorSettings
from skalds.core.dispatch import build_policy
from skalds.errors import BackendUnavailable
from skalds.node.reconcile import Loop
from skalds.testing import wait_until


class BuggyStore(SqliteTaskStore):
    """A store whose count has a bug (it raises something no backend outage would)."""

    failure: Exception = ValueError("a bug in the count")

    def count_active_by_executor(self) -> dict[str, int]:
        raise self.failure


@pytest.fixture
def monitor(tmp_path: Path) -> Monitor:
    bus, live = LocalEventBus(), MemoryLiveState()
    store = BuggyStore(tmp_path / "tasks.db")
    dispatcher = Dispatcher(build_policy("least_loaded"), bus, store, live)
    return Monitor(MonitorSettings(check_interval_s=0.01, lease_ttl_s=0.01), dispatcher, bus, store, live)


def test_a_bug_in_the_monitors_check_is_logged_with_its_traceback_and_counted(
    monitor: Monitor, caplog: pytest.LogCaptureFixture
) -> None:
    trusted_from = monitor._trust_from
    with caplog.at_level(logging.ERROR, logger="skalds.controller.monitor"):
        monitor.round()
        monitor.round()
    assert monitor.errors == 2
    assert all(r.exc_info and "a bug in the count" in str(r.exc_info[1]) for r in caplog.records)
    assert monitor._trust_from == trusted_from, "a bug does not re-grant leases (loss detection goes on)"


def test_an_unavailable_backend_makes_the_monitor_wait_quietly_and_regrant(
    monitor: Monitor, caplog: pytest.LogCaptureFixture
) -> None:
    BuggyStore.failure = BackendUnavailable("mongo away")
    try:
        with caplog.at_level(logging.WARNING, logger="skalds.controller.monitor"):
            for _ in range(5):
                monitor.round()
    finally:
        BuggyStore.failure = ValueError("a bug in the count")
    assert monitor.errors == 0
    assert len(caplog.records) == 1 and not caplog.records[0].exc_info


def test_a_node_loop_counts_bugs_and_keeps_running(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        if len(calls) % 2:
            raise KeyError("bug")
        raise BackendUnavailable("away")

    loop = Loop("test-loop", 0.01, step)
    with caplog.at_level(logging.WARNING):
        loop.start()
        wait_until(lambda: len(calls) >= 6, message="the loop kept going")
        loop.stop()
    assert loop.errors == len([c for i, c in enumerate(calls) if i % 2 == 0])
    bugs = [r for r in caplog.records if r.exc_info]
    assert bugs and all("bug" in str(r.exc_info[1]) for r in bugs)
