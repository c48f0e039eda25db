"""Watches every worker process of a node from one thread.

The supervisor owns the node's launcher and the node's ends of the worker pipes (commands and
messages, stdout, stderr). Its thread waits on all of them at once (plus a wake-up pipe and the
nearest deadline), so a node with 500 workers costs one thread, and a slow or dead worker never
blocks the others. It tells the node agent what happened through a :class:`SupervisorListener`
and hands what workers print, line by line, to an :data:`OutputSink`.

It judges a worker silent only over time it was itself running: after its own thread was
stopped (the whole node frozen by SIGSTOP, a VM pause, heavy swapping) it gives every worker a
full heartbeat timeout again instead of killing them all for a silence that was its own.
"""

from __future__ import annotations

import itertools
import logging
import os
import selectors
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Protocol

from skalds.config.schema import DEFAULTS
from skalds.core.events import ExitKind
from skalds.core.task import TaskError
from skalds.node.launcher import LauncherClient, exit_description
from skalds.node.output import OutputPipe, Run
from skalds.worker.protocol import (
    EXIT_SELF_FENCED,
    Applied,
    Beat,
    Cancel,
    Exited,
    Failed,
    Finished,
    FromWorker,
    Launched,
    Outcome,
    Started,
    StopCause,
    Stopped,
    ToWorker,
    UpdateFailed,
    WorkerSpec,
)

logger = logging.getLogger(__name__)


@dataclass(eq=False)  # identity: handles live in sets and as selector data
class WorkerHandle:
    """What the node knows of one worker process."""

    task_id: str
    epoch: int
    attempt: int
    launch_id: int
    conn: Connection
    launched_at: float  # monotonic
    self_fencing: bool = False  # the worker stops itself when the node's lease lapses
    pinned: bool = False  # an edge's own task: no other node may run it
    class_name: str = ""  # the worker class it runs
    pid: int | None = None
    last_seen: float = 0.0  # monotonic, last message from the worker
    started: bool = False
    started_ms: int | None = None
    progress: float | None = None
    message: str | None = None
    paused: bool = False
    sent_version: int = 0
    applied_version: int = 0
    outcome: Outcome | None = None
    stop_reason: str | None = None  # why the node is stopping it, if it is
    preempted: bool = False  # stopped for a higher priority task: its task goes back to waiting
    kill_stage: int = 0  # 0 asked nicely, 1 SIGTERM sent, 2 SIGKILL sent
    deadline: float | None = None  # monotonic time of the next escalation
    eof: bool = False
    returncode: int | None = None
    exited: bool = False
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    outputs: list[OutputPipe] = field(default_factory=list)  # stdout, stderr

    def send(self, message: ToWorker) -> bool:
        """Send a command to the worker; False if it is gone already."""
        with self.send_lock:
            try:
                self.conn.send(message)
                return True
            except OSError:
                return False


@dataclass(frozen=True)
class WorkerExit:
    """How a worker ended, and the error worth recording when it failed or was lost."""

    kind: ExitKind
    error: TaskError | None = None


class SupervisorListener(Protocol):
    """Callbacks, all made on the supervisor thread, never concurrently."""

    def on_started(self, handle: WorkerHandle, started_us: int) -> None: ...
    def on_applied(self, handle: WorkerHandle, version: int, applied_us: int) -> None: ...
    def on_update_failed(self, handle: WorkerHandle, version: int, message: str) -> None: ...
    def on_exit(self, handle: WorkerHandle, result: WorkerExit) -> None: ...


#: Receives the lines a worker wrote to one stream (``stdout`` or ``stderr``), on the
#: supervisor thread, in order; must not block.
OutputSink = Callable[[Run, str, list[str]], None]


def _discard(handle: Run, stream: str, texts: list[str]) -> None:
    pass


@dataclass(frozen=True)
class SupervisorSettings:
    """Timings of worker supervision, in seconds."""

    heartbeat_interval_s: float = DEFAULTS.node.heartbeat_interval_s
    heartbeat_timeout_s: float = DEFAULTS.node.heartbeat_timeout_s
    cancel_grace_s: float = DEFAULTS.node.cancel_grace_s
    terminate_grace_s: float = DEFAULTS.node.terminate_grace_s
    log_level: str = DEFAULTS.log_level
    prefork: int = DEFAULTS.node.prefork


class Supervisor:
    """Starts, watches and stops worker processes."""

    def __init__(
        self,
        settings: SupervisorSettings,
        preload: list[str],
        listener: SupervisorListener,
        title: str = "skalds",
        output: OutputSink = _discard,
    ) -> None:
        self.settings = settings
        self.listener = listener
        self.output = output
        self.launcher = LauncherClient(preload, settings.log_level, f"skalds launcher {title}", settings.prefork)
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
        self._last_escalate = time.monotonic()
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

    def launch(self, spec: WorkerSpec, attempt: int, *, self_fencing: bool, pinned: bool) -> WorkerHandle:
        """Fork a worker for ``spec``; returns at once, ``on_started`` follows.

        Raises:
            LauncherGone: the launcher is not running.
        """
        launch_id = next(self._ids)
        now = time.monotonic()
        # Registered before the request goes out, so the "launched" reply finds the handle.
        handle = WorkerHandle(
            spec.task_id,
            spec.epoch,
            attempt,
            launch_id,
            conn=None,  # type: ignore[arg-type]  # set right below, before anyone reads it
            launched_at=now,
            self_fencing=self_fencing,
            pinned=pinned,
            class_name=spec.class_name,
            last_seen=now,
            paused=spec.paused,
            sent_version=spec.version,
            applied_version=spec.version,
        )
        with self._lock:
            self._handles[launch_id] = handle
        try:
            handle.conn, out, err = self.launcher.launch(launch_id, spec)
            handle.outputs = [OutputPipe(handle, "stdout", out), OutputPipe(handle, "stderr", err)]
        except BaseException:
            with self._lock:
                self._handles.pop(launch_id, None)
            raise
        with self._lock:
            self._new.append(handle)
        self._wake()
        return handle

    def stop(self, handle: WorkerHandle, reason: str, grace_s: float | None = None, *, preempted: bool = False) -> None:
        """Stop a worker: stop flag now, SIGTERM after the grace period, SIGKILL after that.
        ``preempted``: for a higher priority task (its task is handed back once it is gone)."""
        with self._lock:
            if handle.stop_reason is not None or handle.exited:
                return
            handle.stop_reason = reason
            handle.preempted = preempted
            grace = self.settings.cancel_grace_s if grace_s is None else grace_s
            handle.deadline = time.monotonic() + grace
            self._stopping.add(handle)
        handle.send(Cancel())
        self._wake()

    def handles(self) -> list[WorkerHandle]:
        """Snapshot of the live workers."""
        with self._lock:
            return list(self._handles.values())

    def wait_all_gone(self, timeout_s: float) -> bool:
        """Block until no worker is left (their exits reported), or ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        with self._gone:
            while self._handles and (left := deadline - time.monotonic()) > 0:
                self._gone.wait(left)
            return not self._handles

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop every worker (cooperatively first), wait for them, stop the launcher."""
        for handle in self.handles():
            self.stop(handle, "node shutting down")
        if not self.wait_all_gone(timeout_s):
            logger.error(
                "%d worker(s) still running after %.0fs; the launcher's exit kills them", len(self._handles), timeout_s
            )
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
            for pipe in handle.outputs:
                self._selector.register(pipe.fd, selectors.EVENT_READ, pipe)
        for key, _ in self._selector.select(self._escalate()):
            if key.data is None:
                os.read(self._wake_r, 4096)
            elif key.data is self.launcher:
                self._from_launcher()
            elif isinstance(key.data, OutputPipe):
                self._from_output(key.data)
            else:
                self._from_worker(key.data)

    def _escalate(self) -> float:
        """Send due signals, now and then kill silent workers; return how long the loop
        may sleep. Costs O(workers being stopped), plus O(N) once per heartbeat interval."""
        now = time.monotonic()
        gap, self._last_escalate = now - self._last_escalate, now
        if gap > 3 * self.settings.heartbeat_interval_s + 0.5:
            # The loop never sleeps longer than a heartbeat interval: a much longer gap means
            # this thread was not running (node frozen), and the workers' silence over that
            # time proves nothing. Every worker gets a full timeout again.
            logger.warning(
                "node supervisor was not running for %.1fs; giving every worker a fresh heartbeat window", gap
            )
            for h in self.handles():
                h.last_seen = max(h.last_seen, now)
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
        with self._lock:
            if isinstance(message, Launched):
                handle = self._handles.get(message.launch_id)
                if handle is None:
                    return
                handle.pid = message.pid
                self._by_pid[message.pid] = handle
                if message.pid in self._early_exits:
                    handle.returncode, handle.exited = self._early_exits.pop(message.pid), True
            elif isinstance(message, Exited):
                found = self._by_pid.get(message.pid)
                if found is None:
                    self._early_exits[message.pid] = message.returncode
                    return
                handle = found
                handle.returncode, handle.exited = message.returncode, True
            else:
                return
        self._maybe_finish(handle)

    def _from_worker(self, h: WorkerHandle) -> None:
        # One message per readiness: the selector is level-triggered, so a second message
        # already queued makes the next select return at once. (Asking the connection
        # whether more is queued builds a selector of its own each time, which cost more
        # than the message: 500 workers' beats took 5 % of a core.)
        try:
            self._handle_message(h, h.conn.recv())
        except (EOFError, OSError):
            h.eof = True
            self._selector.unregister(h.conn.fileno())
            self._maybe_finish(h)

    def _from_output(self, pipe: OutputPipe) -> None:
        if pipe.closed:
            # Its worker's end was handled earlier in the same batch of ready descriptors
            # (drained and closed): its number may belong to another worker's pipe by now.
            return
        texts, eof = pipe.read()
        if texts:
            self.output(pipe.handle, pipe.stream, texts)
        if eof:
            self._selector.unregister(pipe.fd)
            pipe.close()

    def _handle_message(self, h: WorkerHandle, message: FromWorker) -> None:
        h.last_seen = time.monotonic()
        if isinstance(message, Beat):
            h.progress, h.message = message.progress, message.message
        elif isinstance(message, Started):
            h.started, h.started_ms = True, message.at_us // 1000
            self.listener.on_started(h, message.at_us)
        elif isinstance(message, Applied):
            h.applied_version = max(h.applied_version, message.version)
            self.listener.on_applied(h, message.version, message.at_us)
        elif isinstance(message, UpdateFailed):
            self.listener.on_update_failed(h, message.version, message.error)
        elif isinstance(message, Finished | Failed | Stopped):
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
        for pipe in h.outputs:  # its last words come before its end
            if not pipe.closed:
                self._selector.unregister(pipe.fd)
                self.output(h, pipe.stream, pipe.drain())
        self.listener.on_exit(h, judge_exit(h))


def judge_exit(h: WorkerHandle) -> WorkerExit:
    """How a worker ended, from what the node asked, what the worker said and its exit status."""
    code = h.returncode
    if h.stop_reason == "lost":
        return WorkerExit(
            ExitKind.LOST, TaskError(message=f"no heartbeat; worker {exit_description(code)}", exit_code=code)
        )
    outcome = h.outcome
    if h.preempted and not isinstance(outcome, Finished | Failed):
        return WorkerExit(ExitKind.PREEMPTED)  # (one that ended by itself meanwhile ended so)
    if h.stop_reason is not None and not h.preempted:
        return WorkerExit(ExitKind.STOPPED)
    if code == EXIT_SELF_FENCED or (isinstance(outcome, Stopped) and outcome.cause is StopCause.SELF_FENCED):
        return WorkerExit(ExitKind.SELF_FENCED)
    if isinstance(outcome, Stopped):
        # Someone else sent SIGTERM: the work was interrupted, not done; worth a retry.
        return WorkerExit(
            ExitKind.LOST, TaskError(message="worker terminated by SIGTERM from outside Skalds", exit_code=code)
        )
    if isinstance(outcome, Failed):
        return WorkerExit(
            ExitKind.FAILED, TaskError(message=outcome.message, traceback=outcome.traceback, exit_code=code)
        )
    if isinstance(outcome, Finished) and code == 0:
        return WorkerExit(ExitKind.FINISHED)
    return WorkerExit(ExitKind.LOST, TaskError(message=f"worker process {exit_description(code)}", exit_code=code))


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
