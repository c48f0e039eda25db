"""A catalog keeps each pool class's own retry policy, and advertises it with the class."""

from __future__ import annotations

from skalds.worker.registry import RETRIES_KEY, WorkerCatalog

DEMO = {"MyWorker": "skalds.workers.demo:MyWorker", "CountdownWorker": "skalds.workers.demo:CountdownWorker"}


def test_a_catalog_keeps_each_class_s_own_retry_settings_and_advertises_them() -> None:
    catalog = WorkerCatalog(DEMO, {"MyWorker": {"max_retries": 0, "retry_backoff_s": None}, "Gone": {"max_retries": 1}})
    assert catalog.retries("MyWorker") == {"max_retries": 0}
    assert catalog.retries("CountdownWorker") == {} and catalog.retries("Gone") == {}, "only classes it has"
    advertised = {e["className"]: e["schema"] for e in catalog.schemas()}
    assert advertised["MyWorker"][RETRIES_KEY] == {"max_retries": 0}
    assert RETRIES_KEY not in advertised["CountdownWorker"]


def test_a_pool_edit_that_only_changes_a_policy_counts_as_a_changed_class() -> None:
    catalog = WorkerCatalog(DEMO)
    edited = catalog.with_classes(DEMO, {"CountdownWorker": {"max_retries": 7}})
    assert catalog.adopt(edited) == (["CountdownWorker"], [])
    assert catalog.retries("CountdownWorker") == {"max_retries": 7}
    assert catalog.adopt(catalog.with_classes(DEMO, {"CountdownWorker": {"max_retries": 7}})) == ([], [])
