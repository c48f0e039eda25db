"""The node's store writes, made in order on a thread of their own and retried while a
backend is away.

A worker that starts, applies an update or ends must be recorded even if MongoDB (or Redis)
is unreachable at that moment: otherwise its record says Assigning or Running forever. The
supervisor hands each record to the :class:`Outbox` and goes back to watching workers at once;
the outbox thread makes the writes in submission order (so one task's writes keep their
order) and retries one that fails with ``BackendUnavailable``, with backoff, until it goes
through.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from skalds.errors import BackendUnavailable

logger = logging.getLogger(__name__)


class Outbox:
    """An ordered queue of writes with one thread making them. Thread-safe."""

    def __init__(self, name: str = "skalds-outbox", max_backoff_s: float = 5.0) -> None:
        self._items: collections.deque[Callable[[], None]] = collections.deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closing = False
        self._max_backoff_s = max_backoff_s
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, write: Callable[[], None]) -> None:
        """Queue ``write``; it runs after every write submitted before it."""
        with self._cond:
            self._items.append(write)
            self._cond.notify_all()

    def pending(self) -> int:
        """Writes queued or under way."""
        with self._cond:
            return len(self._items) + self._busy

    def close(self, timeout_s: float = 5.0) -> None:
        """Make the queued writes (for up to ``timeout_s``), then stop the thread."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while (self._items or self._busy) and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            if self._items:
                logger.error("%d store write(s) not made before shutdown", len(self._items))
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=2)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                write = self._items.popleft()
                self._busy = True
            try:
                self._make(write)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _make(self, write: Callable[[], None]) -> None:
        backoff_s = 0.1
        while True:
            try:
                write()
                if backoff_s > 0.1:
                    logger.info("deferred store writes resumed")
                return
            except BackendUnavailable as exc:
                if self._closing:
                    return
                logger.warning("store write deferred, retrying in %.1fs: %s", backoff_s, exc)
                time.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self._max_backoff_s)
            except Exception:
                logger.exception("store write failed; dropped")
                return
