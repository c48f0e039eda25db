"""MongoDB task store: one document per task, conditional writes as one ``find_one_and_update``.

Each document is :meth:`Task.to_doc` (camelCase keys, enums as their values, nested models as
camelCase sub-documents) with ``_id`` = the task id. Datetimes stay ISO 8601 strings, but
written fixed-width in UTC with microseconds (``2026-01-02T03:04:05.000000Z``): then string
order is time order, which ``find``'s sort on ``(createDateTime, id)`` relies on, and the
microseconds that a BSON date would drop survive the round trip.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pymongo
from pydantic import ValidationError
from pymongo.errors import ConfigurationError, DuplicateKeyError, PyMongoError

from skalds.core.lifecycle import Transition
from skalds.core.task import ACTIVE_STATES, Task
from skalds.errors import BackendUnavailable, ConfigError, StaleWrite, TaskAlreadyExists, TaskNotFound
from skalds.ports.task_store import TaskPage, TaskQuery, TaskStore

#: snake_case field name -> camelCase document key, as Task.to_doc writes them.
_KEYS = {name: info.alias or name for name, info in Task.model_fields.items()}
_DATETIME_FIELDS = frozenset(name for name, info in Task.model_fields.items() if info.annotation is datetime)
_SORT = [(_KEYS["create_date_time"], pymongo.ASCENDING), (_KEYS["id"], pymongo.ASCENDING)]
#: One index per query the controller makes (``_id`` is unique by itself).
_INDEXES = [
    [(_KEYS["lifecycle_status"], pymongo.ASCENDING)],
    [(_KEYS["executor"], pymongo.ASCENDING)],
    [(_KEYS["class_name"], pymongo.ASCENDING)],
    _SORT,
]


@dataclass(frozen=True)
class MongoSettings:
    """Where the tasks live.

    Attributes:
        uri: MongoDB connection string (credentials, replica set and TLS options go here).
        db_name: database name.
        collection: collection name; distinct collections never see each other's tasks.
        timeout_s: bound on each operation, server selection included, in seconds.
    """

    uri: str = "mongodb://localhost:27017"
    db_name: str = "skalds"
    collection: str = "tasks"
    timeout_s: float = 5.0


def _iso(value: datetime) -> str:
    # Aware datetimes become fixed-width UTC; a naive one (no clock in Skalds makes those) is
    # kept as to_doc wrote it, so it still reads back equal.
    if value.tzinfo is None:
        return value.isoformat()
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _to_doc(task: Task) -> dict[str, Any]:
    doc = task.to_doc()
    for name in _DATETIME_FIELDS:
        doc[_KEYS[name]] = _iso(getattr(task, name))
    return {"_id": task.id, **doc}


def _from_doc(doc: dict[str, Any]) -> Task:
    doc.pop("_id", None)
    return Task.from_doc(doc)


def _to_fields(task_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """Snake_case field values -> the document's keys and JSON values, validated and
    serialized by Task itself exactly as :meth:`Task.to_doc` would write them."""
    partial = Task.model_construct(id=task_id, class_name="")
    try:
        for name, value in values.items():
            Task.__pydantic_validator__.validate_assignment(partial, name, value)
    except ValidationError as exc:
        raise ValueError(f"bad transition of task {task_id!r}: {exc}") from exc
    doc = partial.model_dump(mode="json", by_alias=True, include=set(values))
    for name in _DATETIME_FIELDS & values.keys():
        doc[_KEYS[name]] = _iso(getattr(partial, name))
    return doc


class MongoTaskStore(TaskStore):
    """Tasks in one MongoDB collection (MongoDB, or a server that speaks its wire protocol).

    Thread-safe (pymongo's pooled client). Every call is bounded by ``timeout_s`` and raises
    :class:`~skalds.errors.BackendUnavailable` when the server cannot be reached or refuses;
    the client reconnects by itself for the next call. Writes return once the server
    acknowledged them (the deployment's default write concern).
    """

    def __init__(self, settings: MongoSettings) -> None:
        """Connect and make sure the indexes exist.

        Raises:
            ConfigError: the URI or an option in it is malformed.
            BackendUnavailable: the server cannot be reached or refused to create indexes.
        """
        self.settings = settings
        timeout_ms = int(settings.timeout_s * 1000)
        try:
            client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
                settings.uri,
                timeoutMS=timeout_ms,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                appname="skalds",
            )
        except (ConfigurationError, ValueError) as exc:  # pymongo raises ValueError for a bad port
            raise ConfigError(f"backend.mongo.uri: {exc}", key="backend.mongo.uri") from exc
        self._client = client
        self._tasks = client[settings.db_name][settings.collection]
        try:
            with self._translated("creating indexes"):
                self._tasks.create_indexes([pymongo.IndexModel(keys) for keys in _INDEXES])
        except BackendUnavailable:
            client.close()  # its monitor threads would outlive a store nobody holds
            raise

    @contextmanager
    def _translated(self, operation: str) -> Iterator[None]:
        try:
            yield
        except PyMongoError as exc:
            where = f"{self.settings.db_name}.{self.settings.collection}"
            raise BackendUnavailable(f"{operation} in MongoDB {where} failed: {exc}", backend="mongo") from exc

    def create(self, task: Task) -> Task:
        """Insert a new task and return it.

        Raises:
            TaskAlreadyExists: a task with this id exists (the stored one is left alone).
            BackendUnavailable: the server cannot be reached.
        """
        with self._translated(f"creating task {task.id!r}"):
            try:
                self._tasks.insert_one(_to_doc(task))
            except DuplicateKeyError as exc:
                raise TaskAlreadyExists(f"task {task.id!r} already exists", task_id=task.id) from exc
        return task

    def get(self, task_id: str) -> Task:
        """The task with this id.

        Raises:
            TaskNotFound: there is none.
            BackendUnavailable: the server cannot be reached.
        """
        with self._translated(f"reading task {task_id!r}"):
            doc = self._tasks.find_one({"_id": task_id})
        if doc is None:
            raise TaskNotFound(f"task {task_id!r} not found", task_id=task_id)
        return _from_doc(doc)

    def find(self, query: TaskQuery) -> TaskPage:
        """Tasks matching ``query``, by creation time then id, skipped and limited by the
        server. The page and its total are two reads, not one snapshot.

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        where: dict[str, Any] = {}
        if query.lifecycle_status:
            where[_KEYS["lifecycle_status"]] = {"$in": [getattr(s, "value", s) for s in query.lifecycle_status]}
        if query.class_name is not None:
            where[_KEYS["class_name"]] = query.class_name
        if query.executor is not None:
            where[_KEYS["executor"]] = query.executor
        with self._translated("finding tasks"):
            total = self._tasks.count_documents(where)
            docs: list[dict[str, Any]] = []
            # Mongo reads limit 0 as "no limit"; the port means an empty page.
            if query.limit > 0:
                docs = list(self._tasks.find(where, sort=_SORT, skip=max(0, query.offset), limit=query.limit))
        return TaskPage([_from_doc(doc) for doc in docs], total)

    def apply(self, transition: Transition) -> Task:
        """Set ``transition.changes`` if every ``transition.expect`` field still holds, in one
        atomic ``find_one_and_update``, and return the task as written.

        Raises:
            TaskNotFound: no such task.
            StaleWrite: the task exists but an expected value differs; nothing was written.
            ValueError: the transition names an unknown field, a bad value, or changes the id.
            BackendUnavailable: the server cannot be reached.
        """
        task_id = transition.task_id
        if "id" in transition.changes:
            raise ValueError(f"a transition cannot change the id of task {task_id!r}")
        where = {"_id": task_id, **_to_fields(task_id, transition.expect)}
        changes = _to_fields(task_id, transition.changes)
        with self._translated(f"updating task {task_id!r}"):
            if changes:
                doc = self._tasks.find_one_and_update(
                    where, {"$set": changes}, return_document=pymongo.ReturnDocument.AFTER
                )
            else:
                doc = self._tasks.find_one(where)
            if doc is not None:
                return _from_doc(doc)
            # Nothing matched: tell a missing task from a lost race.
            current = self._tasks.find_one({"_id": task_id}, {_KEYS["lifecycle_status"]: 1, _KEYS["epoch"]: 1})
        if current is None:
            raise TaskNotFound(f"task {task_id!r} not found", task_id=task_id)
        raise StaleWrite(
            f"task {task_id!r} changed meanwhile (now {current.get(_KEYS['lifecycle_status'])}, "
            f"epoch {current.get(_KEYS['epoch'])})",
            task_id=task_id,
        )

    def count_active_by_executor(self) -> dict[str, int]:
        """How many Assigning/Running/Paused tasks each executor holds (one aggregation).

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        pipeline: list[dict[str, Any]] = [
            {
                "$match": {
                    _KEYS["lifecycle_status"]: {"$in": [s.value for s in ACTIVE_STATES]},
                    _KEYS["executor"]: {"$ne": None},
                }
            },
            {"$group": {"_id": f"${_KEYS['executor']}", "count": {"$sum": 1}}},
        ]
        with self._translated("counting active tasks"):
            rows = list(self._tasks.aggregate(pipeline))
        return {row["_id"]: int(row["count"]) for row in rows}

    def close(self) -> None:
        """Close the client's connections. Idempotent."""
        self._client.close()
