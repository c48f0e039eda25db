"""Watches every worker process of a node from one thread.

The supervisor owns the node's launcher and the node's ends of the worker pipes. Its thread
waits on all of them at once (plus a wake-up pipe and the nearest deadline), so a node with
500 workers costs one thread, and a slow or dead worker never blocks the others. It tells the
node agent what happened through a :class:`SupervisorListener`.
"""

from __future__ import annotations

import itertools
import logging
import os
import selectors
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

from skalds.core.task import TaskError
from skalds.node.launcher import LauncherClient, exit_description

logger = logging.getLogger(__name__)


@dataclass(eq=False)  # identity: handles live in sets and as selector data
class WorkerHandle:
    """What the node knows of one worker process."""

    task_id: str
    epoch: int
    launch_id: int
    conn: Connection
    launched_at: float  # monotonic
    pid: int | None = None
    last_seen: float = 0.0  # monotonic, last message from the worker
    started: bool = False
    progress: float | None = None
    message: str | None = None
    sent_version: int = 0
    applied_version: int = 0
    outcome: tuple[Any, ...] | None = None  # ("finished", t) / ("failed", message, traceback)
    stop_reason: str | None = None  # why the node is stopping it, if it is
    kill_stage: int = 0  # 0 asked nicely, 1 SIGTERM sent, 2 SIGKILL sent
    deadline: float | None = None  # monotonic time of the next escalation
    eof: bool = False
    returncode: int | None = None
    exited: bool = False
    send_lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, *message: Any) -> bool:
        """Send a command to the worker; False if it is gone already."""
        with self.send_lock:
            try:
                self.conn.send(message)
                return True
            except OSError:
                return False


@dataclass(frozen=True)
class WorkerExit:
    """How a worker ended. ``kind`` is ``finished``, ``failed``, ``stopped`` (the node
    stopped it on purpose) or ``lost`` (no heartbeat: a candidate for a retry)."""

    kind: str
    error: TaskError | None = None


class SupervisorListener(Protocol):
    """Callbacks, all made on the supervisor thread, never concurrently."""

    def on_started(self, handle: WorkerHandle, started_at: float) -> None: ...
    def on_applied(self, handle: WorkerHandle, version: int, applied_at: float) -> None: ...
    def on_update_failed(self, handle: WorkerHandle, version: int, message: str) -> None: ...
    def on_exit(self, handle: WorkerHandle, result: WorkerExit) -> None: ...


@dataclass(frozen=True)
class SupervisorSettings:
    """Timings of worker supervision, in seconds."""

    heartbeat_interval_s: float = 1.0
    heartbeat_timeout_s: float = 10.0
    cancel_grace_s: float = 3.0
    terminate_grace_s: float = 2.0
    log_level: str = "INFO"


class Supervisor:
    """Starts, watches and stops worker processes."""

    def __init__(self, settings: SupervisorSettings, preload: list[str], listener: SupervisorListener) -> None:
        self.settings = settings
        self.listener = listener
        self.launcher = LauncherClient(preload, settings.log_level)
        self._lock = threading.Lock()
        self._gone = threading.Condition(self._lock)  # notified whenever a worker is forgotten
        self._handles: dict[int, WorkerHandle] = {}  # by launch id
        self._by_pid: dict[int, WorkerHandle] = {}
        self._early_exits: dict[int, int] = {}  # pid -> returncode, exits seen before "launched"
        self._ids = itertools.count(1)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        # One epoll set, kept across iterations: re-registering N pipes on every wake-up
        # (what multiprocessing.connection.wait does) costs O(N) per heartbeat, O(N^2) a second.
        self._selector = selectors.DefaultSelector()
        self._new: list[WorkerHandle] = []  # launched, not yet registered (by the watching thread)
        self._stopping: set[WorkerHandle] = set()  # handles with an escalation deadline
        self._next_scan = 0.0  # monotonic time of the next heartbeat-timeout scan
        self._running = False
        self._thread = threading.Thread(target=self._loop, name="skalds-supervisor", daemon=True)

    # ---- API for the agent (any thread) ------------------------------------------
    def start(self) -> None:
        """Start the launcher (imports worker code) and the watching thread."""
        self.launcher.start()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._selector.register(self.launcher.fileno(), selectors.EVENT_READ, self.launcher)
        self._running = True
        self._thread.start()

    def launch(self, task_id: str, epoch: int, spec: dict[str, Any]) -> WorkerHandle:
        """Fork a worker for ``spec``; returns at once, ``on_started`` follows."""
        launch_id = next(self._ids)
        # Hold the lock across the request so the "launched" reply finds the handle.
        with self._lock:
            conn = self.launcher.launch(launch_id, spec)
            now = time.monotonic()
            handle = WorkerHandle(
                task_id, epoch, launch_id, conn, now, last_seen=now, sent_version=spec.get("version", 0)
            )
            self._handles[launch_id] = handle
            self._new.append(handle)
        self._wake()
        return handle

    def stop(self, handle: WorkerHandle, reason: str, grace_s: float | None = None) -> None:
        """Stop a worker: stop flag now, SIGTERM after the grace period, SIGKILL after that."""
        with self._lock:
            if handle.stop_reason is not None or handle.exited:
                return
            handle.stop_reason = reason
            grace = self.settings.cancel_grace_s if grace_s is None else grace_s
            handle.deadline = time.monotonic() + grace
            self._stopping.add(handle)
        handle.send("cancel")
        self._wake()

    def handles(self) -> list[WorkerHandle]:
        """Snapshot of the live workers."""
        with self._lock:
            return list(self._handles.values())

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop every worker (cooperatively first), wait for them, stop the launcher."""
        for handle in self.handles():
            self.stop(handle, "node shutting down")
        deadline = time.monotonic() + timeout_s
        with self._gone:
            while self._handles and (left := deadline - time.monotonic()) > 0:
                self._gone.wait(left)
        self._running = False
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self.launcher.stop()

    # ---- the watching thread -----------------------------------------------------
    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # a wake-up is pending already

    def _loop(self) -> None:
        while self._running:
            try:
                self._step()
            except Exception:
                logger.exception("supervisor step failed; carrying on")

    def _step(self) -> None:
        with self._lock:
            new, self._new = self._new, []
        for handle in new:
            self._selector.register(handle.conn.fileno(), selectors.EVENT_READ, handle)
        for key, _ in self._selector.select(self._escalate()):
            if key.data is None:
                os.read(self._wake_r, 4096)
            elif key.data is self.launcher:
                self._from_launcher()
            else:
                self._from_worker(key.data)

    def _escalate(self) -> float:
        """Send due signals, now and then kill silent workers; return how long the loop
        may sleep. Costs O(workers being stopped), plus O(N) once per heartbeat interval."""
        now = time.monotonic()
        if now >= self._next_scan:
            self._next_scan = now + self.settings.heartbeat_interval_s
            timeout = self.settings.heartbeat_timeout_s
            for h in self.handles():
                if h.stop_reason is None and not h.exited and now - h.last_seen > timeout:
                    logger.warning(
                        "task %s: no heartbeat for %.1fs; killing pid %s", h.task_id, now - h.last_seen, h.pid
                    )
                    with self._lock:
                        h.stop_reason = "lost"
                        h.kill_stage, h.deadline = 1, now
                        self._stopping.add(h)
        sleep = max(0.0, self._next_scan - now)
        with self._lock:
            stopping = list(self._stopping)
        for h in stopping:
            if h.exited or h.deadline is None:
                continue
            if h.pid is not None and now >= h.deadline:
                sig = signal.SIGTERM if h.kill_stage == 0 else signal.SIGKILL
                if h.kill_stage < 2:
                    logger.info("task %s: sending %s to pid %s", h.task_id, sig.name, h.pid)
                    _signal(h.pid, sig)
                    h.kill_stage += 1
                h.deadline = now + self.settings.terminate_grace_s
            sleep = min(sleep, max(0.0, h.deadline - now))
        return sleep

    def _from_launcher(self) -> None:
        message = self.launcher.receive()
        if message is None:
            logger.error("worker launcher died; its workers die with it")
            self._running = False
            return
        kind = message[0]
        with self._lock:
            if kind == "launched":
                _, launch_id, pid = message
                handle = self._handles.get(launch_id)
                if handle is None:
                    return
                handle.pid = pid
                self._by_pid[pid] = handle
                if pid in self._early_exits:
                    handle.returncode, handle.exited = self._early_exits.pop(pid), True
            elif kind == "exited":
                _, pid, returncode = message
                handle = self._by_pid.get(pid)
                if handle is None:
                    self._early_exits[pid] = returncode
                    return
                handle.returncode, handle.exited = returncode, True
            else:
                return
        self._maybe_finish(handle)

    def _from_worker(self, h: WorkerHandle) -> None:
        try:
            while h.conn.poll():
                self._handle_message(h, h.conn.recv())
        except (EOFError, OSError):
            h.eof = True
            self._selector.unregister(h.conn.fileno())
            self._maybe_finish(h)

    def _handle_message(self, h: WorkerHandle, message: tuple[Any, ...]) -> None:
        h.last_seen = time.monotonic()
        kind = message[0]
        if kind == "hb":
            _, _, h.progress, h.message = message
        elif kind == "started":
            h.started = True
            self.listener.on_started(h, message[1])
        elif kind == "applied":
            h.applied_version = max(h.applied_version, message[1])
            self.listener.on_applied(h, message[1], message[2])
        elif kind == "update_failed":
            self.listener.on_update_failed(h, message[1], message[2])
        elif kind in ("finished", "failed", "stopped"):
            h.outcome = message

    def _maybe_finish(self, h: WorkerHandle) -> None:
        if not (h.eof and h.exited):
            return
        with self._lock:
            self._stopping.discard(h)
            if self._handles.pop(h.launch_id, None) is None:
                return
            self._gone.notify_all()
            if h.pid is not None:
                self._by_pid.pop(h.pid, None)
        h.conn.close()
        self.listener.on_exit(h, _result(h))


def _result(h: WorkerHandle) -> WorkerExit:
    if h.stop_reason == "lost":
        return WorkerExit(
            "lost", TaskError(message=f"no heartbeat; worker {exit_description(h.returncode)}", exit_code=h.returncode)
        )
    if h.stop_reason is not None:
        return WorkerExit("stopped")
    if h.outcome is not None and h.outcome[0] == "stopped":
        # Someone else sent SIGTERM: the work was interrupted, not done; worth a retry.
        return WorkerExit(
            "lost", TaskError(message="worker terminated by SIGTERM from outside Skalds", exit_code=h.returncode)
        )
    if h.outcome is not None and h.outcome[0] == "failed":
        return WorkerExit("failed", TaskError(message=h.outcome[1], traceback=h.outcome[2], exit_code=h.returncode))
    if h.outcome is not None and h.returncode == 0:
        return WorkerExit("finished")
    return WorkerExit(
        "failed", TaskError(message=f"worker process {exit_description(h.returncode)}", exit_code=h.returncode)
    )


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
