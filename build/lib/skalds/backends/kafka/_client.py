"""What every librdkafka client of the Kafka adapter shares: the common client config, and
logging that stays readable while a broker is down."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skalds.backends.kafka.event_bus import KafkaSettings


class Throttle:
    """Log a recurring message at most once per ``interval_s`` per key, and say how many
    were left out, so a broker outage yields a few lines rather than thousands."""

    def __init__(self, target: logging.Logger, interval_s: float = 10.0) -> None:
        self._target = target
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}  # key -> (last logged at, suppressed since)

    def log(self, level: int, key: str, msg: str, *args: Any) -> None:
        """Log ``msg % args`` unless ``key`` was logged less than ``interval_s`` ago."""
        now = time.monotonic()
        with self._lock:
            last_at, suppressed = self._last.get(key, (-1e9, 0))
            if now - last_at < self._interval_s:
                self._last[key] = (last_at, suppressed + 1)
                return
            self._last[key] = (now, 0)
        if suppressed:
            msg += " (%d similar suppressed)"
            args = (*args, suppressed)
        self._target.log(level, msg, *args)


class LibrdkafkaLog:
    """The ``logger`` object librdkafka's log lines go to: Python logging, throttled per
    facility, instead of raw lines on stderr."""

    def __init__(self) -> None:
        self._throttle = Throttle(logging.getLogger("skalds.backends.kafka.librdkafka"))

    def log(self, level: int, fmt: str, facility: str, name: str, text: str) -> None:
        """Called by confluent-kafka with ``("%s [%s] %s", facility, client name, text)``."""
        self._throttle.log(level, f"{name}:{facility}", fmt, facility, name, text)


def client_config(settings: KafkaSettings) -> dict[str, Any]:
    """The librdkafka config every client of the bus starts from (contains the password:
    never log it)."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": settings.client_id,
        "security.protocol": settings.security_protocol,
        # Topics are created by the bus with the configured partitions, never implicitly.
        "allow.auto.create.topics": False,
        # A broker that is down is retried with back-off instead of every few milliseconds.
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 2000,
        "logger": LibrdkafkaLog(),
    }
    if settings.sasl_mechanism:
        config["sasl.mechanism"] = settings.sasl_mechanism
    if settings.username is not None:
        config["sasl.username"] = settings.username
        config["sasl.password"] = settings.password
    if settings.ssl_ca_location:
        config["ssl.ca.location"] = settings.ssl_ca_location
    return config
