"""Seed path: ``from skalds.model.task import Task, ModeEnum, TaskWorkerSimpleMapList``.

``Task``, ``TaskLifecycleStatus`` and ``ModeEnum`` (Skalds' ``TaskMode``) are Skalds' own. The
two ``TaskWorkerSimpleMap`` models are the seed's record of the tasks one Skald runs (it kept
them as JSON under ``skalds:{id}:all-task``); Skalds does not use them, scripts may.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skalds.core.task import Task as CoreTask
from skalds.core.task import TaskError, TaskLifecycleStatus, now_ms
from skalds.core.task import TaskMode as ModeEnum

#: The seed's default time to a task's deadline: a week.
DEADLINE_MS = 7 * 24 * 3600 * 1000


class Task(CoreTask):
    """The seed's ``Task``: Skalds' task record, built the way the seed's scripts build it.

    As in the seed, ``attachments`` must be the worker's pydantic model (or None): a plain dict
    is refused, so a typo cannot pass unnoticed; it is stored by the model's aliases. A new
    task's ``deadlineDateTime`` defaults to a week from now, the seed's default (Skalds fails a
    task still waiting to start at its deadline; one that runs is never stopped by it).
    """

    attachments: Any = None
    deadline_date_time: int | None = Field(default_factory=lambda: now_ms() + DEADLINE_MS)

    @field_validator("attachments", mode="before")
    @classmethod
    def _a_model_or_none(cls, value: Any) -> Any:
        if value is None or isinstance(value, BaseModel):
            return value
        raise ValueError("attachments must be a pydantic model instance (the worker's data model) or None")


__all__ = ["ModeEnum", "Task", "TaskError", "TaskLifecycleStatus", "TaskWorkerSimpleMap", "TaskWorkerSimpleMapList"]


class TaskWorkerSimpleMap(BaseModel):
    """One running task: its id and worker class name (``className`` in JSON)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    class_name: str = Field(alias="className")


class TaskWorkerSimpleMapList(BaseModel):
    """The tasks one Skald runs, the ids among them, and when the list last changed (epoch ms).
    Dumped without aliases, as the seed stored it (``{"tasks": [{"id", "class_name"}],
    "existed_task_ids": [...], "timestamp": ms}``)."""

    model_config = ConfigDict(populate_by_name=True)

    tasks: list[TaskWorkerSimpleMap] = Field(default_factory=list)
    existed_task_ids: list[str] = Field(default_factory=list, alias="existedTaskIds")
    timestamp: int = Field(default_factory=now_ms)

    def update_timestamp(self) -> None:
        """Set ``timestamp`` to now."""
        self.timestamp = now_ms()

    def push(self, task_id: str, class_name: str) -> None:
        """Add a task unless one with that id is there already."""
        if any(task.id == task_id for task in self.tasks):
            return
        self.tasks.append(TaskWorkerSimpleMap(id=task_id, class_name=class_name))
        self.existed_task_ids.append(task_id)
        self.update_timestamp()

    def pop_by_task_id(self, task_id: str) -> None:
        """Remove the task with that id (nothing if there is none)."""
        self.tasks = [task for task in self.tasks if task.id != task_id]
        self.existed_task_ids = [i for i in self.existed_task_ids if i != task_id]
        self.update_timestamp()

    def clear(self) -> None:
        """Remove every task."""
        self.tasks = []
        self.existed_task_ids = []
        self.update_timestamp()

    def keep_specify_tasks(self, task_ids: list[str]) -> None:
        """Keep only the tasks whose ids are in ``task_ids``."""
        keep = set(task_ids)
        self.tasks = [task for task in self.tasks if task.id in keep]
        self.existed_task_ids = [i for i in self.existed_task_ids if i in keep]
        self.update_timestamp()
