"""Embedded backends: in-process bus, SQLite store, in-memory live state."""

from skalds.backends.local.event_bus import LocalEventBus
from skalds.backends.local.live_state import MemoryLiveState
from skalds.backends.local.task_store import SqliteTaskStore

__all__ = ["LocalEventBus", "MemoryLiveState", "SqliteTaskStore"]
