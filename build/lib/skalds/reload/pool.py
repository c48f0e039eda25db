"""The worker pool file and the seed's tasks file: models, JSON Schemas, and a loader that
reports errors with the file, line and field.

Two formats declare tasks:

- a worker pool (``conf/workers/*.yaml``): ``name``, ``classes`` (className -> import path),
  ``capacity``, ``labels`` and ``tasks`` (id -> className, attachments, priority);
- the seed's ``all_workers.yml``: ``TaskWorkers: {id: {className, attachments, isPersistent}}``.

A file is checked in three steps, and rejected whole at the first failure: YAML syntax (and
duplicate keys, which plain YAML loaders silently drop), the JSON Schema of its format, then
each task's attachments against its class's pydantic model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Field

from skalds.core.declared import Declared
from skalds.errors import ValidationFailed
from skalds.service.catalog import Catalog
from skalds.service.requests import MAX_PRIORITY, TASK_ID_PATTERN


class DeclaredTaskSpec(BaseModel):
    """One declared task."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    class_name: str = Field(alias="className", min_length=1, description="Worker class to run")
    attachments: dict[str, Any] = Field(default_factory=dict, description="The task's parameters")
    priority: int = Field(0, ge=0, le=MAX_PRIORITY, description="0 (lowest) .. 10 (highest); higher is placed first")
    name: str | None = Field(None, description="A display name")
    is_persistent: bool | None = Field(None, alias="isPersistent", description="Accepted for seed files; unused")


class WorkerPoolFile(BaseModel):
    """A worker pool: what nodes serving it can run, and the tasks it declares."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="The pool's name (its file name without .yaml)")
    classes: dict[str, str] = Field(default_factory=dict, description="className -> import path (module:Class)")
    capacity: int | None = Field(None, ge=1, description="Worker processes per node serving this pool")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of nodes serving this pool")
    tasks: dict[str, DeclaredTaskSpec] = Field(
        default_factory=dict,
        description="Declared tasks: id -> spec",
        json_schema_extra={"propertyNames": {"pattern": TASK_ID_PATTERN}},
    )
    tasks_file: str | None = Field(None, description="A seed-format tasks file to declare tasks from as well")


class TaskWorkersFile(BaseModel):
    """The seed's ``all_workers.yml``."""

    model_config = ConfigDict(extra="forbid")

    TaskWorkers: dict[str, DeclaredTaskSpec] = Field(
        default_factory=dict, json_schema_extra={"propertyNames": {"pattern": TASK_ID_PATTERN}}
    )


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of a file format (what ``schemas/`` holds)."""
    return model.model_json_schema(by_alias=True)


@dataclass
class FileProblem:
    """Why a file was rejected: a message, and where when known."""

    file: str
    message: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


@dataclass
class LoadedFile:
    """A parsed, fully validated file."""

    path: Path
    data: dict[str, Any]
    tasks: dict[str, Declared] = field(default_factory=dict)


class _Reader:
    """YAML to plain data, refusing duplicate keys and remembering each key's line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines: dict[tuple[str, ...], int] = {}
        self._constructor = yaml.SafeLoader("")
        self.data = self._value(yaml.compose(text, Loader=yaml.SafeLoader), ())

    def _value(self, node: yaml.Node | None, path: tuple[str, ...]) -> Any:
        if node is None:
            return None
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._constructor.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if key in out:
                    raise _fail(
                        FileProblem(str(self.path), f"duplicate key {key!r}", line, ".".join((*path, str(key))))
                    )
                self.lines[(*path, str(key))] = line
                out[key] = self._value(value_node, (*path, str(key)))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._value(n, (*path, str(i))) for i, n in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)

    def line_of(self, path: tuple[str, ...]) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def load_file(path: Path, model: type[BaseModel], catalog: Catalog, tasks_key: str) -> LoadedFile:
    """Read and validate one file; return its declared tasks.

    Raises:
        ValidationFailed: the message is ``file:line: field: problem``; ``detail["problem"]``
            holds a :class:`FileProblem`.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise _fail(FileProblem(str(path), f"cannot read: {exc.strerror or exc}")) from exc
    try:
        reader = _Reader(path, text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise _fail(FileProblem(str(path), f"YAML syntax: {exc.problem}", mark.line + 1 if mark else None)) from exc
    except yaml.YAMLError as exc:
        raise _fail(FileProblem(str(path), f"YAML syntax: {exc}")) from exc
    data = reader.data if reader.data is not None else {}
    if isinstance(data, dict) and data.get(tasks_key, {}) is None:
        data[tasks_key] = {}  # `tasks:` with nothing under it declares no task
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema_of(model)).iter_errors(data))
    if err is not None:
        where = tuple(str(p) for p in err.path)
        raise _fail(FileProblem(str(path), err.message, reader.line_of(where), ".".join(where) or None))
    tasks: dict[str, Declared] = {}
    for task_id, spec_data in (data.get(tasks_key) or {}).items():
        spec = DeclaredTaskSpec.model_validate(spec_data)
        base = (tasks_key, str(task_id))
        if spec.class_name not in catalog:
            raise _fail(
                FileProblem(
                    str(path),
                    f"unknown className {spec.class_name!r}; known: {', '.join(catalog.names())}",
                    reader.line_of((*base, "className")),
                    ".".join((*base, "className")),
                )
            )
        try:
            attachments = catalog.normalize(spec.class_name, spec.attachments)
        except ValidationFailed as exc:
            first = (exc.detail.get("errors") or [{}])[0]
            sub = tuple(str(first.get("field", "")).split(".")) if first.get("field") else ()
            where = (*base, "attachments", *sub)
            raise _fail(
                FileProblem(str(path), first.get("message", exc.message), reader.line_of(where), ".".join(where))
            ) from exc
        tasks[str(task_id)] = Declared(str(task_id), spec.class_name, attachments, spec.priority, spec.name)
    return LoadedFile(path, data, tasks)


def _fail(problem: FileProblem) -> ValidationFailed:
    return ValidationFailed(str(problem), problem=problem)


def load_declarations(pool_file: Path | None, tasks_file: Path | None, catalog: Catalog) -> dict[str, Declared]:
    """Every task the pool file and the seed tasks file declare, validated.

    Raises:
        ValidationFailed: one of the files is bad, or both declare the same id.
    """
    declared: dict[str, Declared] = {}
    if pool_file is not None:
        declared.update(load_file(pool_file, WorkerPoolFile, catalog, "tasks").tasks)
    if tasks_file is not None:
        for task_id, task in load_file(tasks_file, TaskWorkersFile, catalog, "TaskWorkers").tasks.items():
            if task_id in declared:
                raise _fail(
                    FileProblem(
                        str(tasks_file),
                        f"task id {task_id!r} is declared in {pool_file} too",
                        field=f"TaskWorkers.{task_id}",
                    )
                )
            declared[task_id] = task
    return declared
