"""Fixtures that yield each port's adapters in turn: one contract suite, every adapter.

Adapters register in ``tests/contract/adapters_*.py`` modules: each may define ``STORES``,
``BUSES`` and ``LIVE_STATES``, dicts of name -> factory. A factory is a context manager
function ``factory(unique: str) -> Iterator[adapter]``; one that needs a server gets it from
``tests/servers/`` and skips when it cannot start locally (fails when CI=true).
"""

from __future__ import annotations

import contextlib
import importlib
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from skalds.backends.local import LocalEventBus, MemoryLiveState, SqliteTaskStore
from skalds.ports.event_bus import EventBus
from skalds.ports.live_state import LiveState
from skalds.ports.task_store import TaskStore

Factory = Callable[[str], contextlib.AbstractContextManager[Any]]


@contextlib.contextmanager
def _sqlite(unique: str) -> Iterator[TaskStore]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteTaskStore(Path(tmp) / "tasks.db")
        yield store
        store.close()


@contextlib.contextmanager
def _local_bus(unique: str) -> Iterator[EventBus]:
    bus = LocalEventBus()
    yield bus
    bus.close()


@contextlib.contextmanager
def _memory(unique: str) -> Iterator[LiveState]:
    yield MemoryLiveState()


STORES: dict[str, Factory] = {"sqlite": _sqlite}
BUSES: dict[str, Factory] = {"local": _local_bus}
LIVE_STATES: dict[str, Factory] = {"memory": _memory}

for _path in sorted(Path(__file__).parent.glob("adapters_*.py")):
    _module = importlib.import_module(f"tests.contract.{_path.stem}")
    STORES.update(getattr(_module, "STORES", {}))
    BUSES.update(getattr(_module, "BUSES", {}))
    LIVE_STATES.update(getattr(_module, "LIVE_STATES", {}))


@pytest.fixture
def unique() -> str:
    """A name no other test uses (topics, key prefixes, collections)."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=sorted(STORES))
def task_store(request: pytest.FixtureRequest, unique: str) -> Iterator[TaskStore]:
    with STORES[request.param](unique) as store:
        yield store


@pytest.fixture(params=sorted(BUSES))
def event_bus(request: pytest.FixtureRequest, unique: str) -> Iterator[EventBus]:
    with BUSES[request.param](unique) as bus:
        yield bus


@pytest.fixture(params=sorted(LIVE_STATES))
def live_state(request: pytest.FixtureRequest, unique: str) -> Iterator[LiveState]:
    with LIVE_STATES[request.param](unique) as live:
        yield live
