"""Seed path: ``from skalds.model.task import Task``."""

from skalds.core.task import Task, TaskError, TaskLifecycleStatus

__all__ = ["Task", "TaskError", "TaskLifecycleStatus"]
