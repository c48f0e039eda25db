"""The MongoDB task store in the contract suite, against a real MongoDB-wire server (SecantusDB)
started for the tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from skalds.ports.task_store import TaskStore
from tests.servers.mongo import mongo

DB_NAME = "skalds_test"


@contextlib.contextmanager
def _mongo(unique: str) -> Iterator[TaskStore]:
    import pymongo

    from skalds.backends.mongo import MongoSettings, MongoTaskStore

    server = mongo()
    store = MongoTaskStore(MongoSettings(uri=server.uri, db_name=DB_NAME, collection=unique))
    try:
        yield store
    finally:
        store.close()
        # Only this test's collection: the server is shared by the whole test run.
        with pymongo.MongoClient(server.uri, timeoutMS=10_000) as client:
            client[DB_NAME].drop_collection(unique)


STORES = {"mongo": _mongo}
