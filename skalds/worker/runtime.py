"""The inside of one worker process: runs the user's hooks and talks to its node.

Three threads, so that user code never delays what keeps the task alive and controllable:

- the **main thread** runs the lifecycle hooks (before, main, after, release);
- the **channel thread** receives commands, sends heartbeats and watches the node's lease; it
  never runs user code, so a cancel or a heartbeat is never stuck behind a hook;
- the **update thread** runs ``update_event_handler`` calls one at a time (a newer update that
  arrives meanwhile replaces one not yet started: handlers see the latest attachments).

When its node's lease is not renewed in time (the node is frozen, or cut off from the live
state), a worker whose task another node could take over stops itself: the stop flag first,
then ``TaskStopped`` in the main thread (its release handler still runs), then a hard exit, all
before the lease runs out, so a task never runs twice.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from pydantic import BaseModel

from skalds.worker.baseclass import BaseTaskWorker, TaskStopped
from skalds.worker.protocol import (
    EXIT_SELF_FENCED,
    Applied,
    Beat,
    Cancel,
    Failed,
    Finished,
    LeaseValid,
    Pause,
    Resume,
    Started,
    StopCause,
    Stopped,
    Update,
    UpdateFailed,
    WorkerSpec,
)
from skalds.worker.registry import load_class

logger = logging.getLogger(__name__)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _now_us() -> int:
    return time.time_ns() // 1_000


class SpareThreads:
    """Threads started before their work is known, each taking one job later.

    The first threads of a fresh fork cost 0.5-1.4 ms to start (stack, thread arena, first
    page faults); a zygote starts them while it waits, so a task's start hands them their jobs
    instead. Without spares (a worker forked on demand), ``start`` starts a thread as usual.
    """

    def __init__(self) -> None:
        self._idle: list[queue.SimpleQueue[tuple[Callable[[], None], str]]] = []

    def add(self, count: int) -> None:
        for _ in range(count):
            jobs: queue.SimpleQueue[tuple[Callable[[], None], str]] = queue.SimpleQueue()
            threading.Thread(target=self._wait, args=(jobs,), name="skalds-spare", daemon=True).start()
            self._idle.append(jobs)

    @staticmethod
    def _wait(jobs: queue.SimpleQueue[tuple[Callable[[], None], str]]) -> None:
        target, name = jobs.get()
        threading.current_thread().name = name
        target()

    def start(self, target: Callable[[], None], name: str) -> None:
        """Run ``target`` on a spare thread, or on a new one."""
        if self._idle:
            self._idle.pop().put((target, name))
        else:
            threading.Thread(target=target, name=name, daemon=True).start()


#: This process's spare threads (a worker needs two: its channel and its updates).
_spares = SpareThreads()


class _RehearsalModel(BaseModel):
    value: int = 0


class _Rehearsal(BaseTaskWorker[_RehearsalModel]):
    """The worker a zygote builds (and drops) while it waits for a task."""


def rehearse() -> None:
    """Go once through a worker's start without a task, in a zygote that waits for one.

    A fork shares its parent's memory until it writes to it, and the first write to each page
    copies the page: a worker's start touches a few hundred pages (pickle, pydantic, its
    threads) that cost more than the work itself. Done here, while the zygote is idle, those
    copies are made before the task arrives; the worker's memory is the same once it runs.
    """
    _spares.add(2)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sender, receiver = Connection(ours.detach()), Connection(theirs.detach())
    try:
        spec = WorkerSpec(
            task_id="rehearsal",
            class_name="_Rehearsal",
            class_path=f"{__name__}:_Rehearsal",
            attachments={},
            version=0,
            epoch=0,
            node_id="",
            paused=False,
            heartbeat_interval_s=1.0,
            log_level="INFO",
        )
        sender.send(spec)
        spec = receiver.recv()
    finally:
        sender.close()
        receiver.close()
    cls = load_class(spec.class_path)
    worker = cls()
    worker.initialize(cls.data_model().model_validate(spec.attachments))


class Channel:
    """The worker's end of the pipe; ``send`` is safe from every thread."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    def send(self, message: Any) -> None:
        with self._lock:
            try:
                self.conn.send(message)
            except OSError:
                pass  # the node is gone; the launcher's death signal ends us soon


class Updater:
    """Runs update handlers on a thread of their own, newest update first."""

    def __init__(self, worker: BaseTaskWorker[Any], channel: Channel) -> None:
        self.worker = worker
        self.channel = channel
        self._pending: Update | None = None
        self._cond = threading.Condition()
        _spares.start(self._run, "skalds-updates")

    def submit(self, update: Update) -> None:
        with self._cond:
            if self._pending is None or update.version > self._pending.version:
                self._pending = update
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None:
                    self._cond.wait()
                update, self._pending = self._pending, None
            try:
                self.worker.apply_update(update.attachments)
            except Exception as exc:
                logger.exception("update %s of task %s failed", update.version, self.worker.task_id)
                self.channel.send(UpdateFailed(update.version, f"{type(exc).__name__}: {exc}"))
            else:
                self.channel.send(Applied(update.version, _now_us()))


class Listener:
    """The channel thread: commands in, heartbeats out, and the lease watch."""

    def __init__(self, worker: BaseTaskWorker[Any], channel: Channel, spec: WorkerSpec) -> None:
        self.worker = worker
        self.channel = channel
        self.interval_s = spec.heartbeat_interval_s
        self.lease = spec.lease
        self.updater = Updater(worker, channel)
        self._terminated = False

    def start(self) -> None:
        _spares.start(self._run, "skalds-channel")

    def _run(self) -> None:
        control = self.worker._control
        next_beat = time.monotonic() + self.interval_s
        while True:
            now = time.monotonic()
            wake = next_beat if self.lease is None else min(next_beat, _next_step(self.lease, now))
            try:
                message = self.channel.conn.recv() if self.channel.conn.poll(max(0.0, wake - now)) else None
            except (EOFError, OSError):
                # The node dropped us: stop as if cancelled.
                control.request_stop(StopCause.REQUESTED)
                return
            if isinstance(message, Update):
                self.updater.submit(message)
            elif isinstance(message, LeaseValid):
                self.lease = message
            elif isinstance(message, Pause):
                control.running_event.clear()
            elif isinstance(message, Resume):
                control.running_event.set()
            elif isinstance(message, Cancel):
                control.request_stop(StopCause.REQUESTED)
            now = time.monotonic()
            if now >= next_beat:
                self.channel.send(Beat(_now_ms(), control.progress, control.message))
                next_beat = now + self.interval_s
            if self.lease is not None:
                self._watch_lease(now)

    def _watch_lease(self, now: float) -> None:
        lease = self.lease
        if lease is None or now < lease.stop_at:
            return
        control = self.worker._control
        if control.stop_cause is None:
            # Logged from a thread of its own: stderr is a pipe the (maybe frozen) node reads,
            # and this thread must never wait on it, or it could not stop the worker in time.
            threading.Thread(
                target=logger.warning,
                args=("task %s: node lease not renewed in time; stopping this copy", self.worker.task_id),
                daemon=True,
            ).start()
        control.request_stop(StopCause.SELF_FENCED)
        if now >= lease.exit_at:
            self.channel.send(Stopped(_now_ms(), StopCause.SELF_FENCED))
            os._exit(EXIT_SELF_FENCED)  # no flush of stdout or stderr: either may be full
        if now >= lease.terminate_at and not self._terminated:
            self._terminated = True
            os.kill(os.getpid(), signal.SIGTERM)  # TaskStopped in the main thread


def _next_step(lease: LeaseValid, now: float) -> float:
    """When the lease watch must look next."""
    for step in (lease.stop_at, lease.terminate_at, lease.exit_at):
        if step > now:
            return step
    return now + 0.01


def _on_sigterm(signum: int, frame: Any) -> None:
    raise TaskStopped("terminated")


def run_worker(conn: Connection, spec: WorkerSpec) -> int:
    """Run one task to its end in this process and return the exit code (0 finished or
    stopped on request, 1 failed, :data:`EXIT_SELF_FENCED`)."""
    channel = Channel(conn)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the node, which stops us in order
    worker: BaseTaskWorker[Any] | None = None
    try:
        cls = load_class(spec.class_path)
        worker = cls()
        worker.task_id, worker.epoch, worker.node_id, worker.attempt = (
            spec.task_id,
            spec.epoch,
            spec.node_id,
            spec.attempt,
        )
        if spec.paused:
            worker._control.running_event.clear()
        worker.initialize(cls.data_model().model_validate(spec.attachments))
        Listener(worker, channel, spec).start()
        channel.send(Started(_now_us(), os.getpid()))
        worker.run_lifecycle()
    except TaskStopped:
        cause = worker._control.stop_cause if worker is not None else None
        return _stopped(channel, cause or StopCause.TERMINATED)
    except BaseException as exc:
        channel.send(Failed(f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        return 1
    if worker is not None and worker._control.stop_cause is not None:
        return _stopped(channel, worker._control.stop_cause)
    channel.send(Finished(_now_ms()))
    return 0


def _stopped(channel: Channel, cause: StopCause) -> int:
    channel.send(Stopped(_now_ms(), cause))
    return EXIT_SELF_FENCED if cause is StopCause.SELF_FENCED else 0
