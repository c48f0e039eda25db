"""In-process event bus: one queue and one delivery thread per subscription."""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from skalds.errors import BackendUnavailable
from skalds.ports.event_bus import Event, EventBus, Handler, Subscription

logger = logging.getLogger(__name__)

_STOP = object()


class _LocalSubscription(Subscription):
    def __init__(self, bus: LocalEventBus, topics: Sequence[str], group: str, handler: Handler) -> None:
        self._bus = bus
        self.topics = tuple(str(t) for t in topics)
        self.group = group
        self._handler = handler
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"bus-{group}", daemon=True)
        self._thread.start()

    def deliver(self, event: Event) -> None:
        self._queue.put(event)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is _STOP:
                return
            try:
                self._handler(event)
            except Exception:  # a bad handler must not stop the bus
                logger.exception("handler of group %s failed on %s key=%s", self.group, event.topic, event.key)

    def close(self) -> None:
        if self._bus.detach(self):
            self._queue.put(_STOP)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


class LocalEventBus(EventBus):
    """Publish/subscribe inside one process, with the same group and ordering semantics as
    the Kafka adapter: one subscriber per group gets each event (chosen by key, so a key's
    events stay ordered), every group gets every event."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[str, dict[str, list[_LocalSubscription]]] = defaultdict(lambda: defaultdict(list))
        self._closed = False

    def publish(self, topic: str, key: str, value: dict[str, Any]) -> None:
        topic = str(topic)
        event = Event(topic, key, value)
        with self._lock:
            if self._closed:
                raise BackendUnavailable("event bus is closed")
            targets = []
            for members in self._groups[topic].values():
                if members:
                    targets.append(members[zlib.crc32(key.encode()) % len(members)])
        for sub in targets:
            sub.deliver(event)

    def subscribe(self, topics: Sequence[str], group: str, handler: Handler, *, sole: bool = False) -> Subscription:
        sub = _LocalSubscription(self, topics, group, handler)
        with self._lock:
            for topic in sub.topics:
                self._groups[topic][group].append(sub)
        return sub

    def detach(self, sub: _LocalSubscription) -> bool:
        """Remove a subscription from routing; False if it was gone already."""
        with self._lock:
            found = False
            for topic in sub.topics:
                members = self._groups[topic][sub.group]
                if sub in members:
                    members.remove(sub)
                    found = True
            return found

    def close(self) -> None:
        with self._lock:
            self._closed = True
            subs = {s for groups in self._groups.values() for members in groups.values() for s in members}
        for sub in subs:
            sub.close()
