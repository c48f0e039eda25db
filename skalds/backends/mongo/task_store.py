"""MongoDB task store: one document per task, conditional writes as one ``find_one_and_update``.

Each document is :meth:`Task.to_doc` (camelCase keys, enums as their values, nested models as
camelCase sub-documents, times as epoch-millisecond integers) with ``_id`` = the task id, so a
document reads the same as the seed's did.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pymongo
from pydantic import BaseModel, ValidationError
from pymongo.errors import BulkWriteError, ConfigurationError, DuplicateKeyError, PyMongoError

from skalds.core.lifecycle import Transition, keep_newest
from skalds.core.requirements import SLOTS
from skalds.core.task import (
    ACTIVE_STATES,
    KEPT,
    UNREADABLE,
    Task,
    TaskLifecycleStatus,
    record_problem,
    unreadable_task,
)
from skalds.errors import BackendUnavailable, ConfigError, StaleWrite, TaskAlreadyExists, TaskNotFound
from skalds.ports.task_store import TaskPage, TaskQuery, TaskStore, taken_ids

logger = logging.getLogger(__name__)
S = TaskLifecycleStatus

#: snake_case field name -> camelCase document key, as Task.to_doc writes them.
_KEYS = {name: info.alias or name for name, info in Task.model_fields.items()}
_STATUS, _EXECUTOR, _CREATED = _KEYS["lifecycle_status"], _KEYS["executor"], _KEYS["create_date_time"]
_SORT = [(_CREATED, pymongo.ASCENDING), (_KEYS["id"], pymongo.ASCENDING)]
_SORT_NEWEST = [(_CREATED, pymongo.DESCENDING), (_KEYS["id"], pymongo.DESCENDING)]
#: One index per query the controller and the nodes make (``_id`` is unique by itself).
_INDEXES = [
    [(_STATUS, pymongo.ASCENDING), (_EXECUTOR, pymongo.ASCENDING)],
    [(_EXECUTOR, pymongo.ASCENDING)],
    [(_KEYS["class_name"], pymongo.ASCENDING)],
    [(_KEYS["source"], pymongo.ASCENDING)],
    # A node's own waiting tasks (pinned there, Created or Paused without an executor); the
    # pin alone is a prefix of it.
    [(_KEYS["pinned_node"], pymongo.ASCENDING), (_STATUS, pymongo.ASCENDING), (_EXECUTOR, pymongo.ASCENDING)],
    [(_KEYS["update_date_time"], pymongo.ASCENDING)],
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


def _to_doc(task: Task) -> dict[str, Any]:
    return {"_id": task.id, **task.to_doc()}


def _to_fields(task_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """Snake_case field values -> the document's keys and JSON values, validated and
    serialized by Task itself exactly as :meth:`Task.to_doc` would write them."""
    partial = Task.model_construct(id=task_id, class_name="")
    try:
        for name, value in values.items():
            Task.__pydantic_validator__.validate_assignment(partial, name, value)
    except ValidationError as exc:
        raise ValueError(f"bad transition of task {task_id!r}: {exc}") from exc
    return partial.model_dump(mode="json", by_alias=True, include=set(values))


def _json(item: Any) -> Any:
    return item.model_dump(mode="json", by_alias=True) if isinstance(item, BaseModel) else item


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
        self._reported: set[str] = set()
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
        self._marks = client[settings.db_name][f"{settings.collection}.node_marks"]
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

    def _from_doc(self, doc: dict[str, Any]) -> Task:
        task_id = str(doc.pop("_id", doc.get("id", "?")))
        try:
            return Task.from_doc(doc)
        except ValueError as exc:
            problem = record_problem(exc)
            if task_id not in self._reported:
                self._reported.add(task_id)
                logger.error("task %s: its MongoDB document cannot be read (%s); shown as Failed", task_id, problem)
            class_name = doc.get(_KEYS["class_name"])
            return unreadable_task(task_id, class_name if isinstance(class_name, str) else None, problem)

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

    def create_many(self, tasks: Sequence[Task]) -> list[Task]:
        """Insert new tasks in one ordered ``insert_many``, all or none: MongoDB stops at the
        first refused document, and the ones inserted before it are deleted again before
        this raises (a collection outside a replica set has no transactions).

        Raises:
            TaskAlreadyExists: ids taken or given twice (``detail["task_ids"]``); nothing kept.
            BackendUnavailable: the server failed; what the batch wrote is removed as far as
                the server can still be reached.
        """
        if not tasks:
            return []
        docs = [_to_doc(t) for t in tasks]
        ids = [t.id for t in tasks]
        with self._translated(f"creating {len(tasks)} tasks"):
            try:
                self._tasks.insert_many(docs, ordered=True)
            except BulkWriteError as exc:
                failures = exc.details.get("writeErrors") or []
                written = failures[0]["index"] if failures else int(exc.details.get("nInserted", 0))
                if written:
                    self._tasks.delete_many({"_id": {"$in": ids[:written]}})
                if not failures or any(f.get("code") != 11000 for f in failures):
                    raise
                stored = {d["_id"] for d in self._tasks.find({"_id": {"$in": ids}}, {"_id": 1})}
                taken = taken_ids(tasks, stored)
                raise TaskAlreadyExists(f"task ids taken: {', '.join(taken)}", task_ids=taken) from exc
            except PyMongoError:
                # How far the insert got is unknown: remove this batch's documents (its ids,
                # as yet unplaced, created at its times), if the server can still be reached.
                created = sorted({t.create_date_time for t in tasks})
                with contextlib.suppress(PyMongoError):
                    self._tasks.delete_many({"_id": {"$in": ids}, _CREATED: {"$in": created}, _KEYS["epoch"]: 0})
                raise
        return list(tasks)

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
        return self._from_doc(doc)

    def find(self, query: TaskQuery) -> TaskPage:
        """Tasks matching ``query``, by creation time then id, skipped and limited by the
        server. The page and its total are two reads, not one snapshot.

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        where: dict[str, Any] = {}
        for name in ("class_name", "executor", "source", "pinned_node"):
            value = getattr(query, name)
            if value is not None:
                where[_KEYS[name]] = value
        patterns = {"id": query.id_pattern, "class_name": query.class_pattern, "lifecycle_status": query.status_pattern}
        for name, pattern in patterns.items():
            if pattern is not None:
                where.setdefault("$and", []).append({_KEYS[name]: {"$regex": pattern, "$options": "i"}})
        windows = (
            ("create_date_time", query.created_after, query.created_before),
            ("update_date_time", query.updated_after, query.updated_before),
        )
        for name, since, until in windows:
            bounds = {op: v for op, v in (("$gte", since), ("$lt", until)) if v is not None}
            if bounds:
                where[_KEYS[name]] = bounds
        if query.after is not None:
            op = "$lt" if query.newest_first else "$gt"
            created, last_id = query.after
            where.setdefault("$and", []).append(
                {"$or": [{_CREATED: {op: created}}, {_CREATED: created, _KEYS["id"]: {op: last_id}}]}
            )
        states = [getattr(s, "value", s) for s in query.lifecycle_status or []]
        if query.unplaced:
            # Created, or Paused without an executor: an $or of the two is a full scan on
            # servers that plan no index union, so each is a query of its own.
            waiting: list[dict[str, Any]] = [{_STATUS: S.CREATED.value}, {_STATUS: S.PAUSED.value, _EXECUTOR: None}]
            parts = [p for p in waiting if not states or p[_STATUS] in states]
            return self._find_parts(where, parts, query)
        if len(states) > 1 and where and query.offset == 0:
            # Several states beside another field: one query per state, each served by an
            # index (an $in beside another field is a full scan on some servers).
            return self._find_parts(where, [{_STATUS: state} for state in states], query)
        if states:
            where[_STATUS] = states[0] if len(states) == 1 else {"$in": states}
        with self._translated("finding tasks"):
            total = self._tasks.count_documents(where)
            docs: list[dict[str, Any]] = []
            # Mongo reads limit 0 as "no limit"; the port means an empty page.
            if query.limit > 0:
                sort = _SORT_NEWEST if query.newest_first else _SORT
                docs = list(self._tasks.find(where, sort=sort, skip=max(0, query.offset), limit=query.limit))
        return TaskPage([self._from_doc(doc) for doc in docs], total)

    def _find_parts(self, where: dict[str, Any], parts: list[dict[str, Any]], query: TaskQuery) -> TaskPage:
        """The tasks matching ``where`` and any one of ``parts`` (disjoint), one query per
        part, merged in the order :meth:`find` promises."""
        sort = _SORT_NEWEST if query.newest_first else _SORT
        wanted = max(0, query.offset) + query.limit
        total, docs = 0, []
        with self._translated("finding tasks"):
            for part in parts:
                if any(k in where and where[k] != v for k, v in part.items()):
                    continue  # contradicts the query's own filter on that field
                scoped = {**where, **part}
                total += self._tasks.count_documents(scoped)
                if wanted > 0:
                    docs += list(self._tasks.find(scoped, sort=sort, limit=wanted))
        created, key = _KEYS["create_date_time"], _KEYS["id"]
        docs.sort(key=lambda d: (d.get(created, 0), str(d.get("_id", d.get(key, "")))), reverse=query.newest_first)
        page = docs[max(0, query.offset) : max(0, query.offset) + query.limit]
        return TaskPage([self._from_doc(doc) for doc in page], total)

    def apply(self, transition: Transition) -> Task:
        """Set ``transition.changes`` (and append ``transition.push``) if every
        ``transition.expect`` field still holds, in one atomic ``find_one_and_update``, and
        return the task as written.

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
        update: dict[str, Any] = {}
        if transition.changes:
            update["$set"] = _to_fields(task_id, transition.changes)
        if transition.push:
            update["$push"] = {
                _KEYS[name]: {"$each": [_json(item)], "$slice": -KEPT.get(name, 100)}
                for name, item in transition.push.items()
            }
        with self._translated(f"updating task {task_id!r}"):
            if update:
                doc = self._tasks.find_one_and_update(where, update, return_document=pymongo.ReturnDocument.AFTER)
            else:
                doc = self._tasks.find_one(where)
            if doc is not None:
                return self._from_doc(doc)
            # Nothing matched: tell a missing task from a lost race (or an unreadable record).
            current = self._tasks.find_one({"_id": task_id})
        if current is None:
            raise TaskNotFound(f"task {task_id!r} not found", task_id=task_id)
        repaired = self._repair(dict(current), transition)
        if repaired is not None:
            return repaired
        raise StaleWrite(
            f"task {task_id!r} changed meanwhile (now {current.get(_STATUS)}, epoch {current.get(_KEYS['epoch'])})",
            task_id=task_id,
        )

    def _repair(self, raw: dict[str, Any], transition: Transition) -> Task | None:
        """Apply ``transition`` to an unreadable document as if it were the placeholder the
        store serves for it (how a replace or a delete heals one); None if it is readable or
        the placeholder does not match."""
        task = self._from_doc(dict(raw))
        if task.source != UNREADABLE or any(getattr(task, k) != v for k, v in transition.expect.items()):
            return None
        update = dict(transition.changes)
        for name, item in transition.push.items():
            update[name] = keep_newest(name, [*getattr(task, name), item])
        fixed = Task.model_validate({**task.model_dump(), **update, "source": transition.changes.get("source", "api")})
        # Conditional on the broken document itself: a racing repair loses.
        with self._translated(f"repairing task {task.id!r}"):
            done = self._tasks.replace_one(raw, _to_doc(fixed))
        return fixed if done.modified_count == 1 else None

    def delete(self, task_id: str, expect: dict[str, Any]) -> None:
        """Remove the task if every ``expect`` field holds (one conditional ``delete_one``).

        Raises:
            TaskNotFound, StaleWrite, BackendUnavailable: as :meth:`apply`.
        """
        where = {"_id": task_id, **_to_fields(task_id, expect)}
        with self._translated(f"deleting task {task_id!r}"):
            if self._tasks.delete_one(where).deleted_count == 1:
                return
            current = self._tasks.find_one({"_id": task_id}, {_STATUS: 1})
        if current is None:
            raise TaskNotFound(f"task {task_id!r} not found", task_id=task_id)
        raise StaleWrite(f"task {task_id!r} changed meanwhile (now {current.get(_STATUS)})", task_id=task_id)

    def count_by_status_and_class(self) -> dict[tuple[TaskLifecycleStatus, str], int]:
        """How many tasks are in each state, per class (one aggregation).

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        group = {"_id": {"s": f"${_STATUS}", "c": f"${_KEYS['class_name']}"}, "count": {"$sum": 1}}
        with self._translated("counting tasks by state"):
            rows = list(self._tasks.aggregate([{"$group": group}]))
        known = {s.value: s for s in TaskLifecycleStatus}
        return {(known[r["_id"]["s"]], str(r["_id"]["c"])): int(r["count"]) for r in rows if r["_id"].get("s") in known}

    def class_names(self) -> list[str]:
        """Every class name some stored task has, sorted (one ``distinct``).

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        with self._translated("listing class names"):
            names = self._tasks.distinct(_KEYS["class_name"])
        return sorted(n for n in names if isinstance(n, str) and n)

    def count_active_by_executor(self) -> dict[str, int]:
        """How many Assigning/Running/Paused tasks each executor holds (one aggregation).

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        pipeline: list[dict[str, Any]] = [
            # Matched on the state alone: an executor condition beside it makes some servers
            # scan; the group without an executor is left out below.
            {"$match": {_STATUS: {"$in": [s.value for s in ACTIVE_STATES]}}},
            {"$group": {"_id": f"${_EXECUTOR}", "count": {"$sum": 1}}},
        ]
        with self._translated("counting active tasks"):
            rows = list(self._tasks.aggregate(pipeline))
        return {row["_id"]: int(row["count"]) for row in rows if row["_id"] is not None}

    def active_usage(self) -> dict[str, dict[str, float]]:
        """What the placed tasks of each executor hold, summed per name (one aggregation on
        the state index; a task without ``holds`` counts one slot).

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        holds = _KEYS["holds"]
        pipeline: list[dict[str, Any]] = [
            {"$match": {_STATUS: {"$in": [s.value for s in ACTIVE_STATES]}}},
            {"$project": {_EXECUTOR: 1, "h": {"$objectToArray": {"$ifNull": [f"${holds}", {SLOTS: 1}]}}}},
            {"$unwind": "$h"},
            {"$group": {"_id": {"e": f"${_EXECUTOR}", "k": "$h.k"}, "v": {"$sum": "$h.v"}}},
        ]
        with self._translated("summing what placed tasks hold"):
            rows = list(self._tasks.aggregate(pipeline))
        usage: dict[str, dict[str, float]] = {}
        for row in rows:
            if row["_id"].get("e") is not None:
                usage.setdefault(str(row["_id"]["e"]), {})[str(row["_id"]["k"])] = float(row["v"])
        return usage

    def touch_node(self, node_id: str, instance: str) -> None:
        """Bump the node's mark in ``<collection>.node_marks`` (one upsert).

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        with self._translated(f"touching node {node_id!r}"):
            self._marks.update_one({"_id": node_id}, {"$set": {"instance": instance}, "$inc": {"seq": 1}}, upsert=True)

    def node_marks(self) -> dict[str, str]:
        """Every node's mark (one read of a collection with a document per node).

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        with self._translated("reading node marks"):
            return {str(d["_id"]): f"{d.get('instance')}:{d.get('seq')}" for d in self._marks.find({})}

    def close(self) -> None:
        """Close the client's connections. Idempotent."""
        self._client.close()
