"""Placement: which tasks wait for a node, which node a task is bound to, the write that
places it, and the dispatch policies that choose among nodes. Pure functions, no I/O."""

from __future__ import annotations

import abc
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skalds.core.lifecycle import Action, Transition, plan
from skalds.core.records import NodeInfo
from skalds.core.task import Task, TaskLifecycleStatus
from skalds.errors import ConfigError

S = TaskLifecycleStatus


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


def assignment(task: Task, node_id: str, *, actor: str | None = None, reason: str | None = None) -> Transition:
    """The conditional write that places ``task`` on ``node_id`` (ASSIGN: epoch + 1), the
    same for the dispatcher and a node placing its own task, so of two racing one wins.

    A task bound by an executor set before placement is pinned to that node from now on: a
    requeue (its node lost, or handed back) clears the executor but keeps the pin, so the
    task waits for that node again instead of moving elsewhere.
    """
    changes: dict[str, Any] = {"executor": node_id}
    if task.pinned_node is None and bound_node(task) is not None:
        changes["pinned_node"] = node_id
    return plan(task, Action.ASSIGN, actor=actor or node_id, reason=reason or f"{node_id} placed it", **changes)


@dataclass(frozen=True)
class Candidate:
    """A live node and how many tasks it holds now (by the task store's count, plus the
    placements made in the current batch)."""

    node: NodeInfo
    load: int

    @property
    def free(self) -> int:
        """Slots left."""
        return self.node.capacity - self.load


def eligible(task: Task, candidates: Sequence[Candidate]) -> list[Candidate]:
    """Nodes that can run the task's class and have a free slot. A task bound to a node
    (:func:`bound_node`) goes only to that node; edge nodes run only the tasks bound to them."""
    bound = bound_node(task)
    if bound is not None:
        candidates = [c for c in candidates if c.node.id == bound]
    else:
        candidates = [c for c in candidates if c.node.mode != "edge"]
    return [c for c in candidates if not c.node.draining and task.class_name in c.node.classes and c.free > 0]


class DispatchPolicy(abc.ABC):
    """Chooses a node among eligible candidates. Implementations keep no I/O; they may keep
    small state (a round-robin cursor) and are called from one thread."""

    name = "abstract"

    def choose(self, task: Task, candidates: Sequence[Candidate]) -> str | None:
        """The id of the node to run ``task``, or None when no node can take it now."""
        pool = eligible(task, candidates)
        return self.pick(task, pool).node.id if pool else None

    @abc.abstractmethod
    def pick(self, task: Task, pool: list[Candidate]) -> Candidate:
        """Pick one of ``pool`` (never empty)."""


class LeastLoaded(DispatchPolicy):
    """The node with the lowest share of its capacity in use; ties go to the larger free
    count, then the lower id (deterministic)."""

    name = "least_loaded"

    def pick(self, task: Task, pool: list[Candidate]) -> Candidate:
        return min(pool, key=lambda c: (c.load / c.node.capacity, -c.free, c.node.id))


class RoundRobin(DispatchPolicy):
    """Eligible nodes in turn, by id order."""

    name = "round_robin"

    def __init__(self) -> None:
        self._counter = itertools.count()

    def pick(self, task: Task, pool: list[Candidate]) -> Candidate:
        ordered = sorted(pool, key=lambda c: c.node.id)
        return ordered[next(self._counter) % len(ordered)]


class BinPack(DispatchPolicy):
    """The fullest node that still has room: keeps other nodes empty (to scale them down)."""

    name = "binpack"

    def pick(self, task: Task, pool: list[Candidate]) -> Candidate:
        return min(pool, key=lambda c: (c.free, c.node.id))


class Random(DispatchPolicy):
    """Any eligible node, uniformly (the seed's RANDOM strategy)."""

    name = "random"

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def pick(self, task: Task, pool: list[Candidate]) -> Candidate:
        return self._rng.choice(sorted(pool, key=lambda c: c.node.id))


POLICIES: dict[str, type[DispatchPolicy]] = {p.name: p for p in (LeastLoaded, RoundRobin, BinPack, Random)}


def build_policy(name: str) -> DispatchPolicy:
    """The policy called ``name``.

    Raises:
        ConfigError: unknown name; the message lists the known ones.
    """
    try:
        return POLICIES[name]()
    except KeyError:
        raise ConfigError(f"dispatch.policy: unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}") from None
