"""Test helper: write a broken document behind a task store's back."""

from __future__ import annotations

import json
from typing import Any

from skalds.ports.task_store import TaskStore


def corrupt(store: TaskStore, task_id: str, changes: dict[str, Any]) -> bool:
    """Overwrite fields of a stored document directly; False for stores this cannot reach."""
    from skalds.backends.local import SqliteTaskStore

    if isinstance(store, SqliteTaskStore):
        db = store._db
        (doc,) = db.execute("SELECT doc FROM tasks WHERE id=?", (task_id,)).fetchone()
        db.execute("UPDATE tasks SET doc=? WHERE id=?", (json.dumps({**json.loads(doc), **changes}), task_id))
        if "lifecycleStatus" in changes:  # the indexed column holds the same (hand-edited) value
            db.execute("UPDATE tasks SET status=? WHERE id=?", (changes["lifecycleStatus"], task_id))
        return True
    try:
        from skalds.backends.mongo import MongoTaskStore
    except ImportError:
        return False
    if isinstance(store, MongoTaskStore):
        store._tasks.update_one({"_id": task_id}, {"$set": changes})
        return True
    return False
