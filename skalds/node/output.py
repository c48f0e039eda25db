"""What worker processes print: read from their pipes, shipped to the live state, shown on the
node's console.

A worker's stdout and stderr are pipes the node holds the read ends of (the launcher puts the
write ends in place of the worker's fds 1 and 2), so every byte a task writes is captured, from
``print`` and ``logging`` to what a C library or a dying interpreter writes, even when the
worker is killed. The supervisor thread reads the pipes (:class:`OutputPipe`, never blocking)
and hands whole lines to the :class:`OutputShipper`, whose own thread appends them to the live
state in one call per interval and echoes them to the node's own stdout and stderr, so neither
a slow backend nor a slow terminal ever delays supervision.

Bounds: a line longer than :data:`MAX_LINE_BYTES` is cut; a task whose output outruns shipping
keeps its newest :attr:`OutputSettings.pending_lines` lines and gets a note of how many were
dropped; the live state keeps each task's last :attr:`OutputSettings.keep_lines` lines.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from skalds.config.schema import DEFAULTS
from skalds.core.records import LogLine
from skalds.core.task import now_ms
from skalds.errors import BackendUnavailable
from skalds.ports.live_state import LiveState


class Run(Protocol):
    """Which run of which task wrote a line (a supervisor's ``WorkerHandle``)."""

    task_id: str
    epoch: int
    attempt: int


logger = logging.getLogger(__name__)

#: A longer line is cut into pieces of this many bytes.
MAX_LINE_BYTES = 16 * 1024
#: Bytes read from one pipe per turn of the supervisor loop.
READ_BYTES = 64 * 1024
#: A logging record as :func:`skalds.utils.logging.configure_logging` formats it: time, level.
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")


@dataclass(frozen=True)
class OutputSettings:
    """``node.output_*``: how much of each task's output is kept, and where it is shown."""

    keep_lines: int = DEFAULTS.node.output_keep_lines
    retention_s: float = DEFAULTS.node.output_retention_s
    echo: bool = DEFAULTS.node.output_echo
    interval_s: float = 0.2
    pending_lines: int = 10_000


class OutputPipe:
    """The node's read end of one worker stream, cut into lines."""

    def __init__(self, handle: Run, stream: str, fd: int) -> None:
        self.handle = handle
        self.stream = stream
        self.fd = fd
        self._partial = b""
        self.closed = False

    def read(self) -> tuple[list[str], bool]:
        """Read what is there now: the whole lines, and whether the worker's end is closed."""
        try:
            data = os.read(self.fd, READ_BYTES)
        except BlockingIOError:
            return [], False
        except OSError:
            data = b""
        if not data:
            return self._flush(), True
        return self._lines(data), False

    def drain(self) -> list[str]:
        """Everything left in the pipe (the worker exited), then close it."""
        lines: list[str] = []
        while not self.closed:
            more, eof = self.read()
            lines.extend(more)
            if eof or not more:
                lines.extend(self._flush())
                self.close()
        return lines

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)

    def _lines(self, data: bytes) -> list[str]:
        chunks = (self._partial + data).split(b"\n")
        self._partial = chunks.pop()
        pieces: list[bytes] = []
        for chunk in chunks:
            pieces.extend(_cut(chunk))
        *whole, self._partial = _cut(self._partial)  # a long unfinished line: its full pieces now
        pieces.extend(whole)
        return [_text(piece) for piece in pieces]

    def _flush(self) -> list[str]:
        rest, self._partial = self._partial, b""
        return [_text(rest)] if rest else []


def _cut(raw: bytes) -> list[bytes]:
    """``raw`` in pieces of at most :data:`MAX_LINE_BYTES` (one piece, maybe empty, if short)."""
    if len(raw) <= MAX_LINE_BYTES:
        return [raw]
    return [raw[i : i + MAX_LINE_BYTES] for i in range(0, len(raw), MAX_LINE_BYTES)]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")


def levels(texts: list[str]) -> list[str | None]:
    """The logging level of each line: that of the record it starts, or, for the lines that
    follow a record in the same read (a traceback, a multi-line message), that record's; None
    for plain output."""
    found: list[str | None] = []
    current: str | None = None
    for text in texts:
        match = _RECORD.match(text)
        if match is not None:
            current = match.group(1)
        found.append(current)
    return found


def _bounded(lines: list[LogLine], bound: int) -> tuple[list[LogLine], int]:
    """The newest ``bound`` of ``lines``, and how many older ones that leaves out."""
    return (lines[-bound:], len(lines) - bound) if len(lines) > bound else (lines, 0)


@dataclass
class OutputShipper:
    """Collects the lines the supervisor reads and ships them from a thread of its own."""

    node_id: str
    live: LiveState
    settings: OutputSettings = field(default_factory=OutputSettings)
    console: Callable[[str], TextIO | None] = lambda stream: sys.stderr if stream == "stderr" else sys.stdout

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._new: dict[str, deque[LogLine]] = {}  # read, not yet echoed nor shipped
        self._dropped: dict[str, int] = {}  # per task, since the last ship
        self._unshipped: dict[str, list[LogLine]] = {}  # echoed, the live state was away
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="skalds-output", daemon=True)
        self.shipped = 0
        self.dropped = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ship what is pending (one last try) and stop."""
        with self._lock:
            self._stopped = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def lines(self, handle: Run, stream: str, texts: list[str]) -> None:
        """Lines of one read of ``handle``'s ``stream`` (supervisor thread: never blocks)."""
        if not texts:
            return
        at = now_ms()
        records = [
            LogLine(at, stream, text, self.node_id, handle.epoch, handle.attempt, level)
            for text, level in zip(texts, levels(texts), strict=True)
        ]
        with self._lock:
            pending = self._new.get(handle.task_id)
            if pending is None:
                pending = self._new[handle.task_id] = deque(maxlen=self.settings.pending_lines)
            overflow = len(pending) + len(records) - self.settings.pending_lines
            if overflow > 0:  # the deque forgets the oldest as the newest go in
                self._dropped[handle.task_id] = self._dropped.get(handle.task_id, 0) + overflow
            pending.extend(records)

    def flush(self) -> None:
        """Echo what was read since the last flush, then ship it with whatever an earlier
        flush could not ship."""
        with self._lock:
            new, self._new = self._new, {}
            dropped, self._dropped = self._dropped, {}
            ship, self._unshipped = self._unshipped, {}
        if not new and not ship:
            return
        if self.settings.echo:
            self._echo(new)
        bound = self.settings.pending_lines
        for task_id, read in new.items():
            lines = list(read)
            lost = dropped.get(task_id, 0)
            if lost:
                self.dropped += lost
                lines.insert(0, self._note(lines[0], lost))
            ship[task_id], cut = _bounded(ship.get(task_id, []) + lines, bound)
            self.dropped += cut
        try:
            self.live.append_logs(ship, self.settings.keep_lines, self.settings.retention_s)
        except BackendUnavailable as exc:
            logger.debug("task output not shipped yet: %s", exc)
            with self._lock:
                for task_id, lines in ship.items():  # a later flush tries again
                    self._unshipped[task_id] = lines
            return
        self.shipped += sum(len(lines) for lines in ship.values())

    def _note(self, first: LogLine, lost: int) -> LogLine:
        text = f"[skalds] {lost} line(s) dropped: the task wrote faster than its output could be shipped"
        return LogLine(first.at, "skalds", text, self.node_id, first.epoch, first.attempt, "WARNING")

    def _echo(self, new: dict[str, deque[LogLine]]) -> None:
        for lines in new.values():
            for line in lines:
                target = self.console(line.stream)
                if target is not None:
                    try:
                        target.write(line.text + "\n")
                    except (OSError, ValueError):
                        pass
        for stream in ("stdout", "stderr"):
            target = self.console(stream)
            if target is not None:
                try:
                    target.flush()
                except (OSError, ValueError):
                    pass

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._stopped:
                    self._wake.wait(self.settings.interval_s)
                stopped = self._stopped
            try:
                self.flush()
            except Exception:
                logger.exception("shipping task output failed; carrying on")
            if stopped:
                return
