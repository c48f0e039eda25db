"""Seed path ``skalds.config.systemconfig``: ``SystemConfig``, the seed's environment variables.

``SystemConfig.REDIS_HOST`` (or ``SystemConfig().REDIS_HOST``) is the variable from the
environment or ``.env``, converted to the type of the seed's default, else that default. Unlike
the seed, nothing is frozen at import: each access reads the environment again. Assigning an
attribute (as the seed's ``Skald.__init__`` did) pins that value for the process.

Skalds itself is configured by ``conf/`` (which reads the same variables through
``${oc.env:...}``) and by :class:`~skalds.config.skald_config.SkaldConfig`; this class is for
scripts written against the seed.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from skalds.config.env import environment
from skalds.errors import ConfigError

#: Every variable the seed read, with its default (whose type is the variable's type).
SEED_DEFAULTS: dict[str, Any] = {
    "SKALD_ENV": "DEV",
    "SKALD_MODE": "node",
    "LOG_LEVEL": "INFO",
    "LOG_PATH": "logs",
    "LOG_RETENTION": "3 days",
    "LOG_ROTATION_MB": "10",
    "LOG_SPLIT_WITH_WORKER_ID": False,
    "YAML_FILE": "",
    "REDIS_HOST": "localhost",
    "REDIS_PORT": 6379,
    "REDIS_PASSWORD": "",
    "REDIS_SYNC_PERIOD": 3,
    "REDIS_KEY_TTL": 3600,
    "KAFKA_HOST": "localhost",
    "KAFKA_PORT": 9092,
    "KAFKA_USERNAME": "",
    "KAFKA_PASSWORD": "",
    "KAFKA_TOPIC_PARTITIONS": 6,
    "KAFKA_REPLICATION_FACTOR": 3,
    "MONGO_HOST": "mongodb://root:root@localhost:27017/",
    "DB_NAME": "skalds",
    "TASK_WORKER_RETRY": -1,
    "SYSTEM_CONTROLLER_MODE": "CONTROLLER",
    "SYSTEM_CONTROLLER_HOST": "0.0.0.0",
    "SYSTEM_CONTROLLER_PORT": 8000,
    "MONITOR_SKALD_INTERVAL": 5,
    "MONITOR_TASK_INTERVAL": 3,
    "MONITOR_HEARTBEAT_TIMEOUT": 5,
    "DISPATCHER_INTERVAL": 5,
    "DISPATCHER_STRATEGY": "LEAST_TASKS",
}


@functools.cache
def process_skald_id() -> str:
    """This process's Skald id when ``SKALD_ID`` is not set: ``skalds-`` and five hex digits,
    drawn once per process (as the seed drew it once, at import)."""
    return f"skalds-{uuid.uuid4().hex[:5]}"


def convert(name: str, value: str, default: Any) -> Any:
    """``value`` of variable ``name`` as the type of ``default`` (bool: true/1/yes/y).

    Raises:
        ConfigError: not a number where one is expected; the message names the variable.
    """
    if isinstance(default, bool):
        return value.strip().lower() in ("true", "1", "yes", "y")
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {value!r} (environment or .env)", key=name) from None
    return value


def seed_variable(name: str) -> Any:
    """The seed variable ``name`` now: environment or ``.env``, else the seed's default.

    Raises:
        KeyError: the seed had no such variable.
        ConfigError: the value does not convert (see :func:`convert`).
    """
    value = environment().get(name)
    if name == "SKALD_ID":
        return value or process_skald_id()
    default = SEED_DEFAULTS[name]
    return default if value is None else convert(name, value, default)


class _ReadsEnvironment(type):
    def __getattr__(cls, name: str) -> Any:
        try:
            return seed_variable(name)
        except KeyError:
            raise AttributeError(f"SystemConfig has no variable {name!r}") from None


class SystemConfig(metaclass=_ReadsEnvironment):
    """The seed's settings by their environment variable names (``SystemConfig.KAFKA_HOST``),
    read when accessed. Works on the class (as the seed's code used it) and on instances."""

    def __getattr__(self, name: str) -> Any:
        return getattr(type(self), name)
