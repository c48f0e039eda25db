"""One dispatch round: the waiting tasks in priority order, each placed, failed or told why it
waits. Pure functions over a snapshot (waiting tasks, live nodes with what they hold, the tasks
waited on), no I/O; the dispatcher reads the snapshot and writes what a round decides.

Order: effective priority (``priority`` plus one for every ``aging_s`` seconds waited, so a low
priority task still starts under a constant stream of high priority ones), then creation time,
then id. A task that cannot be placed does not hold back the ones after it: a lower priority
task that fits is placed meanwhile.

Before a task is placed: a task that never ran and whose ``deadlineDateTime`` passed fails;
one backing off after a lost run waits for its ``retryAt``; one with ``dependencies`` waits for
them (each Running or Finished, or each Finished, by its ``dependencyCondition``) and fails
when one of them failed or was cancelled first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from skalds.core.dispatch import Candidate, DispatchPolicy, Fit, bound_node, fit, narrowed
from skalds.core.requirements import SLOTS, amount_text
from skalds.core.task import DependencyCondition, Task, TaskLifecycleStatus

S = TaskLifecycleStatus
#: The one message of a task failed for its deadline.
DEADLINE_PASSED = "deadline passed while waiting"
_POSITION = re.compile(r" \(position \d+\)$")
#: History actions after which a task waits for a node (a creation is recorded as "create").
_INTO_WAITING = frozenset({"create", "requeue", "replace", "retry", "resume"})


@dataclass(frozen=True)
class RoundOptions:
    """How a round orders and places (the ``dispatch:`` config group).

    Attributes:
        aging_s: a waiting task's priority grows by one for every this many seconds it has
            waited (0: no aging).
        sticky: prefer the node a task last ran on.
    """

    aging_s: float = 60.0
    sticky: bool = True


@dataclass(frozen=True)
class Placement:
    """Place ``task`` on ``node``, where it holds ``holds``."""

    task: Task
    node: str
    holds: dict[str, float]


@dataclass
class Round:
    """What one round decided.

    Attributes:
        placements: in queue order.
        reasons: task id -> why it waits.
        failures: task id -> why it fails now (its deadline, a dependency that ended badly).
        wake_at: task id -> epoch ms when it is worth looking at again (its backoff's end, its
            deadline) with no event.
        short: tasks that wait only for room (slots or resources) on nodes that could run
            them, in queue order: what preemption may help.
        watched: task ids waited on as dependencies: a change of one is worth a round.
        nodes: the candidates as they are after the placements.
    """

    placements: list[Placement] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    wake_at: dict[str, int] = field(default_factory=dict)
    short: list[Task] = field(default_factory=list)
    watched: set[str] = field(default_factory=set)
    nodes: list[Candidate] = field(default_factory=list)


def waiting_since(task: Task) -> int:
    """When the task began waiting for a node (epoch ms): its latest move into waiting (a
    creation, requeue, replace, retry or resume), else its creation."""
    for record in reversed(task.history):
        if record.status in (S.ASSIGNING, S.RUNNING):
            break
        if record.action in _INTO_WAITING:
            return record.at
    return task.create_date_time


def effective_priority(task: Task, now_ms: int, aging_s: float) -> float:
    """``priority`` plus one for every ``aging_s`` seconds the task has waited."""
    if aging_s <= 0:
        return float(task.priority)
    return task.priority + max(0, now_ms - waiting_since(task)) / 1000 / aging_s


def never_ran(task: Task) -> bool:
    """Whether the task has not begun a run since it was created (its deadline applies)."""
    return task.started_at is None and not task.attempts


def deadline_passed(task: Task, now_ms: int) -> bool:
    """Whether a task that never ran has reached its ``deadlineDateTime``."""
    return task.deadline_date_time is not None and never_ran(task) and now_ms >= task.deadline_date_time


def started(dep: Task) -> bool:
    """Whether a task waited on as ``running`` has started: Running, Paused on a node, or
    Finished already."""
    return dep.lifecycle_status in (S.RUNNING, S.FINISHED) or (
        dep.lifecycle_status is S.PAUSED and dep.executor is not None and dep.started_at is not None
    )


def dependencies(task: Task, deps: Mapping[str, Task | None]) -> tuple[str, str] | None:
    """What the task's ``dependencies`` say now: None (it may start), ``("wait", why)`` or
    ``("fail", why)``. ``deps`` maps each dependency's id to the task, or None when there is
    no such task."""
    want_finished = task.dependency_condition is DependencyCondition.FINISHED
    goal = S.FINISHED.value if want_finished else S.RUNNING.value
    for dep_id in task.dependencies or []:
        dep = deps.get(dep_id)
        if dep is None:
            return "wait", f"waiting for task {dep_id}, which does not exist"
        status = dep.lifecycle_status
        if status in (S.FAILED, S.CANCELLED):
            return "fail", f"dependency {dep_id} is {status.value}"
        done = status is S.FINISHED if want_finished else started(dep)
        if not done:
            return "wait", f"waiting for task {dep_id} to be {goal}"
    return None


def backoff_text(retry_at_ms: int) -> str:
    """``backing off until 2026-11-28T10:00:03.250Z``."""
    at = datetime.fromtimestamp(retry_at_ms / 1000, UTC)
    return f"backing off until {at.strftime('%Y-%m-%dT%H:%M:%S')}.{retry_at_ms % 1000:03d}Z"


def reason_kind(reason: str) -> str:
    """A reason without its queue position: what changes only when the cause changes."""
    return _POSITION.sub("", reason)


def queue(waiting: Sequence[Task], now_ms: int, aging_s: float) -> list[Task]:
    """The waiting tasks in the order a round looks at them."""
    return sorted(waiting, key=lambda t: (-effective_priority(t, now_ms, aging_s), t.create_date_time, t.id))


def plan_round(
    waiting: Sequence[Task],
    candidates: Sequence[Candidate],
    policy: DispatchPolicy,
    options: RoundOptions,
    now_ms: int,
    deps: Mapping[str, Task | None] | None = None,
) -> Round:
    """Place what can be placed on ``candidates`` (updating what each holds as it goes) and
    say why the rest waits. ``deps`` holds the tasks named as dependencies (None: not
    found)."""
    deps = deps or {}
    nodes = {c.node.id: c for c in candidates}
    out = Round()
    positions: dict[frozenset[str], int] = {}
    # Nothing frees room within a round: once tasks of one kind found none, the rest of that
    # kind need not look again (a queue of 10,000 alike costs one look, not 10,000).
    no_room: dict[tuple[object, ...], Fit] = {}
    for task in queue(waiting, now_ms, options.aging_s):
        if deadline_passed(task, now_ms):
            out.failures[task.id] = DEADLINE_PASSED
            continue
        if task.deadline_date_time is not None and never_ran(task):
            out.wake_at[task.id] = task.deadline_date_time
        if task.retry_at is not None and task.retry_at > now_ms:
            out.reasons[task.id] = backoff_text(task.retry_at)
            out.wake_at[task.id] = min(task.retry_at, out.wake_at.get(task.id, task.retry_at))
            continue
        out.watched.update(task.dependencies or [])
        verdict = dependencies(task, deps)
        if verdict is not None:
            outcome, why = verdict
            (out.failures if outcome == "fail" else out.reasons)[task.id] = why
            continue
        kind = _kind(task)
        found = no_room.get(kind) or fit(task, list(nodes.values()))
        if found.able:
            pool = narrowed(task, found.able, sticky=options.sticky)
            chosen = policy.pick(task, pool, list(nodes.values()))
            holds = chosen.needs(task).resources
            nodes[chosen.node.id] = chosen.taking(holds)
            out.placements.append(Placement(task, chosen.node.id, holds))
            continue
        no_room[kind] = found
        if found.slots_busy:
            key = found.key
            positions[key] = positions.get(key, 0) + 1
            out.reasons[task.id] = f"all {amount_text(found.slots)} matching slots busy (position {positions[key]})"
        else:
            out.reasons[task.id] = found.reason or "no node can take it"
        if found.matching:
            out.short.append(task)
    out.nodes = list(nodes.values())
    return out


def _kind(task: Task) -> tuple[object, ...]:
    """What decides where a task can go: tasks of one kind fit the same nodes."""
    return (
        task.class_name,
        bound_node(task),
        tuple(sorted(task.resources.items())),
        tuple(sorted(task.required_labels.items())),
    )


@dataclass(frozen=True)
class Displacement:
    """Displace ``victim`` (running on ``node``) to make room for ``task``."""

    task: Task
    victim: Task
    node: str


def choose_victim(
    task: Task,
    candidates: Sequence[Candidate],
    running: Mapping[str, Sequence[Task]],
    exclude: set[str] | frozenset[str] = frozenset(),
) -> Displacement | None:
    """The Running task whose displacement makes room for ``task``: on a node that could
    run ``task`` but for room, of a lower base priority than ``task``'s, not pinned (it could
    not go anywhere else) and not in ``exclude``; the lowest priority first, then the one
    started last (the least work lost), then the lower id. None when no one task is enough.

    ``running`` maps node ids to the tasks running there.
    """
    found = fit(task, candidates)
    options = []
    for c, need in found.matching:
        for victim in running.get(c.node.id, ()):
            if victim.priority >= task.priority or victim.pinned_node is not None or victim.id in exclude:
                continue
            if victim.lifecycle_status is not S.RUNNING or victim.executor != c.node.id:
                continue
            held = victim.holds or {SLOTS: 1.0}
            if all(c.free(r) + held.get(r, 0.0) >= amount for r, amount in need.resources.items()):
                options.append((victim.priority, -(victim.started_at or 0), victim.id, victim, c.node.id))
    if not options:
        return None
    _, _, _, victim, node = min(options, key=lambda o: (o[0], o[1], o[2]))
    return Displacement(task, victim, node)
