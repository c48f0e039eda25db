"""Seed path: ``from skalds.model.event import TaskEvent, UpdateTaskWorkerEvent``."""

from skalds.core.events import ControlEvent, StatusEvent, TaskEvent, UpdateEvent, UpdateTaskWorkerEvent

__all__ = ["ControlEvent", "StatusEvent", "TaskEvent", "UpdateEvent", "UpdateTaskWorkerEvent"]
