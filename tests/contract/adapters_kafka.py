"""The Kafka event bus in the contract suite, against a real tansu broker."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tests.servers import unavailable


@contextlib.contextmanager
def kafka_bus(unique: str, **overrides: Any) -> Iterator[Any]:
    """A ``KafkaEventBus`` on the test broker whose topics and groups start with ``unique``.

    Short session timeout and fetch wait: tansu makes a group join take half the session
    timeout, and answers a fetch only when ``fetch.wait.max.ms`` is over.
    """
    try:
        from skalds.backends.kafka import KafkaEventBus, KafkaSettings
    except ImportError as exc:
        unavailable(f"confluent-kafka not installed: {exc}")
    from tests.servers import tansu

    settings = KafkaSettings(
        bootstrap_servers=tansu.bootstrap_servers(),
        topic_prefix=f"{unique}.",
        session_timeout_ms=2000,
        fetch_wait_max_ms=10,
        delivery_timeout_s=30.0,
        client_id=f"skalds-{unique}",
    )
    if overrides:
        import dataclasses

        settings = dataclasses.replace(settings, **overrides)
    bus = KafkaEventBus(settings)
    try:
        yield bus
    finally:
        bus.close()


BUSES = {"kafka": kafka_bus}
