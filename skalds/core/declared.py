"""Declared tasks (from worker pool YAML) and the diff that turns an edit into actions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skalds.core.task import Task


@dataclass(frozen=True)
class Declared:
    """One task as a YAML file declares it; ``attachments`` already validated and
    normalized by the class's model (so equal values compare equal)."""

    id: str
    class_name: str
    attachments: dict[str, Any]
    priority: int = 0
    name: str | None = None


@dataclass
class DeclaredPlan:
    """What to do so the running tasks match the declarations."""

    create: list[Declared] = field(default_factory=list)
    update: list[Declared] = field(default_factory=list)  # attachments changed: live update
    replace: list[Declared] = field(default_factory=list)  # class changed, or an ended task changed
    cancel: list[str] = field(default_factory=list)  # no longer declared

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.replace or self.cancel)

    def summary(self) -> dict[str, list[str]]:
        """Task ids by action, for logs and the API."""
        return {
            "created": [d.id for d in self.create],
            "updated": [d.id for d in self.update],
            "replaced": [d.id for d in self.replace],
            "cancelled": list(self.cancel),
        }


def diff(declared: Mapping[str, Declared], existing: Mapping[str, Task]) -> DeclaredPlan:
    """Compare declarations with the stored tasks of the same source.

    - declared, not stored → create;
    - stored and live: class changed → replace (stop, start over); the entry's attachments
      changed since the file last declared them → update; nothing changed → nothing (no
      spurious updates, and a change made through the API stays);
    - stored and ended: changed → replace (run again with the new declaration); unchanged →
      nothing (a finished task is not resurrected by every restart);
    - stored and live, no longer declared → cancel.
    """
    plan = DeclaredPlan()
    for task_id, want in declared.items():
        have = existing.get(task_id)
        if have is None:
            plan.create.append(want)
            continue
        same_class = have.class_name == want.class_name
        baseline = have.declared if have.declared is not None else have.attachments_dict()
        same_data = baseline == want.attachments
        if have.lifecycle_status.is_terminal:
            if not (same_class and same_data):
                plan.replace.append(want)
        elif not same_class:
            plan.replace.append(want)
        elif not same_data:
            plan.update.append(want)
    for task_id, have in existing.items():
        if task_id not in declared and not have.lifecycle_status.is_terminal:
            plan.cancel.append(task_id)
    return plan
