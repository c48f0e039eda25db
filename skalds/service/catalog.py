"""What worker classes the cluster can run, as the controller sees them.

Classes the controller can import (its own ``workers=`` pool, classes registered in code) are
validated by their pydantic models. Classes only some node has are validated by the JSON
Schema that node advertises in its lease, so a controller need not install every worker's
code; the node validates again with the model when the worker starts.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import jsonschema

from skalds.errors import BackendUnavailable, UnknownWorkerClass, ValidationFailed, field_path
from skalds.ports.live_state import LiveState
from skalds.worker.registry import ACCEPTED_KEYS, RETRIES_KEY, WorkerCatalog


class Catalog(Protocol):
    """The part of a class catalog that validation needs."""

    def __contains__(self, name: object) -> bool: ...
    def names(self) -> list[str]: ...
    def normalize(self, name: str, attachments: Any) -> dict[str, Any]: ...
    def aliased(self, name: str, fields: dict[str, Any]) -> dict[str, Any]: ...
    def schemas(self) -> list[dict[str, Any]]: ...
    def retries(self, name: str) -> dict[str, Any]: ...


class ClusterCatalog:
    """The local catalog plus the classes live nodes advertise (refreshed at most every
    ``refresh_s``)."""

    def __init__(self, local: WorkerCatalog, live: LiveState, refresh_s: float = 1.0) -> None:
        self.local = local
        self.live = live
        self.refresh_s = refresh_s
        self._remote: dict[str, dict[str, Any]] = {}
        self._fetched = float("-inf")

    def _remote_schemas(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        if now - self._fetched >= self.refresh_s:
            try:
                nodes = self.live.nodes()
            except BackendUnavailable:
                # Keep what the nodes advertised last: validation goes on while the live
                # state is away (the next refresh tries again).
                self._fetched = now
                return self._remote
            remote: dict[str, dict[str, Any]] = {}
            for node in sorted(nodes, key=lambda n: n.id):
                for name, schema in node.schemas.items():
                    remote.setdefault(name, schema)
            self._remote, self._fetched = remote, now
        return self._remote

    def __contains__(self, name: object) -> bool:
        return name in self.local or name in self._remote_schemas()

    def names(self) -> list[str]:
        """Every class some node or this controller knows, sorted."""
        return sorted(set(self.local.names()) | set(self._remote_schemas()))

    def normalize(self, name: str, attachments: Any) -> dict[str, Any]:
        """Validate and normalize attachments (by the model when the class is local).

        Raises:
            UnknownWorkerClass: no node and no local pool knows the class.
            ValidationFailed: the attachments do not fit; ``detail["errors"]`` names fields.
        """
        if name in self.local:
            return self.local.normalize(name, attachments)
        schema = self._remote_schemas().get(name)
        if schema is None:
            raise UnknownWorkerClass(
                f"unknown className {name!r}; known: {', '.join(self.names()) or 'none'}",
                field="className",
                known=self.names(),
            )
        errors = [
            {"field": field_path(e.path) or _missing(e), "message": e.message}
            for e in sorted(
                jsonschema.Draft202012Validator(schema).iter_errors(attachments), key=lambda e: list(e.path)
            )
        ]
        accepted = schema.get(ACCEPTED_KEYS)
        if isinstance(accepted, list) and isinstance(attachments, dict):
            errors += [
                {"field": str(k), "message": f"unknown field (known: {', '.join(accepted) or 'none'})"}
                for k in sorted(map(str, attachments))
                if k not in accepted
            ]
        if errors:
            raise ValidationFailed.of_fields(f"invalid attachments for {name}", errors)
        return dict(attachments)

    def aliased(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Field names turned into aliases (only known for local classes)."""
        return self.local.aliased(name, fields) if name in self.local else dict(fields)

    def retries(self, name: str) -> dict[str, Any]:
        """The retry settings of class ``name``'s pool (task field names), from this
        controller's pool when the class is local, else as a node advertises them."""
        if name in self.local:
            return self.local.retries(name)
        settings = self._remote_schemas().get(name, {}).get(RETRIES_KEY)
        return dict(settings) if isinstance(settings, dict) else {}

    def schemas(self) -> list[dict[str, Any]]:
        """``[{"className", "schema"}]`` for every class, with ``retries`` (task field
        names) when its pool sets a retry policy of its own."""
        local = {entry["className"]: entry["schema"] for entry in self.local.schemas()}
        merged = {**self._remote_schemas(), **local}
        out = []
        for n in sorted(merged):
            entry: dict[str, Any] = {
                "className": n,
                "schema": {k: v for k, v in merged[n].items() if k not in (ACCEPTED_KEYS, RETRIES_KEY)},
            }
            if isinstance(merged[n].get(RETRIES_KEY), dict):
                entry["retries"] = merged[n][RETRIES_KEY]
            out.append(entry)
        return out


def _missing(error: jsonschema.ValidationError) -> str:
    # A "required" error sits on the parent object; name the missing property instead.
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [p for p in error.validator_value if p not in error.instance]
        if missing:
            return str(missing[0])
    return ""
