"""Contract of the LiveState port, run against every adapter."""

from __future__ import annotations

import time

from skalds.ports.live_state import Heartbeat, LiveState, NodeInfo
from skalds.testing import wait_until


def test_a_node_lease_is_visible_until_it_expires(live_state: LiveState, unique: str) -> None:
    node = NodeInfo(id=f"{unique}-n1", mode="node", classes=["A"], capacity=4, running=1, labels={"zone": "a"})
    live_state.put_node(node, ttl_s=1.0)
    mine = [n for n in live_state.nodes() if n.id == node.id]
    assert mine == [node]
    wait_until(lambda: all(n.id != node.id for n in live_state.nodes()), timeout_s=5, message="lease expired")


def test_renewing_a_lease_keeps_it_and_remove_drops_it(live_state: LiveState, unique: str) -> None:
    node = NodeInfo(id=f"{unique}-n1", mode="node", classes=[], capacity=1)
    for _ in range(3):
        live_state.put_node(node, ttl_s=1.0)
        time.sleep(0.4)
    assert any(n.id == node.id for n in live_state.nodes())
    live_state.remove_node(node.id)
    live_state.remove_node(node.id)  # idempotent
    assert all(n.id != node.id for n in live_state.nodes())


def test_heartbeats_are_batched_read_by_task_and_expire_each_on_its_own(live_state: LiveState, unique: str) -> None:
    a, b = f"{unique}-a", f"{unique}-b"
    live_state.put_heartbeats([Heartbeat(a, "n", 1, time.time(), 0.5, "half")], ttl_s=1.0)
    live_state.put_heartbeats([Heartbeat(b, "n", 2, time.time(), None)], ttl_s=30.0)
    beats = live_state.heartbeats([a, b, f"{unique}-missing"])
    assert set(beats) == {a, b} and beats[a].progress == 0.5 and beats[a].message == "half"
    wait_until(lambda: set(live_state.heartbeats([a, b])) == {b}, timeout_s=5, message="a expired, b kept")
    live_state.drop_heartbeats([b])
    assert live_state.heartbeats([b]) == {}


def test_heartbeats_of_every_task_are_read_when_no_ids_are_given(live_state: LiveState, unique: str) -> None:
    a, b = f"{unique}-a", f"{unique}-b"
    live_state.put_heartbeats([Heartbeat(a, "n", 1, time.time()), Heartbeat(b, "n", 1, time.time(), 1.0)], ttl_s=30)
    assert set(live_state.heartbeats()) >= {a, b}
    assert live_state.heartbeats([]) == {}
    live_state.put_heartbeats([], ttl_s=30)  # nothing to write is no error


def test_a_later_heartbeat_replaces_the_earlier_and_renews_its_ttl(live_state: LiveState, unique: str) -> None:
    a = f"{unique}-a"
    live_state.put_heartbeats([Heartbeat(a, "n", 1, time.time(), 0.1)], ttl_s=0.5)
    live_state.put_heartbeats([Heartbeat(a, "n", 2, time.time(), 0.9)], ttl_s=30)
    time.sleep(0.8)
    beat = live_state.heartbeats([a])[a]
    assert (beat.epoch, beat.progress) == (2, 0.9)


def test_dropping_heartbeats_is_idempotent(live_state: LiveState, unique: str) -> None:
    a = f"{unique}-a"
    live_state.put_heartbeats([Heartbeat(a, "n", 1, time.time())], ttl_s=30)
    live_state.drop_heartbeats([a, f"{unique}-never-seen"])
    live_state.drop_heartbeats([a])
    live_state.drop_heartbeats([])
    assert live_state.heartbeats([a]) == {}
