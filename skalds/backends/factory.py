"""The composition root of the backends: the only place that picks adapters, from the
``backend:`` config group."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skalds.errors import ConfigError
from skalds.ports.event_bus import EventBus
from skalds.ports.live_state import LiveState
from skalds.ports.task_store import TaskStore


@dataclass
class Backends:
    """One adapter per port."""

    kind: str
    bus: EventBus
    store: TaskStore
    live: LiveState

    def close(self) -> None:
        """Close all three; safe to call twice."""
        self.bus.close()
        self.live.close()
        self.store.close()


def build_backends(config: dict[str, Any]) -> Backends:
    """Build the adapters named by ``config["kind"]``.

    Raises:
        ConfigError: unknown kind or missing keys (the message names them).
        BackendUnavailable: a server cannot be reached.
    """
    kind = config.get("kind")
    if kind == "local":
        from skalds.backends.local import LocalEventBus, MemoryLiveState, SqliteTaskStore

        path = config.get("sqlite_path")
        if not path:
            raise ConfigError("backend.sqlite_path: missing (conf/backend/local.yaml)", key="backend.sqlite_path")
        return Backends("local", LocalEventBus(), SqliteTaskStore(Path(path)), MemoryLiveState())
    raise ConfigError(f"backend.kind: unknown backend {kind!r}; known: local", key="backend.kind")
