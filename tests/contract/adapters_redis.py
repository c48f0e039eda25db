"""The Redis live state in the contract suite, against a real Valkey 9 started for the tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from skalds.ports.live_state import LiveState
from tests.servers.valkey import valkey


@contextlib.contextmanager
def _redis(unique: str) -> Iterator[LiveState]:
    import redis

    from skalds.backends.redis import RedisLiveState, RedisSettings

    server = valkey()
    live = RedisLiveState(RedisSettings(host=server.host, port=server.port, key_prefix=unique))
    try:
        yield live
    finally:
        live.close()
        # Only this test's keys: the server is shared by the whole test run. (Node and task
        # ids in the suite start with the test's unique name, so the seed keys do too.)
        with redis.Redis(host=server.host, port=server.port) as client:
            keys = [*client.scan_iter(f"{unique}:*"), *client.scan_iter(f"task:{unique}*")]
            if keys:
                client.delete(*keys)


LIVE_STATES = {"redis": _redis}
