"""Contract of the LiveState port, run against every adapter."""

from __future__ import annotations

import time

import pytest

from skalds.core.records import Heartbeat, LogLine, NodeInfo
from skalds.core.task import TaskLifecycleStatus
from skalds.ports.live_state import LiveState
from skalds.testing import wait_until


def node(unique: str, instance: str = "i1", **fields: object) -> NodeInfo:
    base: dict[str, object] = {"mode": "node", "classes": ["A"], "capacity": 4, "pid": 7, "host": "h"}
    return NodeInfo(id=f"{unique}-n1", instance=instance, **{**base, **fields})  # type: ignore[arg-type]


def test_a_node_lease_is_visible_until_it_expires(live_state: LiveState, unique: str) -> None:
    mine = node(unique, running=1, labels={"zone": "a"})
    assert live_state.claim_node(mine, ttl_s=1.0) is None
    assert [n for n in live_state.nodes() if n.id == mine.id] == [mine]
    wait_until(lambda: all(n.id != mine.id for n in live_state.nodes()), timeout_s=5, message="lease expired")


def test_renewing_a_lease_keeps_it_and_remove_drops_it(live_state: LiveState, unique: str) -> None:
    mine = node(unique)
    for _ in range(3):
        assert live_state.claim_node(mine, ttl_s=1.0) is None
        time.sleep(0.4)
    assert any(n.id == mine.id for n in live_state.nodes())
    live_state.remove_node(mine.id, "i1")
    live_state.remove_node(mine.id, "i1")  # idempotent
    assert all(n.id != mine.id for n in live_state.nodes())


def test_a_live_lease_of_another_instance_is_not_taken_but_named(live_state: LiveState, unique: str) -> None:
    first, second = node(unique, "first"), node(unique, "second", pid=8)
    assert live_state.claim_node(first, ttl_s=30) is None
    holder = live_state.claim_node(second, ttl_s=30)
    assert holder is not None and (holder.instance, holder.pid) == ("first", 7)
    live_state.remove_node(first.id, "second")  # not its lease: nothing happens
    assert [n.instance for n in live_state.nodes() if n.id == first.id] == ["first"]
    assert live_state.claim_node(second, ttl_s=30, force=True) is None
    assert [n.instance for n in live_state.nodes() if n.id == first.id] == ["second"]
    assert live_state.claim_node(first, ttl_s=30) is not None  # the first lost it for good
    live_state.remove_node(first.id, "second")


def test_an_expired_lease_of_another_instance_can_be_claimed(live_state: LiveState, unique: str) -> None:
    assert live_state.claim_node(node(unique, "old"), ttl_s=0.3) is None
    wait_until(lambda: live_state.claim_node(node(unique, "new"), ttl_s=30) is None, timeout_s=5, message="claimed")
    assert [n.instance for n in live_state.nodes() if n.id == f"{unique}-n1"] == ["new"]


def test_a_lead_has_one_holder_until_it_expires_or_is_released(live_state: LiveState, unique: str) -> None:
    role = f"{unique}-controller"
    assert live_state.lead_holder(role) is None
    assert live_state.claim_lead(role, "a", ttl_s=30) is None
    assert live_state.claim_lead(role, "a", ttl_s=30) is None, "renewed by its holder"
    assert live_state.claim_lead(role, "b", ttl_s=30) == "a", "refused, holder named"
    assert live_state.lead_holder(role) == "a"
    live_state.release_lead(role, "b")  # not its lead: nothing happens
    assert live_state.lead_holder(role) == "a"
    live_state.release_lead(role, "a")
    live_state.release_lead(role, "a")  # idempotent
    assert live_state.lead_holder(role) is None
    assert live_state.claim_lead(role, "b", ttl_s=0.3) is None, "free again"
    assert live_state.claim_lead(f"{unique}-other", "a", ttl_s=30) is None, "roles are independent"
    wait_until(lambda: live_state.claim_lead(role, "a", ttl_s=30) is None, timeout_s=5, message="expired, taken")
    assert live_state.lead_holder(role) == "a"


def test_heartbeats_are_batched_read_by_task_and_expire_each_on_its_own(live_state: LiveState, unique: str) -> None:
    a, b = f"{unique}-a", f"{unique}-b"
    live_state.put_heartbeats([Heartbeat(a, "n", 1, int(time.time() * 1000), 0.5, "half")], ttl_s=1.0)
    live_state.put_heartbeats([Heartbeat(b, "n", 2, int(time.time() * 1000), None)], ttl_s=30.0)
    beats = live_state.heartbeats([a, b, f"{unique}-missing"])
    assert set(beats) == {a, b} and beats[a].progress == 0.5 and beats[a].message == "half"
    wait_until(lambda: set(live_state.heartbeats([a, b])) == {b}, timeout_s=5, message="a expired, b kept")
    live_state.drop_heartbeats([b])
    assert live_state.heartbeats([b]) == {}


def test_heartbeats_of_every_task_are_read_when_no_ids_are_given(live_state: LiveState, unique: str) -> None:
    a, b = f"{unique}-a", f"{unique}-b"
    live_state.put_heartbeats(
        [Heartbeat(a, "n", 1, int(time.time() * 1000)), Heartbeat(b, "n", 1, int(time.time() * 1000), 1.0)], ttl_s=30
    )
    assert set(live_state.heartbeats()) >= {a, b}
    assert live_state.heartbeats([]) == {}
    live_state.put_heartbeats([], ttl_s=30)  # nothing to write is no error


def test_a_later_heartbeat_replaces_the_earlier_and_renews_its_ttl(live_state: LiveState, unique: str) -> None:
    a = f"{unique}-a"
    live_state.put_heartbeats([Heartbeat(a, "n", 1, int(time.time() * 1000), 0.1)], ttl_s=0.5)
    live_state.put_heartbeats([Heartbeat(a, "n", 2, int(time.time() * 1000), 0.9)], ttl_s=30)
    time.sleep(0.8)
    beat = live_state.heartbeats([a])[a]
    assert (beat.epoch, beat.progress) == (2, 0.9)


def test_dropping_heartbeats_is_idempotent(live_state: LiveState, unique: str) -> None:
    a = f"{unique}-a"
    live_state.put_heartbeats([Heartbeat(a, "n", 1, int(time.time() * 1000))], ttl_s=30)
    live_state.drop_heartbeats([a, f"{unique}-never-seen"])
    live_state.drop_heartbeats([a])
    live_state.drop_heartbeats([])
    assert live_state.heartbeats([a]) == {}


def _line(text: str, epoch: int = 1) -> LogLine:
    return LogLine(int(time.time() * 1000), "stdout", text, "n", epoch, 0, None)


def test_output_lines_are_appended_in_order_read_as_tail_or_after_a_cursor(live_state: LiveState, unique: str) -> None:
    a, b = f"{unique}-a", f"{unique}-b"
    live_state.append_logs({a: [_line("a1"), _line("a2")], b: [_line("b1")]}, keep=100, ttl_s=30)
    live_state.append_logs({a: [_line("a3", epoch=2)]}, keep=100, ttl_s=30)
    lines = live_state.read_logs(a)
    assert [line.text for _, line in lines] == ["a1", "a2", "a3"]
    assert lines[2][1].epoch == 2 and lines[2][1].stream == "stdout"
    assert [line.text for _, line in live_state.read_logs(a, limit=2)] == ["a2", "a3"]
    first = lines[0][0]
    assert [line.text for _, line in live_state.read_logs(a, after=first)] == ["a2", "a3"]
    assert [line.text for _, line in live_state.read_logs(a, after=first, limit=1)] == ["a2"]
    assert live_state.read_logs(a, after=lines[-1][0]) == []
    assert [line.text for _, line in live_state.read_logs(b)] == ["b1"]
    assert live_state.read_logs(f"{unique}-none") == []


def test_output_keeps_about_the_newest_lines_expires_and_can_be_dropped(live_state: LiveState, unique: str) -> None:
    a, b = f"{unique}-a", f"{unique}-b"
    for i in range(30):
        live_state.append_logs({a: [_line(f"{i}-{j}") for j in range(10)]}, keep=50, ttl_s=30)
    kept = live_state.read_logs(a, limit=1000)
    assert 50 <= len(kept) < 300, "about the newest 50 (Redis trims approximately)"
    assert kept[-1][1].text == "29-9"
    live_state.drop_logs([a])
    live_state.drop_logs([a])  # idempotent
    assert live_state.read_logs(a) == []
    live_state.append_logs({b: [_line("short-lived")]}, keep=10, ttl_s=0.5)
    wait_until(lambda: live_state.read_logs(b) == [], timeout_s=5, message="expired")


def test_tasks_that_ended_lose_their_heartbeats_and_only_ends_are_accepted(live_state: LiveState, unique: str) -> None:
    a, b, c = f"{unique}-a", f"{unique}-b", f"{unique}-c"
    now = int(time.time() * 1000)
    live_state.put_heartbeats([Heartbeat(a, "n", 1, now), Heartbeat(b, "n", 1, now), Heartbeat(c, "n", 1, now)], 30)
    live_state.tasks_ended({a: TaskLifecycleStatus.FINISHED, b: TaskLifecycleStatus.CANCELLED})
    assert set(live_state.heartbeats([a, b, c])) == {c}
    live_state.tasks_ended({a: TaskLifecycleStatus.FINISHED})  # idempotent
    live_state.tasks_ended({})  # nothing to write is no error
    with pytest.raises(ValueError, match="Running is not an end"):
        live_state.tasks_ended({c: TaskLifecycleStatus.FAILED, f"{unique}-d": TaskLifecycleStatus.RUNNING})
    assert set(live_state.heartbeats([c])) == {c}, "a refused call writes nothing"
