"""Dispatch policies: which node gets a task. Pure functions of the candidates."""

from __future__ import annotations

import abc
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from skalds.core.records import NodeInfo
from skalds.core.task import Task
from skalds.errors import ConfigError


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
    """Nodes that can run the task's class and have a free slot. A pinned task goes only to
    its node; edge nodes run only the tasks pinned to them."""
    if task.pinned_node is not None:
        candidates = [c for c in candidates if c.node.id == task.pinned_node]
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
