"""What a task needs of a node: slots and named resources, required and preferred labels.

A worker class may declare them in its pool (``classes: {Cam: {path, resources, requiredLabels,
preferredLabels}}``) and a task may add its own; the task's values win key by key. A node offers
``capacity`` slots plus the named resources of its pool's ``offers:`` and ``node.offers``, and
carries labels. Pure data and arithmetic, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The resource every run takes one of unless it says otherwise; a node offers ``capacity``.
SLOTS = "slots"
#: What a resource or label name may look like.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$"
_NAME = re.compile(NAME_PATTERN)


def check_amounts(values: Mapping[str, Any], where: str) -> dict[str, float]:
    """Resource amounts as floats: names of the allowed form, numbers >= 0.

    Raises:
        ValueError: a bad name or amount, naming it (``where`` says whose).
    """
    out: dict[str, float] = {}
    for name, amount in values.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{where}: {name!r} is not a resource name (letters, digits, _ . - /)")
        if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
            raise ValueError(f"{where}: {name} must be a number >= 0 (got {amount!r})")
        out[name] = float(amount)
    return out


@dataclass(frozen=True)
class ClassSpec:
    """What every task of one class needs, as the pool of a node declares it."""

    resources: dict[str, float] = field(default_factory=dict)
    required_labels: dict[str, str] = field(default_factory=dict)
    preferred_labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form a node advertises in its lease (camelCase, empty parts left out)."""
        out: dict[str, Any] = {}
        if self.resources:
            out["resources"] = dict(self.resources)
        if self.required_labels:
            out["requiredLabels"] = dict(self.required_labels)
        if self.preferred_labels:
            out["preferredLabels"] = dict(self.preferred_labels)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ClassSpec:
        """Inverse of :meth:`to_dict` (also reads snake_case keys); unknown keys are ignored."""
        data = data or {}

        def part(camel: str, snake: str) -> dict[str, Any]:
            value = data.get(camel, data.get(snake)) or {}
            return dict(value) if isinstance(value, Mapping) else {}

        return cls(
            resources={str(k): float(v) for k, v in part("resources", "resources").items()},
            required_labels={str(k): str(v) for k, v in part("requiredLabels", "required_labels").items()},
            preferred_labels={str(k): str(v) for k, v in part("preferredLabels", "preferred_labels").items()},
        )


NO_SPEC = ClassSpec()


@dataclass(frozen=True)
class Needs:
    """What one task needs of one node: amounts (``slots`` always among them) and labels."""

    resources: dict[str, float]
    required_labels: dict[str, str]
    preferred_labels: dict[str, str]


def needs(
    resources: Mapping[str, float],
    required_labels: Mapping[str, str],
    preferred_labels: Mapping[str, str],
    spec: ClassSpec = NO_SPEC,
) -> Needs:
    """A task's own requirements over its class's ``spec`` (the task's win key by key)."""
    amounts = {SLOTS: 1.0, **spec.resources, **resources}
    return Needs(
        resources=amounts,
        required_labels={**spec.required_labels, **required_labels},
        preferred_labels={**spec.preferred_labels, **preferred_labels},
    )


def labels_text(labels: Mapping[str, str]) -> str:
    """Labels as people write them: ``gpu=yes,zone=a``."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def amount_text(value: float) -> str:
    """An amount without a needless ``.0``: 1, 0.5, 2048."""
    return f"{value:g}"
