"""Dispatch policies choose only eligible nodes, and the one their rule says."""

from __future__ import annotations

import pytest

from skalds.core.dispatch import Candidate, build_policy
from skalds.core.records import NodeInfo
from skalds.core.task import Task
from skalds.errors import ConfigError


def node(
    node_id: str, load: int, capacity: int = 4, classes: tuple[str, ...] = ("A",), mode: str = "node"
) -> Candidate:
    return Candidate(NodeInfo(id=node_id, mode=mode, classes=list(classes), capacity=capacity), load)


TASK = Task(id="t", class_name="A")


def test_least_loaded_picks_the_lowest_share_of_capacity() -> None:
    policy = build_policy("least_loaded")
    assert policy.choose(TASK, [node("a", 2, 4), node("b", 3, 8), node("c", 1, 2)]) == "b"


def test_nodes_without_the_class_full_or_edge_are_never_chosen() -> None:
    policy = build_policy("least_loaded")
    pool = [node("full", 4, 4), node("other", 0, classes=("B",)), node("edge", 0, mode="edge")]
    assert policy.choose(TASK, pool) is None
    assert policy.choose(TASK, [*pool, node("ok", 3, 4)]) == "ok"


def test_round_robin_takes_turns() -> None:
    policy = build_policy("round_robin")
    pool = [node("b", 0), node("a", 0)]
    assert [policy.choose(TASK, pool) for _ in range(4)] == ["a", "b", "a", "b"]


def test_binpack_fills_the_fullest_node_first() -> None:
    policy = build_policy("binpack")
    assert policy.choose(TASK, [node("a", 1), node("b", 3), node("c", 4)]) == "b"


def test_random_picks_every_eligible_node_and_only_those() -> None:
    policy = build_policy("random")
    pool = [node("a", 0), node("b", 3), node("full", 4), node("other", 0, classes=("B",))]
    assert {policy.choose(TASK, pool) for _ in range(200)} == {"a", "b"}


def test_unknown_policy_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="least_loaded"):
        build_policy("fastest")


def test_a_pinned_task_goes_only_to_its_node_even_an_edge() -> None:
    policy = build_policy("least_loaded")
    pinned = Task(id="p", class_name="A", pinned_node="edge-1")
    assert policy.choose(pinned, [node("n1", 0), node("edge-1", 3, mode="edge")]) == "edge-1"
    assert policy.choose(pinned, [node("n1", 0)]) is None
