"""The JSON Schemas in ``schemas/``, generated from the pydantic models that validate the same
documents, so the two can never disagree. ``python -m skalds.reload.schemas`` rewrites them;
a test fails when the committed files are stale."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from skalds.reload.pool import TaskWorkersFile, WorkerPoolFile, schema_of
from skalds.service.requests import CreateTaskRequest

SCHEMA_DIR = Path(__file__).parent.parent / "schemas"  # skalds/schemas: the repository's schemas/


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, for every document Skalds reads."""
    out = {
        "worker_pool.schema.json": schema_of(WorkerPoolFile),
        "task_workers.schema.json": schema_of(TaskWorkersFile),
        "task_create.schema.json": schema_of(CreateTaskRequest),
    }
    for name, schema in out.items():
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://skalds.dev/schemas/{name}"
    return out


def render(schema: dict[str, Any]) -> str:
    """The committed text of a schema."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> None:
    """Write ``schemas/*.json``."""
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, schema in schemas().items():
        (SCHEMA_DIR / name).write_text(render(schema))
        print(f"wrote {SCHEMA_DIR / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
