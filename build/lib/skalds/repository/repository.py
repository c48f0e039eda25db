"""``TaskRepository``: the seed's task CRUD, on the same MongoDB task store Skalds uses."""

from __future__ import annotations

from skalds.core.lifecycle import Transition
from skalds.core.task import Task, now_ms
from skalds.errors import TaskNotFound
from skalds.proxy.mongo import MongoProxy


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
