"""The composition root of the backends: the only place that picks adapters, from the
``backend:`` config group."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skalds.config import settings_from
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
    live = RedisLiveState(redis)
    return Backends("distributed", KafkaEventBus(kafka), store, live)
