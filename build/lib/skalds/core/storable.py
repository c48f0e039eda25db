"""What every task store can hold: the check that turns an unstorable value into a 422.

SQLite and MongoDB both refuse some JSON values that Python parses happily: strings with lone
surrogates (not UTF-8), integers outside 64 bits, non-finite floats, keys MongoDB reserves, and
documents nested too deep. Checking once, before anything is stored, keeps a bad request from
leaving a record that no later read can serve.
"""

from __future__ import annotations

import math
from typing import Any

from skalds.errors import ValidationFailed, field_path

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: Nesting deeper than this is refused (MongoDB's own limit is 100 levels).
MAX_DEPTH = 64


def storable_problems(value: Any, path: tuple[Any, ...] = (), depth: int = 0) -> list[dict[str, str]]:
    """``[{"field", "message"}]`` for every part of ``value`` a store cannot hold."""
    problems: list[dict[str, str]] = []
    if depth > MAX_DEPTH:
        return [{"field": field_path(path), "message": f"nested deeper than {MAX_DEPTH} levels"}]
    if isinstance(value, bool) or value is None:
        return problems
    if isinstance(value, str):
        if not _utf8(value):
            problems.append({"field": field_path(path), "message": "text is not valid Unicode (a lone surrogate)"})
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            problems.append({"field": field_path(path), "message": "integer out of the 64-bit range"})
    elif isinstance(value, float):
        if not math.isfinite(value):
            problems.append({"field": field_path(path), "message": "number must be finite"})
    elif isinstance(value, dict):
        for key, item in value.items():
            here = (*path, key)
            if not isinstance(key, str) or not _utf8(key):
                problems.append({"field": field_path(here), "message": "keys must be valid Unicode text"})
            elif key.startswith("$") or "\x00" in key:
                problems.append({"field": field_path(here), "message": "keys may not start with '$' or hold NUL"})
            problems += storable_problems(item, here, depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problems += storable_problems(item, (*path, i), depth + 1)
    return problems


def check_storable(value: Any, path: tuple[Any, ...] = ()) -> None:
    """Raise when a store could not hold ``value``.

    Raises:
        ValidationFailed: naming each field at fault.
    """
    problems = storable_problems(value, path)
    if problems:
        raise ValidationFailed.of_fields("value cannot be stored", problems)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
