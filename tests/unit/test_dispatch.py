"""Dispatch policies choose only nodes that can take a task, and the one their rule says; a task
that no node can take is told why."""

from __future__ import annotations

import pytest

from skalds.core.dispatch import (
    Candidate,
    assignment,
    bound_node,
    build_policy,
    fit,
    needs_placement,
    pending,
    waiting_event,
)
from skalds.core.records import NodeInfo
from skalds.core.requirements import ClassSpec
from skalds.core.task import Attempt, AttemptOutcome, Task, TaskLifecycleStatus
from skalds.errors import ConfigError, InvalidTransition

S = TaskLifecycleStatus
POLICIES = ["least_loaded", "round_robin", "binpack", "random", "spread"]


def node(
    node_id: str,
    load: float = 0,
    capacity: int = 4,
    classes: tuple[str, ...] = ("A",),
    mode: str = "node",
    labels: dict[str, str] | None = None,
    offers: dict[str, float] | None = None,
    used: dict[str, float] | None = None,
    specs: dict[str, ClassSpec] | None = None,
    draining: bool = False,
) -> Candidate:
    info = NodeInfo(
        id=node_id,
        mode=mode,
        classes=list(classes),
        capacity=capacity,
        labels=labels or {},
        offers=offers or {},
        class_specs={k: v.to_dict() for k, v in (specs or {}).items()},
        draining=draining,
    )
    return Candidate(info, {"slots": float(load), **(used or {})})


TASK = Task(id="t", class_name="A")


def test_least_loaded_picks_the_lowest_share_of_capacity() -> None:
    policy = build_policy("least_loaded")
    assert policy.choose(TASK, [node("a", 2, 4), node("b", 3, 8), node("c", 1, 2)]) == "b"


def test_least_loaded_breaks_ties_by_free_slots_then_id() -> None:
    policy = build_policy("least_loaded")
    assert policy.choose(TASK, [node("b", 0, 4), node("a", 0, 4)]) == "a"
    assert policy.choose(TASK, [node("a", 1, 2), node("b", 2, 4)]) == "b", "same share, more free"


@pytest.mark.parametrize("name", POLICIES)
def test_no_policy_chooses_a_node_without_the_class_a_full_one_an_edge_or_a_draining_one(name: str) -> None:
    policy = build_policy(name)
    pool = [
        node("full", 4, 4),
        node("other", 0, classes=("B",)),
        node("edge", 0, mode="edge"),
        node("leaving", 0, draining=True),
    ]
    assert policy.choose(TASK, pool) is None
    assert {policy.choose(TASK, [*pool, node("ok", 3, 4)]) for _ in range(10)} == {"ok"}


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


def test_spread_goes_to_the_zone_with_the_least_in_use_then_the_least_loaded_node_in_it() -> None:
    policy = build_policy("spread", spread_label="zone")
    pool = [
        node("a1", 2, labels={"zone": "a"}),
        node("a2", 0, labels={"zone": "a"}),
        node("b1", 1, labels={"zone": "b"}),
        node("b2", 1, labels={"zone": "b"}),
    ]
    assert policy.choose(TASK, pool) == "a2", "zone a holds 2, zone b 2: tie to the lower value, its idle node"
    pool[0] = node("a1", 3, labels={"zone": "a"})
    assert policy.choose(TASK, pool) == "b1", "zone b holds less now"


def test_spread_counts_the_whole_zone_even_nodes_that_cannot_take_the_task() -> None:
    policy = build_policy("spread", spread_label="rack")
    pool = [
        node("r1-busy", 4, classes=("B",), labels={"rack": "r1"}),
        node("r1", 0, labels={"rack": "r1"}),
        node("r2", 1, labels={"rack": "r2"}),
        node("bare", 2),  # no label: a value of its own
    ]
    assert policy.choose(TASK, pool) == "r2"


def test_spread_fills_zones_evenly_over_a_batch() -> None:
    from skalds.core.scheduler import RoundOptions, plan_round

    nodes = [node(f"{z}{i}", 0, capacity=10, labels={"zone": z}) for z in "abc" for i in (1, 2)]
    tasks = [Task(id=f"t{i}", class_name="A", create_date_time=i) for i in range(9)]
    done = plan_round(tasks, nodes, build_policy("spread"), RoundOptions(), 100)
    zones = [p.node[0] for p in done.placements]
    assert sorted(zones) == ["a", "a", "a", "b", "b", "b", "c", "c", "c"]


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


def test_an_assignment_records_what_the_task_holds_and_clears_why_it_waited() -> None:
    waiting = Task(id="t", class_name="A", pending_reason="no node offers class A")
    transition = assignment(waiting, "n1", holds={"slots": 1, "gpu": 1})
    assert transition.changes["holds"] == {"slots": 1, "gpu": 1}
    assert transition.changes["pending_reason"] is None
    assert assignment(waiting, "n1").changes["holds"] == {"slots": 1.0}, "one slot unless told"


def test_a_pending_reason_is_written_only_to_a_waiting_task_at_its_epoch_without_history() -> None:
    task = Task(id="t", class_name="A", epoch=2)
    note = pending(task, "no node offers class A")
    assert note.expect == {"lifecycle_status": S.CREATED, "epoch": 2}
    assert note.changes == {"pending_reason": "no node offers class A"} and note.push == {}
    with pytest.raises(InvalidTransition):
        pending(task.model_copy(update={"lifecycle_status": S.RUNNING, "executor": "n1"}), "x")


def test_only_created_tasks_and_paused_ones_without_an_executor_need_placement() -> None:
    assert needs_placement(Task(id="t", class_name="A"))
    assert needs_placement(Task(id="t", class_name="A", lifecycle_status=S.PAUSED))
    assert not needs_placement(Task(id="t", class_name="A", lifecycle_status=S.PAUSED, executor="n1"))
    assert not needs_placement(Task(id="t", class_name="A", lifecycle_status=S.RUNNING, executor="n1"))


def test_a_waiting_event_names_who_places_the_task() -> None:
    assert waiting_event(Task(id="t", class_name="A")).placer == "dispatcher"
    assert waiting_event(Task(id="t", class_name="A", pinned_node="edge-1")).placer == "edge-1"
    assert waiting_event(Task(id="t", class_name="A", executor="n1")).placer == "n1"


# ---- resources and labels ----------------------------------------------------------------
GPU_TASK = Task(id="g", class_name="A", resources={"gpu": 1})


@pytest.mark.parametrize("name", POLICIES)
def test_a_task_goes_only_to_a_node_with_enough_of_each_resource_left(name: str) -> None:
    policy = build_policy(name)
    pool = [
        node("no-gpu", 0),
        node("gpu-busy", 0, offers={"gpu": 1}, used={"gpu": 1}),
        node("gpu-free", 3, offers={"gpu": 2}, used={"gpu": 1}),
    ]
    assert {policy.choose(GPU_TASK, pool) for _ in range(10)} == {"gpu-free"}
    assert policy.choose(GPU_TASK, pool[:2]) is None


def test_a_class_declares_what_its_tasks_need_and_a_task_overrides_it_key_by_key() -> None:
    spec = ClassSpec(resources={"gpu": 1, "memory_mb": 2048})
    small = node("small", offers={"gpu": 1, "memory_mb": 1024}, specs={"A": spec})
    big = node("big", offers={"gpu": 1, "memory_mb": 4096}, specs={"A": spec})
    policy = build_policy("least_loaded")
    assert policy.choose(TASK, [small, big]) == "big"
    assert policy.choose(Task(id="t", class_name="A", resources={"memory_mb": 512}), [small]) == "small"
    assert big.needs(TASK).resources == {"slots": 1, "gpu": 1, "memory_mb": 2048}


def test_a_task_may_take_several_slots() -> None:
    wide = Task(id="w", class_name="A", resources={"slots": 3})
    policy = build_policy("least_loaded")
    assert policy.choose(wide, [node("a", 2, 4), node("b", 1, 4)]) == "b"
    assert policy.choose(wide, [node("a", 2, 4)]) is None


@pytest.mark.parametrize("name", POLICIES)
def test_required_labels_are_a_filter_and_preferred_labels_win_among_the_rest(name: str) -> None:
    policy = build_policy(name)
    pool = [
        node("a", 0, labels={"zone": "a"}),
        node("b-ssd", 3, labels={"zone": "b", "disk": "ssd"}),
        node("b-hdd", 0, labels={"zone": "b", "disk": "hdd"}),
    ]
    in_b = Task(id="t", class_name="A", required_labels={"zone": "b"}, preferred_labels={"disk": "ssd"})
    assert {policy.choose(in_b, pool) for _ in range(10)} == {"b-ssd"}
    only = Task(id="t", class_name="A", required_labels={"zone": "c"})
    assert policy.choose(only, pool) is None


def test_a_class_may_require_labels_on_the_nodes_that_serve_it() -> None:
    spec = ClassSpec(required_labels={"gpu": "yes"})
    pool = [node("plain", 0, specs={"A": spec}), node("gpu", 3, labels={"gpu": "yes"}, specs={"A": spec})]
    assert build_policy("least_loaded").choose(TASK, pool) == "gpu"


def test_sticky_placement_prefers_the_node_the_task_last_ran_on() -> None:
    ran = Attempt(attempt=0, epoch=1, node="b", ended_at=1, outcome=AttemptOutcome.NODE_LOST)
    task = Task(id="t", class_name="A", attempts=[ran])
    pool = [node("a", 0), node("b", 3)]
    policy = build_policy("least_loaded")
    assert policy.choose(task, pool) == "b"
    assert policy.choose(task, pool, sticky=False) == "a"
    assert policy.choose(task, [node("a", 0), node("b", 4)]) == "a", "full: placed elsewhere"


def test_preferred_labels_come_before_stickiness() -> None:
    ran = Attempt(attempt=0, epoch=1, node="b", ended_at=1, outcome=AttemptOutcome.HANDED_BACK)
    task = Task(id="t", class_name="A", attempts=[ran], preferred_labels={"zone": "a"})
    assert build_policy("least_loaded").choose(task, [node("a", 3, labels={"zone": "a"}), node("b", 0)]) == "a"


# ---- why a task waits ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("task", "pool", "reason"),
    [
        (TASK, [node("n", classes=("B", "C"))], "no node offers class A"),
        (TASK, [node("e", mode="edge")], "no node offers class A"),
        (TASK, [], "no node offers class A"),
        (
            Task(id="t", class_name="A", required_labels={"zone": "b", "gpu": "yes"}),
            [node("n")],
            "no node matches selector gpu=yes,zone=b",
        ),
        (GPU_TASK, [node("n")], "not enough gpu (needs 1, most free 0)"),
        (
            GPU_TASK,
            [node("n", offers={"gpu": 2}, used={"gpu": 2}), node("m", offers={"gpu": 1}, used={"gpu": 0.5})],
            "not enough gpu (needs 1, most free 0.5)",
        ),
        (Task(id="t", class_name="A", pinned_node="edge-1"), [node("n")], "pinned to node edge-1, which is offline"),
        (Task(id="t", class_name="A", executor="n2"), [node("n")], "pinned to node n2, which is offline"),
        (
            Task(id="t", class_name="A", pinned_node="n"),
            [node("n", draining=True)],
            "pinned to node n, which is stopping",
        ),
        (
            Task(id="t", class_name="A", resources={"cpu": 2, "gpu": 1}),
            [node("cpus", offers={"cpu": 4}), node("gpus", offers={"gpu": 1, "cpu": 1})],
            "not enough resources on any one node (needs cpu 2, gpu 1, slots 1)",
        ),
    ],
)
def test_a_task_no_node_can_take_is_told_why(task: Task, pool: list[Candidate], reason: str) -> None:
    found = fit(task, pool)
    assert found.able == [] and found.reason == reason and not found.slots_busy


def test_a_task_that_waits_only_for_a_slot_is_told_so() -> None:
    found = fit(TASK, [node("a", 4, 4), node("b", 2, 2), node("other", 0, classes=("B",))])
    assert found.slots_busy and found.slots == 6 and found.key == frozenset({"a", "b"})
