"""``TaskRepository``: the seed's task CRUD, on the same MongoDB task store Skalds uses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from skalds.core.lifecycle import Action, Transition, plan
from skalds.core.storable import check_storable
from skalds.core.task import Task, now_ms
from skalds.errors import StaleWrite, TaskNotFound
from skalds.proxy.mongo import MongoProxy

#: Re-reads after a racing writer changed the task under an update.
_RETRIES = 5


class TaskRepository:
    """Create and read tasks the way the seed's scripts did. A task created here is an
    ordinary Skalds task: publishing its id on ``task.assign`` gets it dispatched."""

    def __init__(self, mongo_proxy: MongoProxy | None = None) -> None:
        from skalds.backends.mongo import MongoSettings, MongoTaskStore

        if mongo_proxy is None:
            raise ValueError("TaskRepository needs a MongoProxy")
        self.mongo_proxy = mongo_proxy
        self.store = MongoTaskStore(MongoSettings(uri=mongo_proxy.host, db_name=mongo_proxy.db_name))

    def create_task(self, task: Task) -> Task:
        """Store a new task (state Created).

        Raises:
            TaskAlreadyExists: the id is taken.
        """
        return self.store.create(task)

    def get_task_by_task_id(self, id: str, strict_mode: bool = True) -> Task | None:
        """The task, or None if there is none."""
        try:
            return self.store.get(id)
        except TaskNotFound:
            return None

    def update_executor(self, id: str, executor: str) -> Task | None:
        """Set a task's executor (kept for seed scripts; the dispatcher does this itself)."""
        try:
            return self.store.apply(Transition(id, {}, {"executor": executor, "update_date_time": now_ms()}))
        except TaskNotFound:
            return None

    def update_attachments(self, id: str, attachments: BaseModel | dict[str, Any]) -> Task | None:
        """Replace a task's attachments, as the seed's scripts did before announcing the
        change with a ``TaskEvent`` on ``task.update.attachment``.

        A pydantic model is stored by its aliases (as ``create_task`` stores one). The write
        is the UPDATE of the task's lifecycle: ``desiredVersion`` goes up by one, and a task
        that ended is refused. The attachments are not checked against the class's model
        here (the script may not import it); the worker validates them when they arrive.

        Returns:
            The task as written, or None if there is no such task.

        Raises:
            InvalidTransition: the task has ended (Finished, Failed or Cancelled).
            ValidationFailed: a value no task store can hold (the field is named).
            StaleWrite: the task kept changing under the update.
        """
        data = attachments.model_dump(mode="json", by_alias=True) if isinstance(attachments, BaseModel) else attachments
        check_storable(data, ("attachments",))
        for _ in range(_RETRIES):
            try:
                task = self.store.get(id)
            except TaskNotFound:
                return None
            try:
                return self.store.apply(
                    plan(task, Action.UPDATE, attachments=data, desired_version=task.desired_version + 1)
                )
            except StaleWrite:
                continue
            except TaskNotFound:
                return None
        raise StaleWrite(f"task {id!r} kept changing; attachments not updated", task_id=id)
