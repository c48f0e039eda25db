"""The inside of one worker process: runs the user's hooks and talks to the node.

The node and the worker share one duplex pipe. Down come ``update``, ``pause``, ``resume``,
``cancel``; up go ``started``, ``hb`` (heartbeat with progress), ``applied``,
``update_failed``, ``finished``, ``failed``, ``stopped`` (ended by SIGTERM). Messages are small tuples.

Two threads: the main thread runs the hooks; the channel thread receives commands, calls the
update handler and sends heartbeats, so a busy main loop never delays either.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from skalds.worker.baseclass import BaseTaskWorker, TaskStopped
from skalds.worker.registry import load_class

logger = logging.getLogger(__name__)


class Channel:
    """The worker's end of the pipe; ``send`` is safe from both threads."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    def send(self, *message: Any) -> None:
        with self._lock:
            try:
                self.conn.send(message)
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass  # the node is gone; the launcher's death signal ends us soon


def _listen(worker: BaseTaskWorker[Any], channel: Channel, interval_s: float) -> None:
    control = worker._control
    next_beat = time.monotonic() + interval_s
    while True:
        timeout = max(0.0, next_beat - time.monotonic())
        try:
            ready = channel.conn.poll(timeout)
            message = channel.conn.recv() if ready else None
        except (EOFError, OSError):
            # The node dropped us: stop as if cancelled.
            control.stop_event.set()
            control.running_event.set()
            return
        if message is None:
            channel.send("hb", time.time(), control.progress, control.message)
            next_beat = time.monotonic() + interval_s
            continue
        kind = message[0]
        if kind == "update":
            _, version, attachments = message
            try:
                worker.apply_update(attachments)
            except Exception as exc:
                logger.exception("update %s of task %s failed", version, worker.task_id)
                channel.send("update_failed", version, f"{type(exc).__name__}: {exc}")
            else:
                channel.send("applied", version, time.time())
        elif kind == "pause":
            control.running_event.clear()
        elif kind == "resume":
            control.running_event.set()
        elif kind == "cancel":
            control.stop_event.set()
            control.running_event.set()


def _on_sigterm(signum: int, frame: Any) -> None:
    raise TaskStopped("terminated")


def run_worker(conn: Connection, spec: dict[str, Any]) -> int:
    """Run one task to its end in this process and return the exit code (0 ok, 1 failed).

    ``spec`` holds ``task_id``, ``class_path``, ``attachments``, ``version``, ``paused`` and
    ``heartbeat_interval_s``.
    """
    channel = Channel(conn)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the node, which stops us in order
    try:
        cls = load_class(spec["class_path"])
        worker = cls()
        worker.task_id = spec["task_id"]
        if spec.get("paused"):
            worker._control.running_event.clear()
        worker.initialize(cls.data_model().model_validate(spec["attachments"]))
        listener = threading.Thread(
            target=_listen, args=(worker, channel, spec["heartbeat_interval_s"]), name="skalds-channel", daemon=True
        )
        listener.start()
        channel.send("started", time.time(), os.getpid())
        worker.run_lifecycle()
    except TaskStopped:
        channel.send("stopped", time.time())
        return 0
    except BaseException as exc:
        channel.send("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc())
        return 1
    channel.send("finished", time.time())
    return 0
