"""Opt-in preemption (``dispatch.preempt``): room for a task that finds none, made by
displacing one Running task of a lower priority.

The dispatcher does not requeue the displaced task itself: it asks the task's node (a
``preempt`` control event at the task's epoch) to stop its copy, and the node hands the task
back to waiting once the worker is gone (no retry consumed), as a node stopping cleanly does.
So the displaced task's next copy never overlaps this one, and the room is free, in the store,
exactly when the copy is gone. While a displacement is under way, the task it is for waits for
it and no second one is started for it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from skalds.core.dispatch import fit
from skalds.core.events import ControlAction, ControlEvent, Topic
from skalds.core.scheduler import Displacement, Round, choose_victim
from skalds.core.task import Task, TaskLifecycleStatus
from skalds.ports.event_bus import EventBus
from skalds.ports.task_store import TaskQuery, TaskStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Underway:
    task_id: str  # the task room is made for
    victim: Task
    node: str
    since: float  # monotonic


class Preemptor:
    """Chooses and asks for displacements, and remembers those under way."""

    def __init__(self, bus: EventBus, store: TaskStore, timeout_s: float = 30.0) -> None:
        """``timeout_s``: a displacement whose task has not come back after this long (its
        event lost, its node slow to stop it) may be asked for again."""
        self.bus = bus
        self.store = store
        self.timeout_s = timeout_s
        self._underway: dict[str, _Underway] = {}  # by victim id
        self._lock = threading.Lock()

    def is_victim(self, task_id: str) -> bool:
        """Whether ``task_id`` is being displaced."""
        return task_id in self._underway

    def handed_back(self, task_ids: list[str]) -> None:
        """These tasks wait for a node again: a displacement of one of them is done."""
        with self._lock:
            for task_id in task_ids:
                self._underway.pop(task_id, None)

    def settled(self, task_id: str) -> None:
        """``task_id`` no longer waits (placed, ended): what was under way for it is over."""
        with self._lock:
            for victim, d in list(self._underway.items()):
                if d.task_id == task_id:
                    del self._underway[victim]

    def run(self, result: Round) -> None:
        """For each task of ``result`` short of room (in queue order), displace one lower
        priority Running task, unless one is already under way for it; the reason the task
        waits says which."""
        now = time.monotonic()
        with self._lock:
            for victim, d in list(self._underway.items()):
                if now - d.since > self.timeout_s:
                    del self._underway[victim]
            underway = dict(self._underway)
        running: dict[str, list[Task]] = {}
        busy = set(underway)
        for task in result.short:
            if task.priority == 0:
                continue  # no priority below it
            mine = next((d for d in underway.values() if d.task_id == task.id), None)
            if mine is not None:
                result.reasons[task.id] = _waiting_for(mine.victim, mine.node)
                continue
            for candidate, _ in fit(task, result.nodes).matching:
                if candidate.node.id not in running:
                    query = TaskQuery(
                        lifecycle_status=[TaskLifecycleStatus.RUNNING], executor=candidate.node.id, limit=100_000
                    )
                    running[candidate.node.id] = self.store.find(query).items
            chosen = choose_victim(task, result.nodes, running, exclude=busy)
            if chosen is None:
                continue
            busy.add(chosen.victim.id)
            self._displace(chosen)
            result.reasons[task.id] = _waiting_for(chosen.victim, chosen.node)

    def _displace(self, d: Displacement) -> None:
        why = f"preempted by task {d.task.id} (priority {d.task.priority})"
        event = ControlEvent(task_id=d.victim.id, action=ControlAction.PREEMPT, epoch=d.victim.epoch, reason=why)
        self.bus.publish(Topic.TASK_CONTROL, d.victim.id, event.to_value())
        with self._lock:
            self._underway[d.victim.id] = _Underway(d.task.id, d.victim, d.node, time.monotonic())
        logger.info(
            "task %s (priority %d) displaces task %s (priority %d) on %s epoch=%d",
            d.task.id,
            d.task.priority,
            d.victim.id,
            d.victim.priority,
            d.node,
            d.victim.epoch,
        )


def _waiting_for(victim: Task, node: str) -> str:
    return f"waiting for task {victim.id} (priority {victim.priority}) to be displaced on node {node}"
