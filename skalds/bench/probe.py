"""What the benchmark sees of the workers: status events from the normal channel
(``taskworker.update``), with the workers' own timestamps."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from skalds.core.events import StatusEvent, Topic
from skalds.ports.event_bus import Event, EventBus


class StatusRecorder:
    """Keeps, per task, when its worker started, when each update was applied and when its
    process exited, as the node reported them."""

    def __init__(self, bus: EventBus) -> None:
        self.started: dict[str, float] = {}
        self.started_at_epoch: dict[tuple[str, int], tuple[float, str | None]] = {}  # -> (at, executor)
        self.applied: dict[tuple[str, int], float] = {}
        self.exited: dict[str, float] = {}
        self._cond = threading.Condition()
        self._subscription = bus.subscribe([str(Topic.TASKWORKER_UPDATE)], f"bench-{uuid.uuid4().hex[:8]}", self._on)

    def _on(self, event: Event) -> None:
        status = StatusEvent.model_validate(event.value)
        at = status.at or time.time()
        with self._cond:
            if status.exited:
                self.exited.setdefault(status.task_id, at)
            elif status.applied_version is not None:
                self.applied.setdefault((status.task_id, status.applied_version), at)
            elif status.status in ("Running", "Paused"):
                self.started.setdefault(status.task_id, at)
                self.started_at_epoch.setdefault((status.task_id, status.epoch or 0), (at, status.executor))
            self._cond.notify_all()

    def wait(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Block until ``condition()`` (checked under the recorder's lock) holds.

        Raises:
            TimeoutError: it did not within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"benchmark: {what} did not happen within {timeout_s}s")
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        """Stop listening."""
        self._subscription.close()
