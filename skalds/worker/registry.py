"""Finding worker classes by name: import paths from config, or classes registered in code."""

from __future__ import annotations

import importlib
import runpy
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from skalds.core.requirements import NO_SPEC, ClassSpec, check_amounts
from skalds.errors import ConfigError, UnknownWorkerClass, ValidationFailed, pydantic_errors
from skalds.worker.baseclass import BaseTaskWorker

#: Key of an advertised attachment schema listing every accepted top-level key (field names
#: and aliases), present when the model refuses unknown keys.
ACCEPTED_KEYS = "x-skalds-accepts"
#: Key of an advertised attachment schema holding the class's own retry settings (task field
#: names: ``max_retries``, ``retry_backoff_s``, ``retry_backoff_max_s``), present when its
#: pool sets any, so a controller without the class's pool gives its tasks the same policy.
RETRIES_KEY = "x-skalds-retries"

_loaded_scripts: dict[str, dict[str, Any]] = {}


def class_path(cls: type) -> str:
    """The import path a fresh process can load ``cls`` from: ``module:QualName``, or
    ``/path/to/script.py:QualName`` for a class defined in the script run as ``__main__``."""
    module = cls.__module__
    if module in ("__main__", "__mp_main__"):
        main_file = getattr(sys.modules.get(module), "__file__", None)
        if main_file is None:
            raise ConfigError(f"{cls.__qualname__} lives in an interactive session; define it in a module")
        module = str(Path(main_file).resolve())
    return f"{module}:{cls.__qualname__}"


def import_source(module: str) -> Any:
    """Import a module by name, or run a script file (``*.py``) once the way
    multiprocessing's spawn does: as ``__mp_main__``, so its ``if __name__ == "__main__":``
    block stays quiet. Returns the module, or the script's namespace dict."""
    if not module.endswith(".py"):
        return importlib.import_module(module)
    namespace = _loaded_scripts.get(module)
    if namespace is None:
        namespace = _loaded_scripts[module] = runpy.run_path(module, run_name="__mp_main__")
    return namespace


#: How a pool names a class: its import path, or ``{path, resources, requiredLabels,
#: preferredLabels}`` (what each of its tasks needs of a node).
ClassEntry = str | Mapping[str, Any]


def class_entry(entry: ClassEntry) -> tuple[str, ClassSpec]:
    """The import path and the requirements of one ``classes:`` entry of a pool.

    Raises:
        ConfigError: an entry that is neither an import path nor a mapping with ``path``.
    """
    if isinstance(entry, str):
        return entry, NO_SPEC
    path = entry.get("path") if isinstance(entry, Mapping) else None
    if not isinstance(path, str) or not path:
        raise ConfigError(f"a class is an import path or a mapping with 'path' (got {entry!r})")
    try:
        resources = entry.get("resources") or {}
        if not isinstance(resources, Mapping):
            raise ValueError(f"resources must be a mapping (got {resources!r})")
        check_amounts(resources, "resources")
        return path, ClassSpec.from_dict(entry)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad requirements of class {path!r}: {exc}") from exc


def module_of(path: str) -> str:
    """The module (or script file) of a class path ``module:Class`` or ``module.Class``."""
    return path.partition(":")[0] if ":" in path else path.rpartition(".")[0]


def load_class(path: str) -> type[BaseTaskWorker[Any]]:
    """Import a worker class from ``module:Class``, ``module.Class`` or ``file.py:Class``.

    Raises:
        ConfigError: the path does not name an importable BaseTaskWorker subclass.
    """
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        obj: Any = import_source(module_name)
        for part in attr.split("."):
            obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    except (ImportError, AttributeError, KeyError, OSError) as exc:
        raise ConfigError(f"cannot load worker class {path!r}: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, BaseTaskWorker)):
        raise ConfigError(f"{path!r} is not a BaseTaskWorker subclass")
    return obj


class WorkerCatalog:
    """The worker classes a component knows, by class name (the task's ``className``)."""

    def __init__(
        self, classes: Mapping[str, ClassEntry] | None = None, retries: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        self._paths: dict[str, str] = {}
        self._classes: dict[str, type[BaseTaskWorker[Any]]] = {}
        self._specs: dict[str, ClassSpec] = {}  # what a task of the class needs, when its pool says
        self._from_code: set[str] = set()  # registered from code, not from a pool file
        self._retries: dict[str, dict[str, Any]] = {}  # class -> its pool's retry settings
        for name, entry in (classes or {}).items():
            path, spec = class_entry(entry)
            self.add_path(name, path, spec)
        self._set_retries(retries)

    def _set_retries(self, retries: Mapping[str, Mapping[str, Any]] | None) -> None:
        self._retries = {
            name: {k: v for k, v in settings.items() if v is not None}
            for name, settings in (retries or {}).items()
            if name in self._paths and any(v is not None for v in settings.values())
        }

    def with_classes(
        self, classes: Mapping[str, ClassEntry], retries: Mapping[str, Mapping[str, Any]] | None = None
    ) -> WorkerCatalog:
        """A new catalog with these pool classes (each loaded now, with what each of its
        tasks needs of a node), their retry settings (task field names, see :meth:`retries`),
        and the classes this one had registered from code.

        Raises:
            ConfigError: a path does not load; ``detail["class_name"]`` names its class.
        """
        other = WorkerCatalog()
        for name in self._from_code:
            other.register(self._classes[name], name)
        for name, entry in classes.items():
            if name in other._from_code:
                continue
            try:
                path, spec = class_entry(entry)
                if self._paths.get(name) == path:  # unchanged: no import needed
                    other._paths[name], other._classes[name] = path, self._classes[name]
                    if spec != NO_SPEC:
                        other._specs[name] = spec
                    continue
                other.add_path(name, path, spec)
            except ConfigError as exc:
                raise ConfigError(exc.message, class_name=name, path=str(entry)) from exc
        other._set_retries(retries)
        return other

    def adopt(self, other: WorkerCatalog) -> tuple[list[str], list[str]]:
        """Take ``other``'s classes in place (everyone holding this catalog sees them).
        Returns the class names added or changed (their path, requirements or retry
        settings), and those removed."""
        changed = sorted(
            n
            for n, p in other._paths.items()
            if self._paths.get(n) != p or self.spec(n) != other.spec(n) or self._retries.get(n) != other._retries.get(n)
        )
        removed = sorted(set(self._paths) - set(other._paths))
        self._paths, self._classes, self._from_code = dict(other._paths), dict(other._classes), set(other._from_code)
        self._specs = dict(other._specs)
        self._retries = dict(other._retries)
        return changed, removed

    def retries(self, name: str) -> dict[str, Any]:
        """The retry settings class ``name``'s pool gives it, as task fields
        (``max_retries``, ``retry_backoff_s``, ``retry_backoff_max_s``; absent: not set)."""
        return dict(self._retries.get(name, {}))

    def add_path(self, name: str, path: str, spec: ClassSpec = NO_SPEC) -> None:
        """Know class ``name`` by its import path (loaded now, so config errors show early),
        and what each of its tasks needs of a node."""
        cls = load_class(path)
        self._paths[name] = path
        self._classes[name] = cls
        if spec != NO_SPEC:
            self._specs[name] = spec

    def spec(self, name: str) -> ClassSpec:
        """What each task of class ``name`` needs of a node, as its pool declares it."""
        return self._specs.get(name, NO_SPEC)

    def specs(self) -> dict[str, dict[str, Any]]:
        """className -> its requirements as a node advertises them, for classes that have any."""
        return {name: spec.to_dict() for name, spec in sorted(self._specs.items()) if name in self._paths}

    def register(self, cls: type[BaseTaskWorker[Any]], name: str | None = None) -> None:
        """Know a class object under its own name (the seed's ``register_task_worker``)."""
        cls.data_model()  # fail now, not when the first task arrives
        name = name or cls.__name__
        self._paths[name] = class_path(cls)
        self._classes[name] = cls
        self._from_code.add(name)

    def names(self) -> list[str]:
        """Known class names, sorted."""
        return sorted(self._paths)

    def path(self, name: str) -> str:
        """The import path of class ``name``.

        Raises:
            UnknownWorkerClass: no such class.
        """
        self.get(name)
        return self._paths[name]

    def modules(self, names: list[str] | None = None) -> list[str]:
        """The modules (or script files) the classes (all, or ``names``) live in, for preloading."""
        paths = self._paths.values() if names is None else [self._paths[n] for n in names if n in self._paths]
        return sorted({module_of(p) for p in paths})

    def get(self, name: str) -> type[BaseTaskWorker[Any]]:
        """The class called ``name``.

        Raises:
            UnknownWorkerClass: no such class; the message lists the known ones.
        """
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownWorkerClass(
                f"unknown className {name!r}; known: {', '.join(self.names()) or 'none'}",
                field="className",
                known=self.names(),
            ) from None

    def validate(self, name: str, attachments: Any) -> BaseModel:
        """Validate attachments against class ``name``'s model. A key the model does not know
        is refused (a typo must not be dropped silently) unless the model allows extra fields.

        Raises:
            UnknownWorkerClass: no such class.
            ValidationFailed: the attachments do not fit; ``detail["errors"]`` names the fields.
        """
        model = self.get(name).data_model()
        unknown = unknown_keys(model, attachments)
        if unknown:
            known = ", ".join(sorted(accepted_keys(model) or ())) or "none"
            errors = [{"field": k, "message": f"unknown field (known: {known})"} for k in unknown]
            raise ValidationFailed.of_fields(f"invalid attachments for {name}", errors)
        try:
            return model.model_validate(attachments)
        except ValueError as exc:  # pydantic.ValidationError subclasses ValueError
            errors = pydantic_errors(getattr(exc, "errors", list)())
            raise ValidationFailed.of_fields(
                f"invalid attachments for {name}", errors or [{"field": "", "message": str(exc)}]
            ) from exc

    def normalize(self, name: str, attachments: Any) -> dict[str, Any]:
        """Validate attachments and return them as the model dumps them (JSON, by alias), so
        equal settings always compare equal.

        Raises:
            UnknownWorkerClass, ValidationFailed: as :meth:`validate`.
        """
        return self.validate(name, attachments).model_dump(mode="json", by_alias=True)

    def aliased(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``fields`` with Python field names turned into the model's aliases, so a patch
        written either way merges onto attachments stored by alias."""
        model = self.get(name).data_model()
        names = {f: info.alias for f, info in model.model_fields.items() if info.alias}
        return {names.get(k, k): v for k, v in fields.items()}

    def schemas(self) -> list[dict[str, Any]]:
        """``[{"className", "schema"}]``: each class with the JSON Schema of its attachments."""
        out = []
        for n in self.names():
            model = self._classes[n].data_model()
            schema = model.model_json_schema(by_alias=True)
            accepted = accepted_keys(model)
            if accepted is not None:
                schema[ACCEPTED_KEYS] = sorted(accepted)
            if n in self._retries:
                schema[RETRIES_KEY] = dict(self._retries[n])
            out.append({"className": n, "schema": schema})
        return out

    def __contains__(self, name: object) -> bool:
        return name in self._paths

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def accepted_keys(model: type[BaseModel]) -> set[str] | None:
    """Every top-level key ``model`` accepts (names and aliases), or None when it takes any
    key (``extra="allow"``)."""
    config = model.model_config
    if config.get("extra") == "allow":
        return None
    by_name = bool(config.get("populate_by_name") or config.get("validate_by_name"))
    keys: set[str] = set()
    for field_name, info in model.model_fields.items():
        aliases = [a for a in (info.alias, info.validation_alias) if isinstance(a, str)]
        keys.update(aliases)
        if by_name or not aliases:
            keys.add(field_name)
    return keys


def unknown_keys(model: type[BaseModel], attachments: Any) -> list[str]:
    """The top-level keys of ``attachments`` that ``model`` would drop, sorted."""
    accepted = accepted_keys(model)
    if accepted is None or not isinstance(attachments, dict):
        return []
    return sorted(str(k) for k in attachments if k not in accepted)
