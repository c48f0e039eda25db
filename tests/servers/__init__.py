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
