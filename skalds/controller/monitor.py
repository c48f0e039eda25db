"""Failure detection: tasks whose node lost its lease are placed again; tasks that wait for a
node are offered to the dispatcher again.

The monitor judges nodes only over time it was itself running. Its loop wakes every
``check_interval_s``; a much longer gap (the whole process frozen by SIGSTOP or a VM pause, or
a live-state read that hung) means the leases it reads may have run out only because their
holders were frozen with it, so it re-grants: no node is judged until a full lease TTL of its
own running has passed, which gives every live node time to renew. The same happens at start
and after the live state was unreachable.

A node without a lease is lost only if its mark in the task store (which a node touches while
it cannot renew its lease) has not changed for a TTL either: a node cut off from the live state
but not from the store keeps its tasks, and its workers keep running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from skalds.config.schema import DEFAULTS, default_retry_policy
from skalds.controller.dispatcher import Dispatcher
from skalds.core.dispatch import waiting_event
from skalds.core.events import ControlAction, ControlEvent, StatusEvent, Topic
from skalds.core.lifecycle import Action, RetryPolicy, ended_attempt, plan
from skalds.core.records import NodeInfo
from skalds.core.task import ACTIVE_STATES, AttemptOutcome, Task, TaskError, TaskLifecycleStatus, now_ms
from skalds.errors import BackendUnavailable, InvalidTransition, StaleWrite
from skalds.ports.event_bus import EventBus
from skalds.ports.live_state import LiveState
from skalds.ports.task_store import TaskQuery, TaskStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorSettings:
    """Timings and retry policy of the monitor (the ``monitor:`` config group)."""

    check_interval_s: float = DEFAULTS.monitor.check_interval_s
    lease_ttl_s: float = DEFAULTS.node.lease_ttl_s
    sweep_interval_s: float = DEFAULTS.monitor.sweep_interval_s
    retry: RetryPolicy = field(default_factory=default_retry_policy)

    @property
    def stall_limit_s(self) -> float:
        """A round that starts (or lasts) this much later than due was not the monitor's own
        running time. Half a lease: a holder frozen with the monitor cannot have lost its
        lease in less."""
        return max(self.lease_ttl_s / 2, 4 * self.check_interval_s)


class Monitor:
    """The controller's failure detector."""

    def __init__(
        self,
        settings: MonitorSettings,
        dispatcher: Dispatcher,
        bus: EventBus,
        store: TaskStore,
        live: LiveState,
        on_nodes: Callable[[list[NodeInfo]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_nodes = on_nodes
        self.dispatcher = dispatcher
        self.bus = bus
        self.store = store
        self.live = live
        self.errors = 0
        self._stop = threading.Event()
        self._trust_from = time.monotonic()
        self._last_round = time.monotonic()
        self._next_sweep = 0.0
        self._unavailable = 0
        self._marks: dict[str, tuple[str | None, float]] = {}  # node -> (mark, seen unchanged since)
        self._marks_since = time.monotonic()
        self._standing_by = False  # a round found another controller leading
        #: Whether this controller judges nodes and sweeps now (several controllers: only
        #: the leader; the others only follow the nodes for their API).
        self.leading: Callable[[], bool] = lambda: True
        self._thread = threading.Thread(target=self._loop, name="skalds-monitor", daemon=True)

    def start(self) -> None:
        """Start checking; no node is judged before one lease TTL from now."""
        self._trust_from = self._last_round = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        """Stop checking."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def take_lead(self, everything: bool = False) -> None:
        """This controller just took the lead: judge no node before a full lease TTL of its
        own watching, and sweep now; with ``everything``, take even the tasks that changed
        just now (their events went to the old leader)."""
        self._forget_nodes()
        self._standing_by = False
        if everything:
            logger.info("monitor: took the lead; every node gets a full lease before it is judged")
        self._next_sweep = time.monotonic() + self.settings.sweep_interval_s
        self.sweep(settled_ms=now_ms() + 1 if everything else None)

    def _forget_nodes(self) -> None:
        """Judge no node before a full lease TTL from now, on marks seen from now."""
        self._trust_from = self._marks_since = time.monotonic()
        self._marks.clear()

    def _regrant(self, why: str) -> None:
        self._forget_nodes()
        logger.warning(
            "monitor: %s; every node gets a full lease (%.1fs) before it is judged", why, self.settings.lease_ttl_s
        )

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.check_interval_s):
            self.round()

    def round(self) -> None:
        """One round, with the monitor's own stalls and backend outages accounted for. Only
        a backend outage is retried quietly; any other error is a bug, logged and counted."""
        started = time.monotonic()
        gap = started - self._last_round
        if gap > self.settings.check_interval_s + self.settings.stall_limit_s:
            self._regrant(f"it was not running for {gap:.1f}s")
        try:
            self.check(started)
            if self._unavailable:
                logger.info("monitor: backends reachable again")
            self._unavailable = 0
        except BackendUnavailable as exc:
            self._unavailable += 1
            if self._unavailable == 1:
                self._regrant(f"a backend is unavailable ({exc})")
            else:
                self._trust_from = time.monotonic()
        except Exception:
            self.errors += 1
            logger.exception("monitor check failed (%d error(s) so far)", self.errors)
        self._last_round = time.monotonic()

    def _stalled(self, started: float) -> bool:
        return time.monotonic() - started > self.settings.stall_limit_s

    def check(self, started: float | None = None) -> None:
        """Requeue the tasks of lost nodes; now and then re-offer tasks that wait for a node.
        Cheap when nothing is wrong: one lease read and one indexed count per round."""
        started = time.monotonic() if started is None else started
        nodes = self.live.nodes()
        if self.on_nodes is not None:
            self.on_nodes(nodes)
        if not self.leading():
            self._standing_by = True
            return
        if self._standing_by:
            # It leads again without a takeover (its lease lapsed by its own clock, then was
            # renewed): what it saw of the nodes before is stale.
            self._standing_by = False
            self._regrant("this controller leads again after its lease lapsed")
            return
        self.dispatcher.nodes_seen(nodes)
        live = {n.id for n in nodes}
        marks = self.store.node_marks()
        counts = self.store.count_active_by_executor()
        quiet = self._quiet_since(marks, counts)
        judging = time.monotonic() - self._trust_from >= self.settings.lease_ttl_s
        if judging and not self._stalled(started):
            for executor in counts:
                if executor not in live and started - quiet[executor] >= self.settings.lease_ttl_s:
                    if self._stalled(started):
                        break  # judged on stale facts otherwise; the next round looks again
                    self._recover_node(executor)
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.settings.sweep_interval_s
            self.sweep()

    def _quiet_since(self, marks: dict[str, str], executors: dict[str, int]) -> dict[str, float]:
        """For each executor, since when (monotonic) its store mark has not changed in this
        monitor's view. A mark first seen now may have just changed: it counts from now."""
        now = time.monotonic()
        out = {}
        for node in executors.keys() | marks.keys():
            mark = marks.get(node)
            seen = self._marks.get(node)
            if seen is None or seen[0] != mark:
                since = self._marks_since if seen is None and mark is None else now
                seen = self._marks[node] = (mark, since)
            out[node] = seen[1]
        return out

    def sweep(self, settled_ms: int | None = None) -> None:
        """Give the dispatcher every task that waits for a node, as the store has it now (an
        event was missed, or a task changed), and have it run a round (one indexed query).
        Tasks changed within the last sweep interval that it does not know yet are left to
        their own event, still on its way: a script that creates a task and then names its
        executor (the seed's way) must not have it placed elsewhere in between. ``settled_ms``
        moves that line (a new leader takes every task: their events reached the old one)."""
        read_at = time.monotonic()
        waiting = self.store.find(TaskQuery(unplaced=True, limit=100_000))
        settled = settled_ms if settled_ms is not None else now_ms() - int(self.settings.sweep_interval_s * 1000)
        self.dispatcher.resync(waiting.items, settled, read_at)

    def _recover_node(self, executor: str) -> None:
        page = self.store.find(TaskQuery(lifecycle_status=sorted(ACTIVE_STATES), executor=executor, limit=100_000))
        for task in page.items:
            self.recover(task)

    def recover(self, task: Task) -> None:
        """Take ``task`` from its lost node: an edge's own task waits for its node (no retry
        consumed: nothing else may run it); any other is retried by the retry policy."""
        node = task.executor
        error = TaskError(message=f"node {node} lost its lease")
        pinned = task.pinned_node is not None and task.pinned_node == node
        try:
            if pinned:
                ended = ended_attempt(task, AttemptOutcome.NODE_LOST, error)
                transition = plan(
                    task, Action.REQUEUE, ended=ended, actor="monitor", reason=f"{error.message}; waits for it"
                )
            else:
                # Its workers stopped by their lease, which ran out a TTL ago at least: the
                # backoff has been running since then.
                lost_at = now_ms() - int(self.settings.lease_ttl_s * 1000)
                transition = self.settings.retry.lost(
                    task, AttemptOutcome.NODE_LOST, error, actor="monitor", lost_at_ms=lost_at
                )
            written = self.store.apply(transition)
        except (StaleWrite, InvalidTransition):
            return
        if not pinned:
            # If the node is alive but cut off, this tells it to stop its stale copy. An edge
            # keeps its own task's copy (nothing else may run it) and takes it back as it is.
            cancel = ControlEvent(task_id=task.id, action=ControlAction.CANCEL, epoch=task.epoch)
            self.bus.publish(Topic.TASK_CANCEL, task.id, cancel.to_value())
        status = StatusEvent(
            task_id=task.id,
            status=written.lifecycle_status,
            executor=node,
            epoch=written.epoch,
            at=now_ms(),
            error=error.message,
            cause=AttemptOutcome.NODE_LOST.value,
        )
        self.bus.publish(Topic.TASKWORKER_UPDATE, task.id, status.to_value())
        if written.lifecycle_status is TaskLifecycleStatus.FAILED:
            logger.error("task %s: node %s lost and no retries left; Failed", task.id, node)
            return
        if pinned:
            logger.warning("task %s: its node %s lost its lease; it waits for that node", task.id, node)
        else:
            logger.warning(
                "task %s: node %s lost; placing it again (retry %d/%d)",
                task.id,
                node,
                written.attempt,
                self.settings.retry.for_task(written).max_retries,
            )
        self.bus.publish(Topic.TASK_ASSIGN, task.id, waiting_event(written).to_value())
