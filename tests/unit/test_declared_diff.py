"""The YAML diff: each kind of edit becomes exactly the right actions, and no edit none."""

from __future__ import annotations

from skalds.core.declared import Declared, diff
from skalds.core.task import Task, TaskLifecycleStatus

S = TaskLifecycleStatus


def stored(task_id: str, cls: str = "A", status: S = S.RUNNING, **attachments: object) -> Task:
    return Task(id=task_id, class_name=cls, attachments=dict(attachments), lifecycle_status=status)


def test_an_unchanged_file_plans_nothing() -> None:
    plan = diff({"a": Declared("a", "A", {"x": 1})}, {"a": stored("a", x=1)})
    assert not plan and plan.summary() == {"created": [], "updated": [], "replaced": [], "cancelled": []}


def test_each_kind_of_edit_maps_to_its_action() -> None:
    declared = {
        "new": Declared("new", "A", {}),
        "changed": Declared("changed", "A", {"x": 2}),
        "reclassed": Declared("reclassed", "B", {"x": 1}),
        "same": Declared("same", "A", {"x": 1}),
    }
    existing = {
        "changed": stored("changed", x=1),
        "reclassed": stored("reclassed", x=1),
        "same": stored("same", x=1),
        "gone": stored("gone"),
        "gone-ended": stored("gone-ended", status=S.FINISHED),
    }
    assert diff(declared, existing).summary() == {
        "created": ["new"],
        "updated": ["changed"],
        "replaced": ["reclassed"],
        "cancelled": ["gone"],
    }


def test_an_ended_task_runs_again_only_when_its_declaration_changed() -> None:
    assert not diff({"a": Declared("a", "A", {"x": 1})}, {"a": stored("a", status=S.FAILED, x=1)})
    plan = diff({"a": Declared("a", "A", {"x": 2})}, {"a": stored("a", status=S.FAILED, x=1)})
    assert plan.summary()["replaced"] == ["a"]
