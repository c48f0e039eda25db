"""Places tasks on nodes as soon as they can run: when created or requeued, and as soon as room
frees up.

The dispatcher keeps the tasks that wait for a node in memory (as last read from the store) and
runs a round (:func:`~skalds.core.scheduler.plan_round`) whenever something may let one of them
start: a ``task.assign`` event without an executor (a task created, requeued or handed back;
its record is read once), a status event of a task whose worker ended (its slot is free now) or
of a task waited on as a dependency, a cancel, a change in the set of live nodes, a backoff or
deadline coming due, and the monitor's sweep (which also re-reads every waiting task, so a
missed event costs at most a sweep interval). Events that arrive during a round are served by
the next one, so a burst costs a few rounds, not one per event.

A round reads the live nodes and what their placed tasks hold (two reads, whatever the number of
tasks), decides in memory, then writes: each placement as one conditional ASSIGN announced to
its node (``task.assign`` with executor and epoch), a failure for a task whose start deadline
passed or whose dependency failed, and, through the :class:`~skalds.controller.reasons.ReasonWriter`,
why each other task waits. With ``dispatch.preempt`` a task that finds no room has its node
stop the lowest-priority Running task below it (:mod:`skalds.controller.preemption`); that
node hands the displaced task back once its worker is gone (no retry consumed), which frees
the slot for the next round.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from skalds.controller.preemption import Preemptor
from skalds.controller.reasons import ReasonWriter
from skalds.core.dispatch import Candidate, DispatchPolicy, assignment, needs_placement
from skalds.core.events import ControlEvent, StatusEvent, TaskEvent, Topic, seed_task_ids
from skalds.core.lifecycle import Action, plan
from skalds.core.records import NodeInfo
from skalds.core.scheduler import Round, RoundOptions, plan_round
from skalds.core.task import Task, TaskError, TaskLifecycleStatus, failure_fields, now_ms
from skalds.errors import BackendUnavailable, InvalidTransition, SkaldsError, StaleWrite, TaskNotFound
from skalds.ports.event_bus import Event, EventBus, Subscription
from skalds.ports.live_state import LiveState
from skalds.ports.task_store import TaskStore

logger = logging.getLogger(__name__)
S = TaskLifecycleStatus


@dataclass(frozen=True)
class DispatcherSettings:
    """The ``dispatch:`` config group, as the dispatcher takes it.

    Attributes:
        round: ordering (aging) and stickiness.
        preempt: displace lower priority Running tasks for a task that finds no room.
        spread_label: the label the ``spread`` policy spreads across.
        reason_refresh_s: a queue position in ``pendingReason`` is rewritten at most this often.
        displace_timeout_s: a displacement whose task is still running after this long is
            asked for again (its event was lost, or its node is slow to stop it).
    """

    round: RoundOptions = field(default_factory=RoundOptions)
    preempt: bool = False
    spread_label: str = "zone"
    reason_refresh_s: float = 5.0
    displace_timeout_s: float = 30.0


@dataclass
class _Waiting:
    task: Task
    known_since: float  # monotonic: when this dispatcher learned the task waits


class Dispatcher:
    """The dispatch loop of the controller."""

    def __init__(
        self,
        policy: DispatchPolicy,
        bus: EventBus,
        store: TaskStore,
        live: LiveState,
        settings: DispatcherSettings | None = None,
        group: str = "skalds-dispatcher",
    ) -> None:
        self.policy = policy
        self.group = group
        self.bus = bus
        self.store = store
        self.live = live
        self.settings = settings or DispatcherSettings()
        self.reasons = ReasonWriter(store, self.settings.reason_refresh_s)
        self.preemptor = Preemptor(bus, store, self.settings.displace_timeout_s)
        self.errors = 0
        self.rounds = 0
        self._waiting: dict[str, _Waiting] = {}
        self._incoming: dict[str, None] = {}  # ordered set of task ids to (re)read
        self._dirty = False  # room or a dependency may have changed: a round is worth it
        self._timers: list[tuple[int, str]] = []  # heap of (epoch ms, task id)
        self._timer_of: dict[str, int] = {}  # task id -> its entry in the heap
        self._watched: frozenset[str] = frozenset()  # dependencies of waiting tasks
        self._nodes_seen: frozenset[tuple[object, ...]] = frozenset()
        self._cond = threading.Condition()
        self._round_lock = threading.Lock()  # one round at a time (the loop, or a direct call)
        self._stopping = False
        #: Whether this controller places tasks now (several controllers: only the leader).
        self.leading: Callable[[], bool] = lambda: True
        self._subscription: Subscription | None = None
        self._thread = threading.Thread(target=self._loop, name="skalds-dispatcher", daemon=True)

    # ---- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        """Subscribe to placements, cancels and status changes; start the dispatch thread."""
        topics = [str(Topic.TASK_ASSIGN), str(Topic.TASK_CANCEL), str(Topic.TASKWORKER_UPDATE)]
        self._subscription = self.bus.subscribe(topics, self.group, self._on_event, sole=True)  # a group per controller
        self.reasons.start()
        self._thread.start()

    def stop(self) -> None:
        """Stop consuming and let the threads end."""
        if self._subscription is not None:
            self._subscription.close()
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.reasons.stop()

    # ---- what wakes it ---------------------------------------------------------------
    def submit(self, task_ids: Iterable[str]) -> None:
        """Ask for these tasks to be (re)read and placed (idempotent: placed tasks are skipped)."""
        with self._cond:
            for task_id in task_ids:
                self._incoming[task_id] = None
            self._cond.notify()

    def wake(self) -> None:
        """Room may have freed up, or a dependency moved: run a round."""
        with self._cond:
            self._dirty = True
            self._cond.notify()

    def resync(self, tasks: list[Task], settled_ms: int, read_at: float) -> None:
        """The monitor's sweep: ``tasks`` wait for a node, as read at ``read_at`` (monotonic).

        Known tasks take the fresher copy; unknown ones are taken if they last changed before
        ``settled_ms`` (younger ones still have their event on its way: a seed script creates
        a task, then names its executor); known tasks missing from ``tasks`` no longer wait,
        unless learned of after the read. Then a round runs.
        """
        with self._cond:
            seen = set()
            for task in tasks:
                seen.add(task.id)
                entry = self._waiting.get(task.id)
                if entry is not None:
                    entry.task = task
                elif task.update_date_time < settled_ms:
                    self._waiting[task.id] = _Waiting(task, time.monotonic())
            for task_id, entry in list(self._waiting.items()):
                if task_id not in seen and entry.known_since < read_at:
                    self._drop(task_id)
            self._dirty = True
            self._cond.notify()

    def nodes_seen(self, nodes: list[NodeInfo]) -> None:
        """The monitor's latest view of the live nodes: a node that joined, left, or changed
        what it offers may let a waiting task run now."""
        signature = frozenset(
            (
                n.id,
                n.capacity,
                n.draining,
                tuple(n.classes),
                tuple(sorted(n.offers.items())),
                tuple(sorted(n.labels.items())),
            )
            for n in nodes
        )
        if signature != self._nodes_seen:
            self._nodes_seen = signature
            if self._waiting:
                self.wake()

    def stand_by(self) -> None:
        """Another controller leads now: forget what waits (the store keeps it; the sweep
        after taking the lead again reads it back)."""
        with self._cond:
            for task_id in list(self._waiting):
                self._drop(task_id)
            self._incoming.clear()
            self._dirty = False
            self._watched = frozenset()

    def _on_event(self, event: Event) -> None:
        if not self.leading():
            return  # the leader acts on it; the store has it for a sweep after a takeover
        value = event.value
        if event.topic == Topic.TASK_ASSIGN:
            assign = TaskEvent.model_validate(value)
            if assign.executor is None:
                self.preemptor.handed_back(assign.task_ids)  # a displaced task's room is free now
                self.submit(assign.task_ids)
            else:  # placed, by this dispatcher or by someone else
                with self._cond:
                    for task_id in assign.task_ids:
                        self._drop(task_id)
        elif event.topic == Topic.TASK_CANCEL:
            ids = seed_task_ids(value)
            ids = ids if ids is not None else [ControlEvent.model_validate(value).task_id]
            mine = [t for t in ids if t in self._waiting or t in self._watched]
            if mine:
                self.submit(mine)  # re-read: it ended, or its dependents may fail now
        elif event.topic == Topic.TASKWORKER_UPDATE:
            status = StatusEvent.model_validate(value)
            ended = status.exited or (status.status is not None and status.status.is_terminal)
            if ended or status.task_id in self._watched or self.preemptor.is_victim(status.task_id):
                if self._waiting:
                    self.wake()

    # ---- the loop ------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._stopping or self._incoming or self._dirty or self._due()):
                    wait = None if not self._timers else max(0.0, (self._timers[0][0] - now_ms()) / 1000)
                    self._cond.wait(wait)
                if self._stopping:
                    return
            try:
                self.run_round()
            except BackendUnavailable as exc:
                logger.warning("dispatch deferred, a backend is unavailable: %s", exc)
                time.sleep(0.2)  # and the next event, or the monitor's sweep, tries again
            except Exception:
                self.errors += 1
                logger.exception("dispatch round failed; the monitor's sweep offers the tasks again")

    def _due(self) -> bool:
        now = now_ms()
        due = False
        while self._timers and self._timers[0][0] <= now:
            at, task_id = heapq.heappop(self._timers)
            if self._timer_of.get(task_id) == at:
                del self._timer_of[task_id]
                due = True
        return due

    def dispatch(self, task_ids: list[str]) -> list[str]:
        """Read these tasks and run a round now, on the caller's thread; return the ids of
        those still waiting for a node."""
        self.submit(task_ids)
        self.run_round()
        with self._cond:
            return [t for t in task_ids if t in self._waiting]

    def place(self, tasks: list[Task]) -> None:
        """Place these tasks, just stored, now on the caller's thread (the request that created
        them): the start skips the hop to this dispatcher's thread and the store read there.
        Their ``task.assign`` event, published before, still reaches this dispatcher (which
        finds them placed) and every other controller; should this round fail, the event's
        round or the monitor's sweep places them."""
        if not self.leading():
            return
        with self._cond:
            for task in tasks:
                if needs_placement(task) and task.id not in self._waiting:
                    self._waiting[task.id] = _Waiting(task, time.monotonic())
        try:
            self.run_round()
        except BackendUnavailable as exc:
            logger.debug("placement on the request deferred, a backend is unavailable: %s", exc)
        except Exception:
            self.errors += 1
            logger.exception("dispatch round failed; the dispatcher's thread places the tasks")

    def run_round(self) -> Round | None:
        """One round over every waiting task (None when no task waits, or while another
        controller leads)."""
        if not self.leading():
            with self._cond:  # the leader acts on these; a takeover reads the store anew
                self._incoming.clear()
                self._dirty = False
            return None
        with self._round_lock:
            with self._cond:
                incoming, self._incoming, self._dirty = list(self._incoming), {}, False
            self._read(incoming)
            with self._cond:
                waiting = [entry.task for entry in self._waiting.values()]
            if not waiting:
                self._watched = frozenset()
                return None
            started = time.perf_counter()
            nodes = self.live.nodes()
            usage = self.store.active_usage()
            candidates = [Candidate(n, usage.get(n.id, {})) for n in nodes]
            deps = self._dependencies(waiting)
            now = now_ms()
            result = plan_round(waiting, candidates, self.policy, self.settings.round, now, deps)
            self.rounds += 1
            self._watched = frozenset(result.watched)
            for task_id, why in result.failures.items():
                self._fail(self._snapshot(task_id), why)
            for placement in result.placements:
                self._assign(placement.task, placement.node, placement.holds)
            if self.settings.preempt:
                self.preemptor.run(result)
            self._schedule(result.wake_at)
            for task_id, why in result.reasons.items():
                entry = self._waiting.get(task_id)
                if entry is not None:
                    self.reasons.offer(entry.task, why)
            if result.placements or result.failures:
                logger.debug(
                    "dispatch round: %d placed, %d failed, %d waiting in %.1f ms",
                    len(result.placements),
                    len(result.failures),
                    len(result.reasons),
                    (time.perf_counter() - started) * 1000,
                )
            return result

    # ---- reads -----------------------------------------------------------------------------
    def _read(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            try:
                task = self.store.get(task_id)
            except TaskNotFound:
                task = None
            with self._cond:
                if task is not None and needs_placement(task):
                    entry = self._waiting.get(task_id)
                    if entry is None:
                        self._waiting[task_id] = _Waiting(task, time.monotonic())
                    else:
                        entry.task = task
                else:
                    self._drop(task_id)

    def _snapshot(self, task_id: str) -> Task | None:
        """The waiting task ``task_id`` as last read, if it still waits."""
        with self._cond:
            entry = self._waiting.get(task_id)
            return entry.task if entry is not None else None

    def _dependencies(self, waiting: list[Task]) -> dict[str, Task | None]:
        """The tasks named as dependencies, read once per round (None: no such task)."""
        found: dict[str, Task | None] = {}
        for task in waiting:
            for dep_id in task.dependencies or []:
                if dep_id not in found:
                    try:
                        found[dep_id] = self.store.get(dep_id)
                    except TaskNotFound:
                        found[dep_id] = None
        return found

    def _drop(self, task_id: str) -> None:
        """Forget a task that no longer waits (call with ``_cond`` held)."""
        if self._waiting.pop(task_id, None) is not None:
            self.reasons.forget(task_id)
        self._timer_of.pop(task_id, None)
        self.preemptor.settled(task_id)

    def _schedule(self, wake_at: dict[str, int]) -> None:
        """Run a round when each of these tasks is due (its backoff's end, its deadline)."""
        with self._cond:
            for task_id, at in wake_at.items():
                if self._timer_of.get(task_id) != at and task_id in self._waiting:
                    self._timer_of[task_id] = at
                    heapq.heappush(self._timers, (at, task_id))
            if len(self._timers) > 2 * len(self._timer_of) + 64:  # entries of tasks gone
                self._timers = sorted((at, t) for t, at in self._timer_of.items())
            self._cond.notify()

    # ---- writes ------------------------------------------------------------------------------
    def _assign(self, task: Task, node_id: str, holds: dict[str, float]) -> bool:
        if not self.leading():
            return False  # lost the lead during the round: the new leader places it
        started = time.perf_counter()
        try:
            written = self.store.apply(
                assignment(task, node_id, holds=holds, actor="dispatcher", reason=f"{self.policy.name} chose {node_id}")
            )
        except (StaleWrite, InvalidTransition):
            self.submit([task.id])  # it changed since it was read: read it again
            return False
        except TaskNotFound:
            with self._cond:
                self._drop(task.id)
            return False
        except BackendUnavailable:
            raise
        except SkaldsError:
            logger.exception("task %s: assignment not recorded", task.id)
            return False
        with self._cond:
            self._drop(task.id)
        event = TaskEvent(task_ids=[task.id], executor=node_id, epoch=written.epoch)
        self.bus.publish(Topic.TASK_ASSIGN, task.id, event.to_value())
        logger.info(
            "task %s assigned to %s epoch=%d (%s) in %.1f ms",
            task.id,
            node_id,
            written.epoch,
            self.policy.name,
            (time.perf_counter() - started) * 1000,
        )
        return True

    def _fail(self, task: Task | None, why: str) -> None:
        """Fail a waiting task that can never start (its deadline passed, a dependency
        failed); tell whoever listens, as a node tells of a failed run."""
        if task is None or not self.leading():
            return
        error = TaskError(message=why)
        try:
            written = self.store.apply(plan(task, Action.FAIL, actor="dispatcher", reason=why, **failure_fields(error)))
        except (StaleWrite, InvalidTransition):
            self.submit([task.id])
            return
        except TaskNotFound:
            written = None
        with self._cond:
            self._drop(task.id)
        if written is None:
            return
        logger.warning("task %s Failed while waiting: %s", task.id, why)
        status = StatusEvent(task_id=task.id, status=S.FAILED, epoch=written.epoch, at=now_ms(), error=why)
        self.bus.publish(Topic.TASKWORKER_UPDATE, task.id, status.to_value())
