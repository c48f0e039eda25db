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
        self.started_at_epoch: dict[tuple[str, int], float] = {}
        self.applied: dict[tuple[str, int], float] = {}
        self.exited: dict[str, float] = {}
        self._cond = threading.Condition()
        self._subscription = bus.subscribe(
            [str(Topic.TASKWORKER_UPDATE)], f"bench-{uuid.uuid4().hex[:8]}", self._on, sole=True
        )

    def _on(self, event: Event) -> None:
        status = StatusEvent.model_validate(event.value)
        # Epoch microseconds where the node gives them: whole milliseconds would round every
        # latency down by 0.5 ms on average, a fifth of a 2.5 ms budget.
        at = status.at_us / 1e6 if status.at_us else status.at / 1000 if status.at else time.time()
        with self._cond:
            if status.exited:
                self.exited.setdefault(status.task_id, at)
            elif status.applied_version is not None:
                self.applied.setdefault((status.task_id, status.applied_version), at)
            elif status.status in ("Running", "Paused"):
                self.started.setdefault(status.task_id, at)
                self.started_at_epoch.setdefault((status.task_id, status.epoch or 0), at)
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

    def wait_started(
        self, task_ids: list[str], timeout_s: float, on_progress: Callable[[int], None] | None = None
    ) -> None:
        """Block until every task's worker reported it started."""

        def all_started() -> bool:
            done = sum(t in self.started for t in task_ids)
            if on_progress is not None:
                on_progress(done)
            return done == len(task_ids)

        self.wait(all_started, timeout_s, f"{len(task_ids)} task(s) running")

    def wait_exited(self, task_ids: list[str], timeout_s: float) -> None:
        """Block until every task's worker process is gone."""
        self.wait(lambda: all(t in self.exited for t in task_ids), timeout_s, f"{len(task_ids)} worker(s) gone")

    def wait_applied(self, task_id: str, version: int, timeout_s: float) -> float:
        """Block until the task's worker applied ``version``; return when it did."""
        self.wait(lambda: (task_id, version) in self.applied, timeout_s, f"update {version} of {task_id}")
        return self.applied[(task_id, version)]

    def close(self) -> None:
        """Stop listening."""
        self._subscription.close()
