"""The Kafka event bus survives its broker going away and coming back (tansu, which comes
back empty: the bus must re-create its topics and get a new producer id)."""

from __future__ import annotations

import time

from skalds.ports.event_bus import EventBus
from skalds.testing import wait_until
from tests.contract.adapters_kafka import kafka_bus
from tests.contract.test_event_bus import Collector
from tests.servers import tansu

_OUTAGE_S = 3.0  # longer than the 2 s session timeout: the group has to be joined again


def _numbers(seen: Collector) -> set[int]:
    return {v["n"] for v in seen.values()}


def test_a_subscription_gets_events_published_after_a_broker_restart(unique: str) -> None:
    with kafka_bus(unique) as bus:
        seen = Collector()
        bus.subscribe([unique], unique, seen)
        bus.publish(unique, "k", {"n": 0})
        bus.flush()
        wait_until(lambda: _numbers(seen) == {0}, timeout_s=30, message="event before the outage")

        with tansu.broker_down():
            time.sleep(_OUTAGE_S)  # the outage itself, not a wait for a condition

        for n in range(1, 6):
            bus.publish(unique, "k", {"n": n})
        wait_until(lambda: _numbers(seen) >= set(range(6)), timeout_s=60, message="events after the restart")
        after = [v["n"] for v in seen.values() if v["n"] > 0]
        assert after == sorted(after), "one key's events still arrive in publish order"
        _still_works(bus, unique, seen)


def test_events_published_while_the_broker_is_down_are_delivered_once_it_is_back(unique: str) -> None:
    with kafka_bus(unique) as bus:
        seen = Collector()
        bus.subscribe([unique], unique, seen)
        with tansu.broker_down():
            for n in range(5):
                bus.publish(unique, "k", {"n": n})  # topic known: queued, no broker needed
            time.sleep(_OUTAGE_S)
        wait_until(lambda: _numbers(seen) >= set(range(5)), timeout_s=60, message="events queued in the outage")


def _still_works(bus: EventBus, unique: str, seen: Collector) -> None:
    bus.publish(unique, "k2", {"n": 100})
    wait_until(lambda: 100 in _numbers(seen), timeout_s=30, message="a later event")


def test_a_producer_recovers_when_another_process_recreated_the_topics_first(unique: str) -> None:
    with kafka_bus(unique) as quiet, kafka_bus(unique) as eager:
        seen = Collector()
        quiet.subscribe([unique], f"{unique}-g", seen)
        quiet.publish(unique, "k", {"n": 0})
        eager.publish(unique, "k", {"n": 1})
        wait_until(lambda: _numbers(seen) == {0, 1}, timeout_s=30, message="events before the outage")

        with tansu.broker_down():
            time.sleep(_OUTAGE_S)
        eager.publish(unique, "k", {"n": 2})  # this bus re-creates the topic first
        eager.flush(10)
        quiet.publish(unique, "k", {"n": 3})  # the other one must still get a fresh producer id
        wait_until(lambda: _numbers(seen) >= {2, 3}, timeout_s=60, message="both buses deliver after the restart")
