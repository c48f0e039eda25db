"""The seed's client objects for scripts (``RedisProxy``, ``KafkaAdmin``) against the test
servers, each test on names of its own."""

from __future__ import annotations

import uuid

import pytest

from skalds.backends.kafka import TopicRegistry
from skalds.errors import BackendUnavailable
from skalds.proxy.kafka import KafkaAdmin, KafkaConfig
from skalds.proxy.redis import RedisConfig, RedisKey, RedisProxy
from skalds.testing import wait_until
from tests.servers import tansu
from tests.servers.valkey import valkey

pytestmark = pytest.mark.integration


def test_redis_proxy_reads_and_writes_the_seeds_keys() -> None:
    server = valkey()
    proxy = RedisProxy(RedisConfig(host=server.host, port=server.port))
    skald = f"s{uuid.uuid4().hex[:8]}"
    hash_key = f"{skald}:{RedisKey.SKALD_LIST_HASH}"  # never the shared server's real hash
    try:
        proxy.set_message(RedisKey.skald_heartbeat(skald), 42, expire=8)
        assert proxy.get_message(RedisKey.skald_heartbeat(skald)) == b"42"
        assert 0 < proxy.client.ttl(RedisKey.skald_heartbeat(skald)) <= 8

        proxy.set_hash(hash_key, skald, "1700000000000", ttl=60)
        proxy.set_hash(hash_key, "other", "1")
        assert proxy.get_hash(hash_key, skald) == "1700000000000"
        assert proxy.get_all_hash(hash_key) == {skald: "1700000000000", "other": "1"}
        assert proxy.client.execute_command("HTTL", hash_key, "FIELDS", 1, skald)[0] > 0, "per-field TTL"
        proxy.delete_hash(hash_key, "other")
        assert proxy.get_hash(hash_key, "other") is None

        classes = RedisKey.skald_allow_task_class_name(skald)
        proxy.overwrite_list(classes, ["A", "B"], ttl=60)
        proxy.push_list(classes, "C")
        proxy.push_list(classes, "Z", insert_head=False)
        assert proxy.get_list(classes) == ["Z", "A", "B", "C"]

        assert sorted(proxy.get_sub_keys(f"skalds:{skald}:")) == [classes, RedisKey.skald_heartbeat(skald)]
        assert proxy.delete_key(classes) == 1
        assert proxy.get_list(classes) == []
    finally:
        proxy.client.delete(hash_key, RedisKey.skald_heartbeat(skald), RedisKey.skald_allow_task_class_name(skald))
        proxy.close()


def test_redis_proxy_says_when_the_server_is_away() -> None:
    from tests.servers import free_port

    with pytest.raises(BackendUnavailable, match="ping"):
        RedisProxy(RedisConfig(port=free_port()), timeout_s=0.5)
    proxy = RedisProxy(RedisConfig(port=free_port()), is_block=False, timeout_s=0.5)
    with pytest.raises(BackendUnavailable, match="get"):
        proxy.get_message("k")


def test_kafka_admin_creates_and_deletes_a_topic() -> None:
    host, port = tansu.bootstrap_servers().split(":")
    prefix = f"t{uuid.uuid4().hex[:8]}."
    config = KafkaConfig(host=host, port=int(port), topic_prefix=prefix)
    admin = KafkaAdmin(config)
    admin.create_topic("scripts", partitions=2, replication_factor=1)
    admin.create_topic("scripts", partitions=2, replication_factor=1)  # exists: not an error
    registry = TopicRegistry(config.settings())  # a second client: what the broker says
    assert f"{prefix}scripts" in registry.existing(timeout_s=10)
    admin.delete_topic("scripts")
    wait_until(
        lambda: f"{prefix}scripts" not in registry.existing(timeout_s=10),
        timeout_s=10,
        message="topic deleted",
    )
    admin.delete_topic("scripts")  # gone: not an error
    admin.disconnect()
