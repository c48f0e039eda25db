"""Event bus port: keyed publish/subscribe between controller, nodes and tools."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    """One message: its topic, key (a task id, so one task's events stay in order) and a
    JSON-ready value."""

    topic: str
    key: str
    value: dict[str, Any]


Handler = Callable[[Event], None]


class Subscription(abc.ABC):
    """A running subscription. Closing it stops deliveries; a handler call under way ends."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop consuming. Idempotent; blocks until the delivery thread has stopped."""


class EventBus(abc.ABC):
    """Keyed publish/subscribe with consumer groups.

    Delivery is at-least-once: handlers must be idempotent (Skalds' events carry epochs and
    versions for that). Events with the same key on the same topic arrive in publish order.
    Each group receives every event of its topics once; subscribers in different groups each
    receive all of them.
    """

    @abc.abstractmethod
    def publish(self, topic: str, key: str, value: dict[str, Any]) -> None:
        """Queue an event for delivery. Does not wait for subscribers; thread-safe.

        Raises:
            BackendUnavailable: the bus cannot accept the event (e.g. the local queue is full
                or the broker is unreachable past its delivery timeout).
        """

    @abc.abstractmethod
    def subscribe(self, topics: Sequence[str], group: str, handler: Handler, *, sole: bool = False) -> Subscription:
        """Deliver events of ``topics`` to ``handler`` on a thread owned by the bus, one at
        a time. A handler that raises is logged and the event counts as handled; handlers
        report their own retries.

        Every group gets every event; the subscribers of one group share them, each event
        going to one of them. ``sole`` promises that this is its group's only subscriber (a
        group named after something only one process holds, or a random name), so the
        adapter may skip coordinating the group: the Kafka adapter reads every partition
        directly instead of waiting for a group rebalance.

        Returns once the subscription is live: events published after the call are delivered.
        """

    def flush(self, timeout_s: float = 5.0) -> None:  # noqa: B027 - optional hook
        """Block until queued events were handed to the transport, or ``timeout_s`` passed."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop every subscription and release the transport. Idempotent."""
