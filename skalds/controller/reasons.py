"""Why tasks wait, written to their records (``pendingReason``) and to the log.

The dispatcher computes a reason for every waiting task in every round; most rounds change
nothing, and a busy queue changes only positions. So the :class:`ReasonWriter` writes a reason
only when it changed, a change of queue position alone at most every ``refresh_s`` per task,
and does so on a thread of its own: a round never waits on these writes, the placements that
matter are not queued behind them, and of several reasons offered for one task before it got
to it only the newest is written. Each write is conditional on the task's state and epoch
(:func:`~skalds.core.dispatch.pending`), so a reason never lands on a task placed meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time

from skalds.core.dispatch import pending
from skalds.core.scheduler import reason_kind
from skalds.core.task import Task
from skalds.errors import BackendUnavailable, InvalidTransition, SkaldsError, StaleWrite, TaskNotFound
from skalds.ports.task_store import TaskStore

logger = logging.getLogger(__name__)
#: Reasons that last until someone changes the cluster or the task.
_NEEDS_A_HAND = ("no node offers", "no node matches", "pinned to node")


class ReasonWriter:
    """Writes changed pending reasons, off the dispatcher's thread."""

    def __init__(self, store: TaskStore, refresh_s: float = 5.0) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self.errors = 0
        self._queued: dict[str, tuple[Task, str]] = {}  # newest reason per task, not yet written
        self._writing: dict[str, str] = {}  # the reason being written now, per task
        self._written: dict[str, tuple[str, float]] = {}  # task id -> (reason, monotonic time)
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="skalds-reasons", daemon=True)

    def start(self) -> None:
        """Start the writing thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop it (reasons not yet written are dropped: the next controller recomputes them)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def offer(self, task: Task, reason: str) -> None:
        """``task`` (as the dispatcher last read it) waits for ``reason``: write it if it
        differs from what its record holds (a position-only change at most every
        ``refresh_s``), and log it when its cause changed."""
        with self._cond:
            last, at = self._written.get(task.id, (task.pending_reason, float("-inf")))
            writing = self._writing.get(task.id)
            if reason == last or (reason == writing and task.id not in self._queued):
                self._queued.pop(task.id, None)
                return
            new_cause = last is None or reason_kind(reason) != reason_kind(last)
            if not new_cause and time.monotonic() - at < self.refresh_s:
                return
            # Two rounds in a row (the request's and the dispatcher's) offer the same cause
            # while it is queued or being written: it is logged once.
            queued = self._queued.get(task.id)
            pending = queued[1] if queued is not None else writing
            if new_cause and (pending is None or reason_kind(pending) != reason_kind(reason)):
                # What no change of load will cure is worth an operator's eye.
                # A node that is stopping (a restart, a deploy) needs no hand.
                needs_hand = reason.startswith(_NEEDS_A_HAND) and not reason.endswith("is stopping")
                level = logging.WARNING if needs_hand else logging.INFO
                logger.log(level, "task %s waits: %s", task.id, reason)
            self._queued[task.id] = (task, reason)
            self._cond.notify()

    def forget(self, task_id: str) -> None:
        """``task_id`` no longer waits (placed, ended, gone): drop what is known of it."""
        with self._cond:
            self._queued.pop(task_id, None)
            self._written.pop(task_id, None)

    def written(self, task_id: str) -> str | None:
        """The reason last written for ``task_id`` by this writer, if any."""
        with self._cond:
            found = self._written.get(task_id)
            return found[0] if found else None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._queued:
                    self._cond.wait()
                if self._stopping:
                    return
                task_id = next(iter(self._queued))
                task, reason = self._queued.pop(task_id)
                self._writing[task_id] = reason
            try:
                self._write(task, reason)
            finally:
                with self._cond:
                    self._writing.pop(task_id, None)

    def _write(self, task: Task, reason: str) -> None:
        try:
            self.store.apply(pending(task, reason))
        except (StaleWrite, InvalidTransition, TaskNotFound):
            return  # placed, changed or gone meanwhile: the next round sees it as it is
        except BackendUnavailable as exc:
            logger.debug("task %s: reason not written now: %s", task.id, exc)
            return  # offered again by a later round
        except SkaldsError:
            self.errors += 1
            logger.exception("task %s: reason not written", task.id)
            return
        with self._cond:
            self._written[task.id] = (reason, time.monotonic())
