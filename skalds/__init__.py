"""Skalds: an event-driven, modular, distributed task scheduler and executor.

The public API is imported lazily, so that worker processes (which import
``skalds.worker``) do not pay for the controller's web stack.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.4.0"

__all__ = [
    "BaseTaskWorker",
    "Skald",
    "SkaldConfig",
    "Skalds",
    "SkaldsError",
    "Task",
    "TaskEvent",
    "TaskLifecycleStatus",
]

_EXPORTS = {
    "BaseTaskWorker": "skalds.worker.baseclass",
    "Skald": "skalds.app",
    "SkaldConfig": "skalds.config.skald_config",
    "Skalds": "skalds.app",
    "SkaldsError": "skalds.errors",
    "Task": "skalds.core.task",
    "TaskEvent": "skalds.core.events",
    "TaskLifecycleStatus": "skalds.core.task",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skalds' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
