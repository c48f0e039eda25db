"""Dispatch policies choose only eligible nodes, and the one their rule says."""

from __future__ import annotations

import pytest

from skalds.core.dispatch import Candidate, assignment, bound_node, build_policy, needs_placement
from skalds.core.records import NodeInfo
from skalds.core.task import Task, TaskLifecycleStatus
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


def test_a_task_whose_executor_was_set_before_placement_goes_only_to_that_node() -> None:
    policy = build_policy("least_loaded")
    preset = Task(id="p", class_name="A", executor="busy")
    assert policy.choose(preset, [node("idle", 0), node("busy", 3)]) == "busy"
    assert policy.choose(preset, [node("idle", 0)]) is None, "waits while its node is not live"
    assert policy.choose(preset, [node("idle", 0), node("busy", 4)]) is None, "and while it is full"


def test_bound_node_is_the_pin_or_an_executor_set_on_a_task_never_placed() -> None:
    assert bound_node(Task(id="t", class_name="A")) is None
    assert bound_node(Task(id="t", class_name="A", pinned_node="edge-1")) == "edge-1"
    assert bound_node(Task(id="t", class_name="A", executor="n1")) == "n1"
    running = Task(id="t", class_name="A", executor="n1", lifecycle_status=TaskLifecycleStatus.RUNNING)
    assert bound_node(running) is None, "a placed task's executor is where it runs, not a binding"


def test_assigning_a_task_bound_by_its_executor_pins_it_there_for_good() -> None:
    preset = Task(id="t", class_name="A", executor="n1", epoch=3)
    transition = assignment(preset, "n1")
    assert transition.expect == {"lifecycle_status": TaskLifecycleStatus.CREATED, "epoch": 3}
    assert transition.changes["executor"] == transition.changes["pinned_node"] == "n1"
    assert transition.changes["epoch"] == 4 and transition.changes["lifecycle_status"] is TaskLifecycleStatus.ASSIGNING
    free = assignment(Task(id="t", class_name="A"), "n2")
    assert free.changes["executor"] == "n2" and "pinned_node" not in free.changes


def test_only_created_tasks_and_paused_ones_without_an_executor_need_placement() -> None:
    S = TaskLifecycleStatus
    assert needs_placement(Task(id="t", class_name="A"))
    assert needs_placement(Task(id="t", class_name="A", lifecycle_status=S.PAUSED))
    assert not needs_placement(Task(id="t", class_name="A", lifecycle_status=S.PAUSED, executor="n1"))
    assert not needs_placement(Task(id="t", class_name="A", lifecycle_status=S.RUNNING, executor="n1"))
