"""Seed path for ``SkaldConfig``, and a helper to fill settings dataclasses from config."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from skalds.errors import ConfigError

T = TypeVar("T")


def settings_from(cls: type[T], values: Mapping[str, Any], prefix: str, where: str) -> T:
    """Build the settings dataclass ``cls`` from a config section.

    Raises:
        ConfigError: a key ``cls`` does not have, named as ``<prefix>.<key>`` with ``where``
            (the file it comes from) and the keys that exist.
    """
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{prefix}.{unknown[0]}: unknown key; known: {', '.join(sorted(known))} ({where} or the command line)",
            key=f"{prefix}.{unknown[0]}",
        )
    try:
        return cls(**{str(k): v for k, v in values.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{prefix}: {exc} ({where} or the command line)", key=prefix) from exc
