"""Real servers for tests (Kafka-protocol broker, Valkey, MongoDB-wire), started on demand.

Each module starts its server once per test process on a free loopback port and stops it at
exit. When a server cannot start, tests that need it skip locally and fail when CI=true.
"""

from __future__ import annotations

import os
import socket

import pytest


def in_ci() -> bool:
    """True when running under CI (CI=true): missing servers are failures, not skips."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip the current test (or fail it under CI) because a server is missing."""
    if in_ci():
        pytest.fail(f"test server unavailable under CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_env() -> dict[str, str]:
    """Environment variables pointing Skalds (conf/backend/distributed.yaml) at the shared
    test servers, with topic, key and database names no other test uses. Starts the servers
    on first use; skips (fails under CI) when one cannot start."""
    import uuid

    from tests.servers import mongo, tansu, valkey

    unique = f"d{uuid.uuid4().hex[:8]}"
    kafka_host, kafka_port = tansu.bootstrap_servers().split(":")
    return {
        "KAFKA_HOST": kafka_host,
        "KAFKA_PORT": kafka_port,
        "KAFKA_TOPIC_PREFIX": f"{unique}.",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(valkey.valkey().port),
        "REDIS_KEY_PREFIX": unique,
        "MONGO_HOST": mongo.mongo().uri,
        "DB_NAME": unique,
    }
