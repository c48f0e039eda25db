"""The whole Skalds error hierarchy, and the one formatter of field errors.

Every error a caller can act on is a ``SkaldsError``. Backends translate client-library
exceptions into these classes at the port boundary; the REST API maps each class to an HTTP
status in one table of its own (``skalds.controller.errors``), so nothing here knows HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class SkaldsError(Exception):
    """Root of every error Skalds raises on purpose."""

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ConfigError(SkaldsError, ValueError):
    """A configuration value is missing or wrong; the message names the file and key."""


class TaskNotFound(SkaldsError, KeyError):
    """No task has the given id."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class NotFound(SkaldsError):
    """Something asked for by id (a node, a file) does not exist."""


class TaskAlreadyExists(SkaldsError):
    """A task with the given id exists already."""


class InvalidTransition(SkaldsError):
    """The task's lifecycle state does not allow the requested action."""


class StaleWrite(SkaldsError):
    """A conditional store write lost: the task's state or epoch moved on meanwhile."""


class ValidationFailed(SkaldsError):
    """User input (attachments, a request, a YAML file) does not match its schema.

    ``detail["errors"]`` lists ``{"field", "message"}`` for each problem.
    """

    @classmethod
    def of_fields(cls, prefix: str, errors: Sequence[dict[str, str]], **detail: Any) -> ValidationFailed:
        """One error for many field problems; the message lists them all."""
        summary = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
        return cls(f"{prefix}: {summary}" if prefix else summary, errors=list(errors), **detail)


class UnknownWorkerClass(ValidationFailed):
    """No worker class of that name is known to the cluster."""


class PayloadTooLarge(ValidationFailed):
    """A request or a value is larger than the configured limit."""


class BackendUnavailable(SkaldsError):
    """A backend server cannot be reached or refused the operation."""


class OwnershipConflict(SkaldsError):
    """Another live process owns what this one needs: the embedded data directory, or a
    node id. The message names the holder (pid and host)."""


def field_path(parts: Iterable[Any]) -> str:
    """``("attachments", "size", 0)`` -> ``"attachments.size.0"``; the one spelling of a
    field's location in every error Skalds reports."""
    return ".".join(str(p) for p in parts)


def pydantic_errors(errors: Iterable[dict[str, Any]], skip: Iterable[str] = ()) -> list[dict[str, str]]:
    """``[{"field", "message"}]`` from pydantic's (or FastAPI's) ``errors()`` list; location
    parts named in ``skip`` (e.g. ``"body"``) are left out of the field name."""
    skipped = set(skip)
    return [
        {"field": field_path(p for p in e.get("loc", ()) if p not in skipped), "message": str(e.get("msg", ""))}
        for e in errors
    ]
