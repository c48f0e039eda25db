"""The worker pool file and the seed's tasks file: models, JSON Schemas, and a loader that
reports errors with the file, line and field.

Two formats declare tasks:

- a worker pool (``conf/workers/*.yaml``): ``name``, ``classes`` (className -> import path,
  or -> ``{path, resources, requiredLabels, preferredLabels, max_retries, retry_backoff_s,
  retry_backoff_max_s}``), ``capacity``, ``labels``, ``offers`` (named resources of the nodes
  serving it) and ``tasks`` (id -> className, attachments, priority);
- the seed's ``all_workers.yml``: ``TaskWorkers: {id: {className, attachments, isPersistent}}``.

A file is checked in three steps, and rejected whole at the first failure: YAML syntax (and
duplicate keys, which plain YAML loaders silently drop), the JSON Schema of its format, then
each task's attachments against its class's pydantic model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, ValidationInfo, field_validator

from skalds.core.declared import Declared
from skalds.core.lifecycle import RETRY_FIELDS
from skalds.core.requirements import NAME_PATTERN
from skalds.errors import ConfigError, ValidationFailed, field_path
from skalds.service.catalog import Catalog
from skalds.service.requests import MAX_BACKOFF_S, MAX_PRIORITY, MAX_RETRIES, TASK_ID_PATTERN, check_backoff_cap
from skalds.worker.registry import WorkerCatalog


class DeclaredTaskSpec(BaseModel):
    """One declared task."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    class_name: str = Field(alias="className", min_length=1, description="Worker class to run")
    attachments: dict[str, Any] = Field(default_factory=dict, description="The task's parameters")
    priority: int = Field(0, ge=0, le=MAX_PRIORITY, description="0 (lowest) .. 10 (highest); higher is placed first")
    name: str | None = Field(None, description="A display name")
    is_persistent: bool | None = Field(None, alias="isPersistent", description="Accepted for seed files; unused")


#: Resource names and amounts: what a node offers, what a task needs.
_AMOUNTS: dict[str, JsonValue] = {"propertyNames": {"pattern": NAME_PATTERN}}
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class ClassEntry(BaseModel):
    """A class of a pool in its long form: its import path, what each of its tasks needs of
    a node, and retry settings of its own. The short form, ``Name: module:Class``, is this
    with only the path."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path: str = Field(min_length=1, description="Import path (module:Class)")
    resources: dict[str, Amount] = Field(
        default_factory=dict,
        description="What each task holds on its node: slots (default 1) and named resources (cpu, gpu, ...)",
        json_schema_extra=_AMOUNTS,
    )
    required_labels: dict[str, str] = Field(
        default_factory=dict, alias="requiredLabels", description="Labels a node must carry to run its tasks"
    )
    preferred_labels: dict[str, str] = Field(
        default_factory=dict, alias="preferredLabels", description="Labels preferred among the nodes that can"
    )

    max_retries: int | None = Field(
        None, ge=0, le=MAX_RETRIES, description="Retries of its tasks after a lost run (default: node.max_retries)"
    )
    retry_backoff_s: float | None = Field(
        None, ge=0, le=MAX_BACKOFF_S, allow_inf_nan=False, description="Backoff before retry n: this * 2^(n-1) s"
    )
    retry_backoff_max_s: float | None = Field(
        None, ge=0, le=MAX_BACKOFF_S, allow_inf_nan=False, description="... at most this long"
    )

    @field_validator("retry_backoff_max_s")
    @classmethod
    def _cap_not_below_backoff(cls, value: float | None, info: ValidationInfo) -> float | None:
        check_backoff_cap(info.data.get("retry_backoff_s"), value, "retry_backoff_s")
        return value

    def catalog_entry(self) -> str | dict[str, Any]:
        """How a :class:`WorkerCatalog` takes it: the path alone, or the path with what each
        task of the class needs of a node."""
        placement = self.model_dump(include={"resources", "required_labels", "preferred_labels"}, by_alias=True)
        if not any(placement.values()):
            return self.path
        return {"path": self.path, **placement}

    def retry_settings(self) -> dict[str, Any]:
        """The retry settings it gives (task field names), those it leaves unset left out."""
        return {name: getattr(self, name) for name in RETRY_FIELDS if getattr(self, name) is not None}


def class_entries(classes: dict[Any, Any]) -> dict[str, ClassEntry]:
    """A pool's ``classes:`` in the long form, whichever form each was written in.

    Raises:
        ValidationFailed: an entry is neither a path nor a valid long form; ``detail
            ["errors"]`` names the field as ``<class>.<key>``.
    """
    out: dict[str, ClassEntry] = {}
    for name, entry in classes.items():
        try:
            out[str(name)] = ClassEntry(path=entry) if isinstance(entry, str) else ClassEntry.model_validate(entry)
        except ValidationError as exc:
            errors = [{"field": field_path((name, *e["loc"])), "message": e["msg"]} for e in exc.errors()]
            raise ValidationFailed.of_fields("bad class entry", errors) from exc
    return out


class WorkerPoolFile(BaseModel):
    """A worker pool: what nodes serving it can run, and the tasks it declares."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="The pool's name (its file name without .yaml)")
    classes: dict[str, str | ClassEntry] = Field(
        default_factory=dict,
        description="className -> import path (module:Class), or -> {path, resources, requiredLabels, "
        "preferredLabels, max_retries, retry_backoff_s, retry_backoff_max_s}",
    )
    capacity: int | None = Field(None, ge=1, description="Worker processes per node serving this pool")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of nodes serving this pool")
    offers: dict[str, Amount] = Field(
        default_factory=dict,
        description="Named resources each node serving this pool offers (cpu, memory_mb, gpu, any name)",
        json_schema_extra=_AMOUNTS,
    )
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


@functools.cache
def _validator(model: type[BaseModel]) -> jsonschema.protocols.Validator:
    # Built once per format: generating the schema takes over a millisecond, every save.
    return jsonschema.Draft202012Validator(schema_of(model))


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


#: libyaml's parser where PyYAML was built with it: several times faster than the pure Python
#: one, and every save is parsed. A file it refuses is parsed again by the pure Python one,
#: whose error marks point at the mistake more closely.
_COMPOSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Reader:
    """YAML to plain data, refusing duplicate keys and remembering each key's line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines: dict[tuple[str, ...], int] = {}
        self._constructor = yaml.SafeLoader("")
        try:
            node = yaml.compose(text, Loader=_COMPOSER)
        except yaml.YAMLError:
            node = yaml.compose(text, Loader=yaml.SafeLoader)  # whose marks say where the mistake is
        self.data = self._value(node, ())

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


def parse_file(path: Path, model: type[BaseModel], tasks_key: str) -> tuple[dict[str, Any], _Reader]:
    """Read one file, check its YAML syntax and its format's JSON Schema.

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
        raise _fail(syntax_problem(path, exc)) from exc
    except yaml.YAMLError as exc:
        raise _fail(FileProblem(str(path), f"YAML syntax: {exc}")) from exc
    data = reader.data if reader.data is not None else {}
    if isinstance(data, dict) and data.get(tasks_key, {}) is None:
        data[tasks_key] = {}  # `tasks:` with nothing under it declares no task
    err = jsonschema.exceptions.best_match(_validator(model).iter_errors(data))
    if err is not None:
        where = tuple(str(p) for p in err.absolute_path)
        raise _fail(FileProblem(str(path), err.message, reader.line_of(where), ".".join(where) or None))
    return data, reader


def pool_classes(path: Path, data: dict[str, Any], reader: _Reader, base: WorkerCatalog) -> WorkerCatalog:
    """The catalog the pool file's ``classes:`` make (each new or changed path imported now).

    Raises:
        ValidationFailed: a path does not load, at the line of its class.
    """
    try:
        entries = class_entries(data.get("classes") or {})
    except ValidationFailed as exc:
        first = exc.detail["errors"][0]
        where = ("classes", *first["field"].split("."))
        raise _fail(FileProblem(str(path), first["message"], reader.line_of(where), ".".join(where))) from exc
    try:
        return base.with_classes(
            {name: e.catalog_entry() for name, e in entries.items()},
            {name: e.retry_settings() for name, e in entries.items()},
        )
    except ConfigError as exc:
        name = str(exc.detail.get("class_name", ""))
        where = ("classes", name)
        raise _fail(FileProblem(str(path), exc.message, reader.line_of(where), ".".join(where))) from exc


def declared_tasks(
    path: Path, data: dict[str, Any], reader: _Reader, catalog: Catalog, tasks_key: str
) -> dict[str, Declared]:
    """The tasks a parsed file declares, each one's attachments validated by its class.

    Raises:
        ValidationFailed: an unknown class or attachments that do not fit, at their line.
    """
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
    return tasks


def load_file(path: Path, model: type[BaseModel], catalog: Catalog, tasks_key: str) -> LoadedFile:
    """Read and validate one file against ``catalog``; return its declared tasks.

    Raises:
        ValidationFailed: the message is ``file:line: field: problem``.
    """
    data, reader = parse_file(path, model, tasks_key)
    return LoadedFile(path, data, declared_tasks(path, data, reader, catalog, tasks_key))


def syntax_problem(path: Path, exc: yaml.MarkedYAMLError) -> FileProblem:
    """A YAML syntax error at the line the mistake is on. For something left open (a quote,
    a bracket) that is where it opens, not where the parser gave up; otherwise it is where
    the parser stopped."""
    problem, context = exc.problem_mark, exc.context_mark
    opened = context is not None and exc.context and ("scanning" in exc.context or "flow" in exc.context)
    mark = context if opened else problem
    message = f"YAML syntax: {exc.problem}"
    if opened and context is not None and problem is not None and problem.line != context.line:
        message += f" ({exc.context} that starts here; noticed on line {problem.line + 1})"
    return FileProblem(str(path), message, mark.line + 1 if mark is not None else None)


def _fail(problem: FileProblem) -> ValidationFailed:
    return ValidationFailed(str(problem), problem=problem)


@dataclass
class PoolView:
    """What a pool's files say: the classes (as a catalog, loaded) and the declared tasks."""

    catalog: WorkerCatalog
    tasks: dict[str, Declared] = field(default_factory=dict)


def load_pool(
    pool_file: Path | None,
    tasks_file: Path | None,
    base: WorkerCatalog,
    validation: Callable[[WorkerCatalog], Catalog],
    *,
    with_tasks: bool = True,
) -> PoolView:
    """Read, validate and load everything the pool file and the seed tasks file say: the
    classes first (against ``base``: new and changed paths are imported), then each declared
    task against ``validation(classes)``. Nothing is applied.

    Raises:
        ValidationFailed: one of the files is bad (the first problem, at its line), or both
            declare the same id.
    """
    catalog = base
    declared: dict[str, Declared] = {}
    if pool_file is not None:
        data, reader = parse_file(pool_file, WorkerPoolFile, "tasks")
        catalog = pool_classes(pool_file, data, reader, base)
        if with_tasks:
            declared.update(declared_tasks(pool_file, data, reader, validation(catalog), "tasks"))
    if tasks_file is not None and with_tasks:
        data, reader = parse_file(tasks_file, TaskWorkersFile, "TaskWorkers")
        for task_id, task in declared_tasks(tasks_file, data, reader, validation(catalog), "TaskWorkers").items():
            if task_id in declared:
                raise _fail(
                    FileProblem(
                        str(tasks_file),
                        f"task id {task_id!r} is declared in {pool_file} too",
                        field=f"TaskWorkers.{task_id}",
                    )
                )
            declared[task_id] = task
    return PoolView(catalog, declared)
