"""MongoDB adapters: the task store (one document per task, conditional writes)."""

from skalds.backends.mongo.task_store import MongoSettings, MongoTaskStore

__all__ = ["MongoSettings", "MongoTaskStore"]
