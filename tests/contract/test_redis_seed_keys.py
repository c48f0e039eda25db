"""RedisLiveState keeps the original Skalds' keys up to date (``backend.redis.seed_keys``), as
the original's monitors read them, against the shared test Valkey on names of each test's own."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from skalds.backends.redis import RedisLiveState, RedisSettings
from skalds.core.records import Heartbeat, NodeInfo
from skalds.core.task import TaskLifecycleStatus
from tests.servers.valkey import valkey

S = TaskLifecycleStatus


@pytest.fixture
def client(unique: str) -> Iterator[redis.Redis]:
    server = valkey()
    with redis.Redis(host=server.host, port=server.port, decode_responses=True) as c:
        yield c
        keys = [*c.scan_iter(f"{unique}:*"), *c.scan_iter(f"task:{unique}*")]
        if keys:
            c.delete(*keys)


def live_state(unique: str, **settings: object) -> RedisLiveState:
    server = valkey()
    return RedisLiveState(RedisSettings(host=server.host, port=server.port, key_prefix=unique, **settings))  # type: ignore[arg-type]


def node(unique: str, mode: str = "edge") -> NodeInfo:
    return NodeInfo(id=f"{unique}-n1", mode=mode, classes=["MyWorker", "ComplexWorker"], capacity=4, instance="i1")


def beat(task_id: str) -> Heartbeat:
    return Heartbeat(task_id, "n", 1, int(time.time() * 1000))


def test_a_node_lease_writes_the_originals_node_keys_and_a_clean_stop_removes_them(
    client: redis.Redis, unique: str
) -> None:
    live = live_state(unique, seed_key_ttl_s=600)
    mine = node(unique)
    before = int(time.time() * 1000)
    assert live.claim_node(mine, ttl_s=5) is None
    stamp = int(client.hget(f"{unique}:hash", mine.id))
    assert before <= stamp <= int(time.time() * 1000)
    assert client.hget(f"{unique}:mode:hash", mine.id) == "edge"
    assert 590 < client.execute_command("HTTL", f"{unique}:hash", "FIELDS", 1, mine.id)[0] <= 600, "per-field TTL"
    heartbeat = f"{unique}:{mine.id}:heartbeat"
    first = client.get(heartbeat)
    assert 0 <= int(first) < 200 and 0 < client.ttl(heartbeat) <= 8
    assert client.lrange(f"{unique}:{mine.id}:allow-task-class-name", 0, -1) == ["MyWorker", "ComplexWorker"]

    assert live.claim_node(mine, ttl_s=5) is None
    assert client.get(heartbeat) != first, "the value changes with every renewal"
    assert live.claim_node(NodeInfo(id=mine.id, mode="node", classes=[], capacity=1, instance="other"), 5) is not None
    assert client.hget(f"{unique}:mode:hash", mine.id) == "edge", "a refused claim writes nothing"

    live.remove_node(mine.id, "i1")
    assert client.hget(f"{unique}:hash", mine.id) is None and client.hget(f"{unique}:mode:hash", mine.id) is None
    assert not client.exists(heartbeat, f"{unique}:{mine.id}:allow-task-class-name")
    live.close()


def test_task_heartbeats_change_every_beat_and_an_end_leaves_the_originals_value(
    client: redis.Redis, unique: str
) -> None:
    live = live_state(unique, seed_key_ttl_s=600)
    ids = {status: f"{unique}-{status.value}" for status in (S.FINISHED, S.FAILED, S.CANCELLED)}
    values = []
    for _ in range(3):
        live.put_heartbeats([beat(t) for t in ids.values()], ttl_s=5)
        values.append({client.get(f"task:{t}:heartbeat") for t in ids.values()})
    assert all(len(v) == 1 for v in values) and len({v.pop() for v in values}) == 3, "one new value per beat"
    key = f"task:{ids[S.FINISHED]}:heartbeat"
    assert 0 <= int(client.get(key)) < 200 and 0 < client.ttl(key) <= 8

    live.tasks_ended(ids_by_status := {t: status for status, t in ids.items()})
    assert {client.get(f"task:{t}:heartbeat") for t in ids_by_status} == {"200", "-1", "-2"}
    assert 590 < client.ttl(key) <= 600
    live.put_heartbeats([beat(ids[S.FINISHED])], ttl_s=5)  # a batch read just before the end
    assert client.get(key) == "200", "an end is not overwritten by a late heartbeat"
    live.close()


def test_without_seed_keys_only_skalds_own_keys_are_written(client: redis.Redis, unique: str) -> None:
    live = live_state(unique, seed_keys=False)
    assert live.claim_node(node(unique), ttl_s=5) is None
    live.put_heartbeats([beat(f"{unique}-t")], ttl_s=5)
    live.tasks_ended({f"{unique}-t": S.FINISHED})
    assert sorted(client.scan_iter(f"{unique}:*")) == [f"{unique}:nodes"]
    assert list(client.scan_iter(f"task:{unique}*")) == []
    live.close()


def test_a_seed_key_of_the_wrong_type_never_fails_a_lease(client: redis.Redis, unique: str) -> None:
    client.set(f"{unique}:hash", "not a hash")
    live = live_state(unique)
    mine = node(unique)
    assert live.claim_node(mine, ttl_s=5) is None
    assert [n.id for n in live.nodes()] == [mine.id]
    assert client.hget(f"{unique}:mode:hash", mine.id) == "edge", "the other keys are still written"
    live.remove_node(mine.id, "i1")
    assert live.nodes() == []
    live.close()
