"""MongoTaskStore details beyond the port's contract: the stored document, its indexes, and
errors for an unreachable server or a bad URI."""

from __future__ import annotations

from collections.abc import Iterator

import pymongo
import pytest

from skalds.backends.mongo import MongoSettings, MongoTaskStore
from skalds.core.lifecycle import Action, Transition, plan
from skalds.core.task import Task, TaskLifecycleStatus
from skalds.errors import BackendUnavailable, ConfigError
from tests.contract.adapters_mongo import DB_NAME, STORES
from tests.servers import free_port, unavailable
from tests.servers.mongo import MongoServer, mongo, start_mongo


@pytest.fixture
def server() -> MongoServer:
    return mongo()


@pytest.fixture
def store(unique: str) -> Iterator[MongoTaskStore]:
    with STORES["mongo"](unique) as store:
        assert isinstance(store, MongoTaskStore)
        yield store


def test_a_task_is_stored_as_its_camel_case_document_keyed_by_id(
    store: MongoTaskStore, server: MongoServer, unique: str
) -> None:
    task = store.create(Task(id="a", class_name="C", attachments={"rtspUrl": "x"}))
    store.apply(plan(task, Action.ASSIGN, executor="n1"))
    with pymongo.MongoClient(server.uri) as client:
        doc = client[DB_NAME][unique].find_one({"_id": "a"})
        indexes = {tuple(k for k, _ in info["key"]) for info in client[DB_NAME][unique].index_information().values()}
    assert doc is not None
    assert doc["id"] == "a" and doc["className"] == "C" and doc["attachments"] == {"rtspUrl": "x"}
    assert (doc["lifecycleStatus"], doc["executor"], doc["epoch"]) == ("Assigning", "n1", 1)
    assert isinstance(doc["createDateTime"], int)
    assert {
        ("lifecycleStatus", "executor"),
        ("executor",),
        ("className",),
        ("source",),
        ("createDateTime", "id"),
    } <= indexes


def test_a_transition_may_expect_and_set_times_and_enums(store: MongoTaskStore) -> None:
    task = store.create(Task(id="a", class_name="C"))
    later = task.update_date_time + 1000
    expect = {"update_date_time": task.update_date_time, "lifecycle_status": TaskLifecycleStatus.CREATED}
    written = store.apply(Transition("a", expect, {"update_date_time": later, "priority": 7}))
    assert (written.update_date_time, written.priority) == (later, 7)
    with pytest.raises(ValueError, match="nosuch"):
        store.apply(Transition("a", {"nosuch": 1}, {"priority": 1}))


def test_an_unreachable_server_is_backend_unavailable(unique: str) -> None:
    settings = MongoSettings(uri=f"mongodb://127.0.0.1:{free_port()}", collection=unique, timeout_s=0.5)
    with pytest.raises(BackendUnavailable):
        MongoTaskStore(settings)


def test_a_malformed_uri_is_a_config_error() -> None:
    for uri in ("notmongo://127.0.0.1", "mongodb://127.0.0.1:99999"):
        with pytest.raises(ConfigError, match=r"backend\.mongo\.uri"):
            MongoTaskStore(MongoSettings(uri=uri))


def test_calls_on_a_store_whose_server_went_away_are_backend_unavailable(unique: str) -> None:
    try:
        own = start_mongo()
    except Exception as exc:
        unavailable(f"mongo: {exc}")
    store = MongoTaskStore(MongoSettings(uri=own.uri, collection=unique, timeout_s=1.0))
    store.create(Task(id="a", class_name="C"))
    own.stop()
    with pytest.raises(BackendUnavailable):
        store.get("a")
    store.close()
    store.close()


class _Commands(pymongo.monitoring.CommandListener):
    """The read commands a client sends (find, count, aggregate), as sent."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.on = False

    def started(self, event: pymongo.monitoring.CommandStartedEvent) -> None:
        if self.on and event.command_name in ("find", "aggregate", "count"):
            self.sent.append(dict(event.command))

    def succeeded(self, event: pymongo.monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: pymongo.monitoring.CommandFailedEvent) -> None:
        pass


def _scans(plan: dict) -> list[str]:
    """The stages of a query plan that read the whole collection."""
    found = [plan["stage"]] if plan.get("stage") == "COLLSCAN" else []
    for key in ("inputStage", "queryPlan"):
        if isinstance(plan.get(key), dict):
            found += _scans(plan[key])
    for child in plan.get("inputStages", []):
        found += _scans(child)
    return found


def test_what_the_monitor_and_the_dispatcher_read_on_timers_is_served_by_an_index(
    server: MongoServer, unique: str
) -> None:
    from skalds.ports.task_store import TaskQuery

    listener = _Commands()
    pymongo.monitoring.register(listener)  # clients made from now on report their commands
    store = MongoTaskStore(MongoSettings(uri=server.uri, db_name=DB_NAME, collection=unique))
    try:
        for i in range(30):
            task = store.create(Task(id=f"t{i}", class_name="C"))
            if i % 3:
                store.apply(plan(store.apply(plan(task, Action.ASSIGN, executor="n1")), Action.FINISH))
        listener.on = True
        store.find(TaskQuery(unplaced=True, limit=100_000))  # the monitor's sweep
        store.count_active_by_executor()  # the monitor's check
        store.active_usage()  # every dispatch round
        store.find(TaskQuery(lifecycle_status=[TaskLifecycleStatus.RUNNING], executor="n1"))  # preemption
        active = sorted({TaskLifecycleStatus.ASSIGNING, TaskLifecycleStatus.RUNNING, TaskLifecycleStatus.PAUSED})
        store.find(TaskQuery(lifecycle_status=active, executor="n1", limit=1_000_000))  # a node's reconcile sweep
        store.find(TaskQuery(unplaced=True, pinned_node="n1", limit=1_000_000))  # a node's own waiting tasks
        listener.on = False
        assert {c.get("find") or c.get("aggregate") or c.get("count") for c in listener.sent} == {unique}
        with pymongo.MongoClient(server.uri) as client:
            for command in listener.sent:
                command = {k: v for k, v in command.items() if not k.startswith("$") and k != "lsid"}
                explained = client[DB_NAME].command("explain", command)
                plans = [
                    s["$cursor"]["queryPlanner"]["winningPlan"] for s in explained.get("stages", []) if "$cursor" in s
                ]
                plans += [explained["queryPlanner"]["winningPlan"]] if "queryPlanner" in explained else []
                assert plans, explained
                assert [s for p in plans for s in _scans(p)] == [], f"a full scan serves {command}"
    finally:
        listener.on = False
        store.close()
