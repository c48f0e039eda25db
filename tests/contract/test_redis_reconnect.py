"""RedisLiveState against a Valkey of its own that the tests stop and restart: errors while the
server is down are BackendUnavailable, and the same adapter object works again after."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from skalds.backends.redis import RedisLiveState, RedisSettings
from skalds.core.records import Heartbeat, NodeInfo
from skalds.errors import BackendUnavailable, ConfigError
from tests.servers import free_port, unavailable
from tests.servers.valkey import ValkeyServer, start_valkey


@pytest.fixture
def own_valkey() -> Iterator[ValkeyServer]:
    """A Valkey for this test alone, so stopping it disturbs no other test."""
    try:
        server = start_valkey()
    except Exception as exc:
        unavailable(f"valkey: {exc}")
    try:
        yield server
    finally:
        server.stop()


def settings(server: ValkeyServer, unique: str) -> RedisSettings:
    return RedisSettings(host=server.host, port=server.port, key_prefix=unique, socket_timeout_s=2.0)


def test_calls_fail_while_the_server_is_down_and_the_same_adapter_works_after_a_restart(
    own_valkey: ValkeyServer, unique: str
) -> None:
    live = RedisLiveState(settings(own_valkey, unique))
    node = NodeInfo(id="n1", mode="node", classes=["A"], capacity=2)
    beat = Heartbeat("t1", "n1", 1, int(time.time() * 1000), 0.25)
    assert live.claim_node(node, ttl_s=30) is None
    assert live.nodes() == [node]

    own_valkey.stop()
    with pytest.raises(BackendUnavailable):
        assert live.claim_node(node, ttl_s=30) is None
    with pytest.raises(BackendUnavailable):
        live.nodes()
    with pytest.raises(BackendUnavailable):
        live.put_heartbeats([beat], ttl_s=30)
    with pytest.raises(BackendUnavailable):
        live.heartbeats(["t1"])

    own_valkey.start()
    assert live.nodes() == []  # the server keeps nothing across a restart
    assert live.claim_node(node, ttl_s=30) is None
    live.put_heartbeats([beat], ttl_s=30)
    assert live.nodes() == [node]
    assert live.heartbeats(["t1"]) == {"t1": beat}
    live.close()


def test_the_first_call_after_a_restart_succeeds_on_a_pooled_connection_that_died(
    own_valkey: ValkeyServer, unique: str
) -> None:
    live = RedisLiveState(settings(own_valkey, unique))
    live.put_heartbeats([Heartbeat("t1", "n1", 1, int(time.time() * 1000))], ttl_s=30)
    own_valkey.stop()
    own_valkey.start()  # no call in between: the pool still holds the dead socket
    assert live.heartbeats() == {}
    live.close()
    live.close()  # idempotent


def test_a_server_without_per_field_ttl_is_refused_with_the_version_it_needs(unique: str) -> None:
    # Valkey 9 with HPEXPIRE switched off stands in for Redis < 7.4 / Valkey < 9.
    try:
        server = start_valkey("--rename-command", "HPEXPIRE", "")
    except Exception as exc:
        unavailable(f"valkey: {exc}")
    try:
        with pytest.raises(ConfigError, match=r"needs Redis >= 7\.4 or Valkey >= 9"):
            RedisLiveState(settings(server, unique))
    finally:
        server.stop()


def test_an_unreachable_server_is_backend_unavailable_at_construction(unique: str) -> None:
    with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1"):
        RedisLiveState(RedisSettings(host="127.0.0.1", port=free_port(), key_prefix=unique, socket_timeout_s=1.0))
