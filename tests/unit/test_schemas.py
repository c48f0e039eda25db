"""schemas/ agrees with the pydantic models, and both judge documents alike."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import ValidationError

from skalds.reload.pool import WorkerPoolFile
from skalds.reload.schemas import SCHEMA_DIR, render, schemas
from skalds.service.requests import CreateTaskRequest


@pytest.mark.parametrize("name", sorted(schemas()))
def test_committed_schemas_are_generated_from_the_models(name: str) -> None:
    assert (SCHEMA_DIR / name).read_text() == render(schemas()[name]), "run python -m skalds.reload.schemas"


POOLS = [
    ({"name": "p", "classes": {"A": "m:A"}, "tasks": {"t1": {"className": "A", "attachments": {"x": 1}}}}, True),
    ({"name": "p", "tasks": {"bad id": {"className": "A"}}}, False),
    ({"name": "p", "tasks": {"t": {"attachments": {}}}}, False),
    ({"name": "p", "capacity": 0}, False),
    ({"classes": {}}, False),
    ({"name": "p", "extra": 1}, False),
    ({"name": "p", "classes": {"A": {"path": "m:A", "max_retries": 2, "retry_backoff_s": 0.5}}}, True),
    ({"name": "p", "classes": {"A": {"path": "m:A", "resources": {"gpu": 1}, "requiredLabels": {"zone": "a"}}}}, True),
    ({"name": "p", "classes": {"A": {"path": "m:A", "preferredLabels": {"zone": "b"}}, "B": "m:B"}}, True),
    ({"name": "p", "classes": {"A": {"max_retries": 2}}}, False),
    ({"name": "p", "classes": {"A": {"path": "m:A", "max_retries": -1}}}, False),
    ({"name": "p", "classes": {"A": {"path": "m:A", "max_retrys": 1}}}, False),
    ({"name": "p", "classes": {"A": 3}}, False),
]


@pytest.mark.parametrize(("doc", "valid"), POOLS)
def test_schema_and_model_agree_on_pool_files(doc: dict, valid: bool) -> None:
    schema = json.loads((SCHEMA_DIR / "worker_pool.schema.json").read_text())
    assert jsonschema.Draft202012Validator(schema).is_valid(doc) is valid
    try:
        WorkerPoolFile.model_validate(doc)
        model_valid = True
    except ValidationError:
        model_valid = False
    # the task-id pattern lives in the schema only; the loader applies the schema first
    if "bad id" not in str(doc):
        assert model_valid is valid


@pytest.mark.parametrize(
    ("doc", "valid"),
    [
        ({"className": "A"}, True),
        ({"className": "A", "id": "x y"}, False),
        ({"attachments": {}}, False),
        ({"className": "A", "priority": "high"}, False),
        ({"className": "A", "maxRetries": 0, "retryBackoff": 0.25, "retryBackoffMax": 60}, True),
        ({"className": "A", "maxRetries": -1}, False),
        ({"className": "A", "maxRetries": 1001}, False),
        ({"className": "A", "retryBackoff": 86401}, False),
    ],
)
def test_schema_and_model_agree_on_create_requests(doc: dict, valid: bool) -> None:
    schema = json.loads((SCHEMA_DIR / "task_create.schema.json").read_text())
    assert jsonschema.Draft202012Validator(schema).is_valid(doc) is valid
    try:
        CreateTaskRequest.model_validate(doc)
        assert valid
    except ValidationError:
        assert not valid
