"""Seed path: ``from skalds.model.event import TaskEvent``."""

from skalds.core.events import ControlEvent, StatusEvent, TaskEvent, UpdateEvent

__all__ = ["ControlEvent", "StatusEvent", "TaskEvent", "UpdateEvent"]
