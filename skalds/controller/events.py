"""The controller's event hub: what happens to tasks and nodes, numbered, for every stream client.

One ring buffer of events, each with an increasing id, filled from the bus (every task topic,
in a consumer group of this controller's own, so each controller sees the whole cluster) and
from a poller of the live state (progress and node changes) that runs while clients listen.
Publishing wakes all waiting clients through one shared notification per event loop; each client
then reads the shared buffer from its own cursor, so N clients cost one copy of each event, and
a client that reconnects with ``Last-Event-ID`` gets exactly what it missed (or a ``reset`` if
the buffer has moved past it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from skalds.controller.nodes import NodeDirectory
from skalds.core.events import (
    ControlAction,
    ControlEvent,
    StatusEvent,
    TaskEvent,
    Topic,
    UpdateEvent,
    seed_task_ids,
)
from skalds.core.task import now_ms
from skalds.errors import BackendUnavailable
from skalds.ports.event_bus import Event, EventBus, Subscription
from skalds.ports.live_state import LiveState

logger = logging.getLogger(__name__)

#: Topics the hub follows.
HUB_TOPICS = (
    Topic.TASK_ASSIGN,
    Topic.TASK_CANCEL,
    Topic.TASK_CONTROL,
    Topic.TASK_UPDATE_ATTACHMENT,
    Topic.TASKWORKER_UPDATE,
)


@dataclass(frozen=True)
class HubEvent:
    """One numbered event: its ``type`` (``task.status``, ``node.offline``...), when, what it
    says, and the task / node / class it is about (for filters)."""

    id: int
    type: str
    at: int
    data: dict[str, Any]
    task_id: str | None = None
    node_id: str | None = None
    class_name: str | None = None


class EventHub:
    """A bounded, numbered log of events with async waiting. Thread-safe."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._events: deque[HubEvent] = deque(maxlen=capacity)
        self._next_id = 1
        self._lock = threading.Lock()
        self._waiters: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}
        self.clients = 0
        self.closed = False
        #: The last state seen of each task (events that carry no state borrow it).
        self.status: dict[str, str] = {}
        #: Called with every event as it is published (e.g. the metrics); must be quick.
        self.listeners: list[Callable[[HubEvent], None]] = []

    def publish(
        self,
        type: str,
        data: dict[str, Any],
        *,
        task_id: str | None = None,
        node_id: str | None = None,
        class_name: str | None = None,
    ) -> HubEvent:
        """Append an event and wake every waiting client."""
        with self._lock:
            event = HubEvent(self._next_id, type, now_ms(), data, task_id, node_id, class_name)
            self._next_id += 1
            self._events.append(event)
            loops = list(self._waiters)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("event hub listener failed on %s", event.type)
        for loop in loops:
            try:
                loop.call_soon_threadsafe(self._wake, loop)
            except RuntimeError:  # that loop is closed
                with self._lock:
                    self._waiters.pop(loop, None)
        return event

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        waiter = self._waiters.get(loop)
        if waiter is not None:
            waiter.set()
            self._waiters[loop] = asyncio.Event()

    @property
    def last_id(self) -> int:
        """The id of the newest event (0 before any)."""
        with self._lock:
            return self._next_id - 1

    def since(self, cursor: int) -> tuple[list[HubEvent], bool]:
        """The events after id ``cursor`` still kept, and whether some after it were dropped
        (the buffer moved past the cursor)."""
        with self._lock:
            if not self._events:
                return [], False
            first = self._events[0].id
            start = max(0, cursor - first + 1)
            return list(self._events)[start:], cursor < first - 1

    def register(self) -> None:
        """Join the fan-out from the running event loop (call before the first ``since``)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._waiters.setdefault(loop, asyncio.Event())
            self.clients += 1

    def unregister(self) -> None:
        """Leave the fan-out."""
        with self._lock:
            self.clients -= 1

    async def wait(self, cursor: int, timeout_s: float) -> tuple[list[HubEvent], bool]:
        """The events after ``cursor``, waiting up to ``timeout_s`` for one."""
        events, gap = self.since(cursor)
        if events or gap or self.closed:
            return events, gap
        loop = asyncio.get_running_loop()
        with self._lock:
            waiter = self._waiters.setdefault(loop, asyncio.Event())
        try:
            await asyncio.wait_for(waiter.wait(), timeout_s)
        except TimeoutError:
            return [], False
        return self.since(cursor)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self.closed = True
        self.publish("server.closing", {})


@dataclass
class _Seen:
    progress: float | None = None
    message: str | None = None
    at: int | None = None


@dataclass
class HubFeed:
    """Fills a hub from the bus and, while anyone listens, from the live state."""

    hub: EventHub
    bus: EventBus
    live: LiveState
    nodes: NodeDirectory
    poll_interval_s: float = 1.0
    started_ms: int = field(default_factory=now_ms)
    _subscription: Subscription | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _beats: dict[str, _Seen] = field(default_factory=dict)
    _online: dict[str, tuple[bool, int, bool]] = field(default_factory=dict)

    def start(self) -> None:
        """Subscribe (in a group of this process's own) and start polling."""
        group = f"skalds-events-{uuid.uuid4().hex[:12]}"
        self._subscription = self.bus.subscribe([str(t) for t in HUB_TOPICS], group, self._on_event, sole=True)
        threading.Thread(target=self._poll_loop, name="skalds-events", daemon=True).start()

    def stop(self) -> None:
        """Stop consuming and polling; end the streams."""
        self._stop.set()
        if self._subscription is not None:
            self._subscription.close()
        self.hub.close()

    # ---- the bus ------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        topic, value, hub = event.topic, event.value, self.hub
        seed_ids = seed_task_ids(value)
        if topic == Topic.TASK_ASSIGN:
            assign = TaskEvent.model_validate(value)
            for task_id in assign.task_ids:
                if assign.executor is None:
                    hub.publish("task.pending", {"taskId": task_id}, task_id=task_id)
                else:
                    data = {"taskId": task_id, "executor": assign.executor, "epoch": assign.epoch}
                    hub.status[task_id] = "Assigning"
                    hub.publish("task.assigned", data, task_id=task_id, node_id=assign.executor)
        elif seed_ids is not None:
            kind = "task.cancelled" if topic == Topic.TASK_CANCEL else "task.updated"
            for task_id in seed_ids:
                hub.publish(kind, {"taskId": task_id}, task_id=task_id)
        elif topic in (Topic.TASK_CANCEL, Topic.TASK_CONTROL):
            control = ControlEvent.model_validate(value)
            kind = {ControlAction.CANCEL: "task.cancelled", ControlAction.PAUSE: "task.paused"}.get(
                control.action, "task.resumed"
            )
            hub.publish(kind, {"taskId": control.task_id, "epoch": control.epoch}, task_id=control.task_id)
        elif topic == Topic.TASK_UPDATE_ATTACHMENT:
            update = UpdateEvent.model_validate(value)
            hub.publish("task.updated", {"taskId": update.task_id, "version": update.version}, task_id=update.task_id)
        elif topic == Topic.TASKWORKER_UPDATE:
            self._on_status(StatusEvent.model_validate(value))

    def _on_status(self, status: StatusEvent) -> None:
        if status.status is not None:
            self.hub.status[status.task_id] = status.status.value
        data = status.to_value()
        data["lifecycleStatus"] = self.hub.status.get(status.task_id)
        self.hub.publish("task.status", data, task_id=status.task_id, node_id=status.executor)
        if status.exited:
            self._beats.pop(status.task_id, None)

    # ---- the live state, while clients listen -------------------------------------
    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            if self.hub.clients <= 0:
                continue
            try:
                self.poll()
            except BackendUnavailable:
                continue
            except Exception:
                logger.exception("event feed: polling the live state failed")

    def poll(self) -> None:
        """Publish what changed since the last poll: progress of tasks, and nodes."""
        for task_id, beat in self.live.heartbeats().items():
            seen = self._beats.setdefault(task_id, _Seen())
            if (seen.progress, seen.message) != (beat.progress, beat.message) or seen.at != beat.at:
                seen.progress, seen.message, seen.at = beat.progress, beat.message, beat.at
                data: dict[str, Any] = {
                    "taskId": task_id,
                    "progress": beat.progress,
                    "message": beat.message,
                    "heartbeatAt": beat.at,
                    "executor": beat.node_id,
                    "lifecycleStatus": self.hub.status.get(task_id, "Running"),
                }
                self.hub.publish("task.progress", data, task_id=task_id, node_id=beat.node_id)
        for view in self.nodes.views():
            info = view.info
            key = (view.online, info.running, info.draining)
            before = self._online.get(info.id)
            if before == key:
                continue
            self._online[info.id] = key
            kind = "node.changed"
            if before is None or before[0] != view.online:
                kind = "node.online" if view.online else "node.offline"
            data = {
                "nodeId": info.id,
                "type": info.mode,
                "online": view.online,
                "running": info.running,
                "capacity": info.capacity,
                "draining": info.draining,
                "lastSeen": view.last_seen,
                "classes": info.classes,
            }
            self.hub.publish(kind, data, node_id=info.id)


def sse(event: HubEvent) -> str:
    """One event in the ``text/event-stream`` format, with its ``id:`` and ``event:``."""
    return f"id: {event.id}\nevent: {event.type}\ndata: {json.dumps(event.data)}\n\n"
