"""Contract of the EventBus port, run against every adapter."""

from __future__ import annotations

import threading

from skalds.backends.local.event_bus import LocalEventBus
from skalds.ports.event_bus import Event, EventBus
from skalds.testing import wait_until


class Collector:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def values(self, key: str | None = None) -> list[dict]:
        with self._lock:
            return [e.value for e in self.events if key is None or e.key == key]


def test_every_group_gets_every_event_in_key_order(event_bus: EventBus, unique: str) -> None:
    topic = f"{unique}.events"
    a, b = Collector(), Collector()
    event_bus.subscribe([topic], f"{unique}-a", a)
    event_bus.subscribe([topic], f"{unique}-b", b)
    for i in range(20):
        event_bus.publish(topic, f"k{i % 3}", {"n": i})
    event_bus.flush()
    for c in (a, b):
        wait_until(lambda c=c: len(c.values()) == 20, timeout_s=30, message="all events delivered")
        for k in range(3):
            ns = [v["n"] for v in c.values(f"k{k}")]
            assert ns == sorted(ns), "one key's events arrive in publish order"


def test_one_subscription_receives_several_topics(event_bus: EventBus, unique: str) -> None:
    seen = Collector()
    event_bus.subscribe([f"{unique}.x", f"{unique}.y"], unique, seen)
    event_bus.publish(f"{unique}.x", "k", {"from": "x"})
    event_bus.publish(f"{unique}.y", "k", {"from": "y"})
    event_bus.flush()
    wait_until(lambda: len(seen.values()) == 2, timeout_s=30, message="both topics")
    assert {e.topic for e in seen.events} == {f"{unique}.x", f"{unique}.y"}


def test_a_failing_handler_does_not_stop_later_deliveries(event_bus: EventBus, unique: str) -> None:
    seen = Collector()

    def handler(event: Event) -> None:
        if event.value["n"] == 0:
            raise RuntimeError("bad event")
        seen(event)

    event_bus.subscribe([unique], unique, handler)
    for n in range(3):
        event_bus.publish(unique, "k", {"n": n})
    event_bus.flush()
    wait_until(lambda: [v["n"] for v in seen.values()] == [1, 2], timeout_s=30, message="later events")


def test_a_closed_subscription_gets_nothing_more(event_bus: EventBus, unique: str) -> None:
    seen = Collector()
    sub = event_bus.subscribe([unique], unique, seen)
    event_bus.publish(unique, "k", {"n": 1})
    event_bus.flush()
    wait_until(lambda: seen.values(), timeout_s=30, message="first event")
    sub.close()
    witness = Collector()  # a live group: once it has event 2, the closed one had its chance
    event_bus.subscribe([unique], f"{unique}-witness", witness)
    event_bus.publish(unique, "k", {"n": 2})
    event_bus.flush()
    wait_until(lambda: {"n": 2} in witness.values(), timeout_s=30, message="event 2 delivered to a live group")
    assert seen.values() == [{"n": 1}]


def test_subscribers_in_one_group_share_its_events_each_once(event_bus: EventBus, unique: str) -> None:
    a, b = Collector(), Collector()
    event_bus.subscribe([unique], unique, a)
    event_bus.subscribe([unique], unique, b)
    for i in range(30):
        event_bus.publish(unique, f"k{i}", {"n": i})
    event_bus.flush()
    wait_until(lambda: len(a.values()) + len(b.values()) >= 30, timeout_s=30, message="all events delivered")
    assert sorted(v["n"] for v in a.values() + b.values()) == list(range(30))


def test_closing_twice_is_harmless(event_bus: EventBus, unique: str) -> None:
    sub = event_bus.subscribe([unique], unique, Collector())
    sub.close()
    sub.close()
    event_bus.close()
    event_bus.close()


def test_a_sole_subscriber_gets_every_event_at_once_and_resumes_after_what_it_handled(
    event_bus: EventBus, unique: str
) -> None:
    topic = f"{unique}.sole"
    first = Collector()
    sub = event_bus.subscribe([topic], unique, first, sole=True)
    for i in range(10):  # published right after it returned: every partition's events reach it
        event_bus.publish(topic, f"k{i}", {"n": i})
    event_bus.flush()
    wait_until(lambda: len(first.values()) == 10, timeout_s=30, message="all ten delivered")
    assert sorted(v["n"] for v in first.values()) == list(range(10))
    sub.close()
    if isinstance(event_bus, LocalEventBus):
        return  # in-process events live only as long as their process: nothing to resume
    event_bus.publish(topic, "k", {"n": 10})
    event_bus.flush()
    again = Collector()
    event_bus.subscribe([topic], unique, again, sole=True)  # the same group, later
    wait_until(lambda: {"n": 10} in again.values(), timeout_s=30, message="the event published meanwhile")
    assert len(again.values()) < 11, "it resumed after what was handled, not from the start"
