"""The composition root of the backends: the only place that picks adapters, from the
``backend:`` config group."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from skalds.config import settings_from
from skalds.errors import ConfigError
from skalds.ports.event_bus import EventBus
from skalds.ports.live_state import LiveState
from skalds.ports.task_store import TaskStore


class _Releasable(Protocol):
    def release(self) -> None: ...


@dataclass
class Backends:
    """One adapter per port, and the data directory's lock for the embedded ones."""

    kind: str
    bus: EventBus
    store: TaskStore
    live: LiveState
    lock: _Releasable | None = None

    def close(self) -> None:
        """Close all three and release the lock; safe to call twice."""
        self.bus.close()
        self.live.close()
        self.store.close()
        if self.lock is not None:
            self.lock.release()


def build_backends(config: dict[str, Any]) -> Backends:
    """Build the adapters named by ``config["kind"]``.

    Raises:
        ConfigError: unknown kind or missing keys (the message names them).
        BackendUnavailable: a server cannot be reached.
    """
    kind = config.get("kind")
    if kind == "local":
        from skalds.backends.local import LocalEventBus, MemoryLiveState, SqliteTaskStore
        from skalds.backends.local.lock import DataDirLock

        path = config.get("sqlite_path")
        if not path:
            raise ConfigError("backend.sqlite_path: missing (conf/backend/local.yaml)", key="backend.sqlite_path")
        # One process per data directory, before anything in it is read or written.
        lock = DataDirLock(Path(path).parent).acquire()
        try:
            store = SqliteTaskStore(Path(path))
        except BaseException:
            lock.release()
            raise
        return Backends("local", LocalEventBus(), store, MemoryLiveState(), lock)
    if kind == "distributed":
        return _distributed(config)
    raise ConfigError(f"backend.kind: unknown backend {kind!r}; known: local, distributed", key="backend.kind")


_EMPTY_IS_NONE = {"username", "password", "sasl_mechanism", "ssl_ca_location"}


def _settings(config: dict[str, Any], section: str, cls: type) -> Any:
    values = config.get(section)
    if not isinstance(values, dict):
        raise ConfigError(f"backend.{section}: missing (conf/backend/distributed.yaml)", key=f"backend.{section}")
    # An empty variable in .env (KAFKA_PASSWORD=) means "not set", not "the empty string".
    cleaned = {k: (None if v == "" and k in _EMPTY_IS_NONE else v) for k, v in values.items()}
    return settings_from(cls, cleaned, f"backend.{section}", "conf/backend/distributed.yaml")


def _distributed(config: dict[str, Any]) -> Backends:
    try:
        from skalds.backends.kafka import KafkaEventBus, KafkaSettings
        from skalds.backends.mongo import MongoSettings, MongoTaskStore
        from skalds.backends.redis import RedisLiveState, RedisSettings
    except ImportError as exc:
        raise ConfigError(
            f"backend=distributed needs the client libraries: pip install -e '.[distributed]' ({exc})",
            key="backend.kind",
        ) from exc
    kafka = _settings(config, "kafka", KafkaSettings)
    redis = _settings(config, "redis", RedisSettings)
    mongo = _settings(config, "mongo", MongoSettings)
    store = MongoTaskStore(mongo)
    try:
        live = RedisLiveState(redis)
    except BaseException:
        store.close()
        raise
    return Backends("distributed", KafkaEventBus(kafka), store, live)
