"""Placement: which tasks wait for a node, which nodes can take one, the writes that place it
or say why it waits, and the dispatch policies that choose among nodes. Pure functions over a
snapshot of live nodes, no I/O.

A node can take a task when it is live and not draining, offers the task's class, carries every
required label, and has enough of each resource the task needs free (``slots`` included: a run
takes one unless it says otherwise); a task bound to a node (:func:`bound_node`) goes only
there, and edge nodes take only the tasks bound to them. Among the nodes that can, the ones
carrying most of the preferred labels come first, then the node the task last ran on (sticky),
then the policy's own rule.
"""

from __future__ import annotations

import abc
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skalds.core.events import TaskEvent
from skalds.core.lifecycle import Action, Transition, plan
from skalds.core.records import NodeInfo
from skalds.core.requirements import SLOTS, ClassSpec, Needs, amount_text, labels_text, needs
from skalds.core.task import Task, TaskLifecycleStatus
from skalds.errors import ConfigError, InvalidTransition

S = TaskLifecycleStatus
#: ``placer`` of a waiting-task event whose task any node may run: the dispatcher places it.
DISPATCHER = "dispatcher"


def needs_placement(task: Task) -> bool:
    """Created tasks, and paused ones that hold no worker anywhere, wait for a node."""
    return task.lifecycle_status is S.CREATED or (task.lifecycle_status is S.PAUSED and task.executor is None)


def bound_node(task: Task) -> str | None:
    """The one node ``task`` may run on, or None when any node may.

    A task is bound by its pin (an edge's declared task), or, while it was never placed, by
    an executor set on it before placement: the seed's scripts create a task, then name its
    node with ``TaskRepository.update_executor`` before announcing it on ``task.assign``.
    Such a task is placed only there, by that node itself or by the dispatcher, never
    elsewhere by a policy.
    """
    if task.pinned_node is not None:
        return task.pinned_node
    if task.lifecycle_status is S.CREATED and task.executor is not None:
        return task.executor
    return None


def last_node(task: Task) -> str | None:
    """The node the task's latest run was on (None if it never ran)."""
    return task.attempts[-1].node if task.attempts else None


def waiting_event(task: Task) -> TaskEvent:
    """The ``task.assign`` event that announces a task waiting for a node. It names who
    places it (``placer``): the node it is bound to, or the dispatcher; a node skips, without
    reading the store, the events of tasks another node or the dispatcher places."""
    return TaskEvent(task_ids=[task.id], placer=bound_node(task) or DISPATCHER)


def assignment(
    task: Task,
    node_id: str,
    *,
    holds: Mapping[str, float] | None = None,
    actor: str | None = None,
    reason: str | None = None,
) -> Transition:
    """The conditional write that places ``task`` on ``node_id`` (ASSIGN: epoch + 1), the
    same for the dispatcher and a node placing its own task, so of two racing one wins. It
    records what the task ``holds`` there (one slot unless given) and clears its pending reason.

    A task bound by an executor set before placement is pinned to that node from now on: a
    requeue (its node lost, or handed back) clears the executor but keeps the pin, so the
    task waits for that node again instead of moving elsewhere.
    """
    changes: dict[str, Any] = {"executor": node_id, "holds": dict(holds or {SLOTS: 1.0})}
    if task.pinned_node is None and bound_node(task) is not None:
        changes["pinned_node"] = node_id
    return plan(task, Action.ASSIGN, actor=actor or node_id, reason=reason or f"{node_id} placed it", **changes)


def pending(task: Task, reason: str) -> Transition:
    """The write that records why ``task`` waits: conditional on its state and epoch like
    every write (so it never lands on a task placed meanwhile), with no history entry and no
    change of ``updateDateTime`` (a note, not a change of the task).

    Raises:
        InvalidTransition: the task does not wait for a node.
    """
    if not needs_placement(task):
        raise InvalidTransition(
            f"task {task.id!r} does not wait for a node: it is {task.lifecycle_status.value}",
            task_id=task.id,
            lifecycle_status=task.lifecycle_status.value,
        )
    expect = {"lifecycle_status": task.lifecycle_status, "epoch": task.epoch}
    return Transition(task.id, expect, {"pending_reason": reason})


@dataclass(frozen=True)
class Candidate:
    """A live node and what its placed tasks hold now (by the task store, plus the placements
    made in the current round): ``used`` maps ``slots`` and named resources to amounts."""

    node: NodeInfo
    used: Mapping[str, float] = field(default_factory=dict)
    _specs: dict[str, ClassSpec] = field(default_factory=dict, compare=False, repr=False)

    def offered(self, name: str) -> float:
        """How much of ``name`` the node offers (``slots``: its capacity)."""
        return float(self.node.capacity) if name == SLOTS else float(self.node.offers.get(name, 0.0))

    def free(self, name: str) -> float:
        """How much of ``name`` is left."""
        return self.offered(name) - self.used.get(name, 0.0)

    @property
    def load(self) -> float:
        """Slots in use."""
        return self.used.get(SLOTS, 0.0)

    def spec(self, class_name: str) -> ClassSpec:
        """What a task of ``class_name`` needs here, as this node's pool declares it."""
        found = self._specs.get(class_name)
        if found is None:
            found = self._specs[class_name] = ClassSpec.from_dict(self.node.class_specs.get(class_name))
        return found

    def needs(self, task: Task) -> Needs:
        """What ``task`` needs of this node: its own requirements over its class's here."""
        return needs(task.resources, task.required_labels, task.preferred_labels, self.spec(task.class_name))

    def fits(self, need: Needs) -> bool:
        """Whether ``need``'s amounts are free here."""
        return all(self.free(name) >= amount for name, amount in need.resources.items())

    def taking(self, amounts: Mapping[str, float]) -> Candidate:
        """This node with ``amounts`` more in use."""
        used = dict(self.used)
        for name, amount in amounts.items():
            used[name] = used.get(name, 0.0) + amount
        return Candidate(self.node, used, self._specs)


def carries(node: NodeInfo, labels: Mapping[str, str]) -> bool:
    """Whether ``node`` carries every one of ``labels``."""
    return all(node.labels.get(k) == v for k, v in labels.items())


@dataclass(frozen=True)
class Fit:
    """Which nodes can take a task now, and, when none can, why.

    ``matching``: the nodes that could run it at all (class, labels, binding), with what it
    needs on each; ``able``: those of them with room now. ``slots_busy``: it waits only for a
    slot (the matching nodes have the rest), so its place in the queue is worth telling.
    """

    matching: list[tuple[Candidate, Needs]]
    able: list[tuple[Candidate, Needs]]
    reason: str | None = None
    slots_busy: bool = False

    @property
    def slots(self) -> float:
        """The slots of the matching nodes, in all."""
        return sum(c.offered(SLOTS) for c, _ in self.matching)

    @property
    def key(self) -> frozenset[str]:
        """The matching nodes: tasks waiting for slots of the same nodes queue together."""
        return frozenset(c.node.id for c, _ in self.matching)


def fit(task: Task, candidates: Sequence[Candidate]) -> Fit:
    """Which of ``candidates`` can take ``task`` now; when none, the first reason in the
    order a person would check: binding, class, labels, named resources, slots."""
    bound = bound_node(task)
    if bound is not None:
        pool = [c for c in candidates if c.node.id == bound]
        if not pool:
            return Fit([], [], f"pinned to node {bound}, which is offline")
        if all(c.node.draining for c in pool):
            return Fit([], [], f"pinned to node {bound}, which is stopping")
    else:
        pool = [c for c in candidates if c.node.mode != "edge"]
    offering = [c for c in pool if task.class_name in c.node.classes and not c.node.draining]
    if not offering:
        if any(task.class_name in c.node.classes for c in pool):
            return Fit([], [], f"every node offering class {task.class_name} is stopping")
        return Fit([], [], f"no node offers class {task.class_name}")
    matching = [(c, n) for c in offering if carries(c.node, (n := c.needs(task)).required_labels)]
    if not matching:
        wanted = offering[0].needs(task).required_labels
        return Fit([], [], f"no node matches selector {labels_text(wanted)}")
    able = [(c, n) for c, n in matching if c.fits(n)]
    if able:
        return Fit(matching, able)
    return Fit(matching, [], *_shortage(matching))


def _shortage(matching: list[tuple[Candidate, Needs]]) -> tuple[str, bool]:
    """Why none of the ``matching`` nodes has room: a named resource no node has enough of,
    all their slots busy, or no one node with all of it at once."""
    names = sorted({r for _, n in matching for r in n.resources if r != SLOTS})
    for name in names:
        if not any(c.free(name) >= n.resources.get(name, 0.0) for c, n in matching):
            need = min(n.resources.get(name, 0.0) for _, n in matching)
            most = max(0.0, max(c.free(name) for c, _ in matching))
            return f"not enough {name} (needs {amount_text(need)}, most free {amount_text(most)})", False
    if not any(c.free(SLOTS) >= n.resources[SLOTS] for c, n in matching):
        return "", True  # the scheduler words it, with the task's place in the queue
    amounts = matching[0][1].resources
    wanted = ", ".join(f"{k} {amount_text(v)}" for k, v in sorted(amounts.items()))
    return f"not enough resources on any one node (needs {wanted})", False


def narrowed(task: Task, able: list[tuple[Candidate, Needs]], *, sticky: bool) -> list[Candidate]:
    """The nodes a policy picks among: of those that can take the task, the ones carrying
    most of its preferred labels; of those, the node it last ran on, when ``sticky``."""
    score = {c.node.id: sum(c.node.labels.get(k) == v for k, v in n.preferred_labels.items()) for c, n in able}
    best = max(score.values())
    pool = [c for c, _ in able if score[c.node.id] == best]
    last = last_node(task) if sticky else None
    if last is not None:
        for c in pool:
            if c.node.id == last:
                return [c]
    return pool


class DispatchPolicy(abc.ABC):
    """Chooses a node among those that can take a task. Implementations keep no I/O; they
    may keep small state (a round-robin cursor) and are called from one thread."""

    name = "abstract"

    def choose(self, task: Task, candidates: Sequence[Candidate], *, sticky: bool = True) -> str | None:
        """The id of the node to run ``task``, or None when no node can take it now."""
        found = fit(task, candidates)
        if not found.able:
            return None
        return self.pick(task, narrowed(task, found.able, sticky=sticky), candidates).node.id

    @abc.abstractmethod
    def pick(self, task: Task, pool: list[Candidate], everyone: Sequence[Candidate]) -> Candidate:
        """Pick one of ``pool`` (never empty); ``everyone`` is every live node, for rules
        that look at the whole cluster."""


def _least_loaded_key(c: Candidate) -> tuple[float, float, str]:
    return (c.load / max(1, c.node.capacity), -c.free(SLOTS), c.node.id)


class LeastLoaded(DispatchPolicy):
    """The node with the lowest share of its slots in use; ties go to the larger free
    count, then the lower id (deterministic)."""

    name = "least_loaded"

    def pick(self, task: Task, pool: list[Candidate], everyone: Sequence[Candidate]) -> Candidate:
        return min(pool, key=_least_loaded_key)


class RoundRobin(DispatchPolicy):
    """Eligible nodes in turn, by id order."""

    name = "round_robin"

    def __init__(self) -> None:
        self._counter = itertools.count()

    def pick(self, task: Task, pool: list[Candidate], everyone: Sequence[Candidate]) -> Candidate:
        ordered = sorted(pool, key=lambda c: c.node.id)
        return ordered[next(self._counter) % len(ordered)]


class BinPack(DispatchPolicy):
    """The fullest node that still has room: keeps other nodes empty (to scale them down)."""

    name = "binpack"

    def pick(self, task: Task, pool: list[Candidate], everyone: Sequence[Candidate]) -> Candidate:
        return min(pool, key=lambda c: (c.free(SLOTS), c.node.id))


class Random(DispatchPolicy):
    """Any eligible node, uniformly (the seed's RANDOM strategy)."""

    name = "random"

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def pick(self, task: Task, pool: list[Candidate], everyone: Sequence[Candidate]) -> Candidate:
        return self._rng.choice(sorted(pool, key=lambda c: c.node.id))


class Spread(DispatchPolicy):
    """Across the values of one node label (``dispatch.spread_label``, e.g. ``zone``): the
    value whose live nodes hold the fewest slots in use, of those the task can go to (ties:
    the lower value; nodes without the label count as one more value, ``""``); within it, the
    least loaded node."""

    name = "spread"

    def __init__(self, label: str = "zone") -> None:
        self.label = label

    def pick(self, task: Task, pool: list[Candidate], everyone: Sequence[Candidate]) -> Candidate:
        in_use: dict[str, float] = {}
        for c in everyone:
            value = c.node.labels.get(self.label, "")
            in_use[value] = in_use.get(value, 0.0) + c.load
        zones = {c.node.labels.get(self.label, "") for c in pool}
        zone = min(zones, key=lambda z: (in_use.get(z, 0.0), z))
        return min((c for c in pool if c.node.labels.get(self.label, "") == zone), key=_least_loaded_key)


POLICIES: dict[str, type[DispatchPolicy]] = {p.name: p for p in (LeastLoaded, RoundRobin, BinPack, Random, Spread)}


def build_policy(name: str, *, spread_label: str = "zone") -> DispatchPolicy:
    """The policy called ``name``.

    Raises:
        ConfigError: unknown name; the message lists the known ones.
    """
    if name == Spread.name:
        return Spread(spread_label)
    try:
        return POLICIES[name]()
    except KeyError:
        raise ConfigError(f"dispatch.policy: unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}") from None
