"""The whole Skalds error hierarchy.

Every error a caller can act on is a ``SkaldsError``. Backends translate client-library
exceptions into these classes at the port boundary, and the REST API maps each class to one
HTTP status in a single handler.
"""

from __future__ import annotations

from typing import Any


class SkaldsError(Exception):
    """Root of every error Skalds raises on purpose."""

    #: HTTP status the REST API answers with when this error escapes a route.
    http_status = 500

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ConfigError(SkaldsError, ValueError):
    """A configuration value is missing or wrong; the message names the file and key."""


class TaskNotFound(SkaldsError, KeyError):
    """No task has the given id."""

    http_status = 404

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class TaskAlreadyExists(SkaldsError):
    """A task with the given id exists already."""

    http_status = 409


class InvalidTransition(SkaldsError):
    """The task's lifecycle state does not allow the requested action."""

    http_status = 409


class StaleWrite(SkaldsError):
    """A conditional store write lost: the task's state or epoch moved on meanwhile."""

    http_status = 409


class ValidationFailed(SkaldsError):
    """User input (attachments, a request, a YAML file) does not match its schema."""

    http_status = 422


class UnknownWorkerClass(ValidationFailed):
    """No worker class of that name is known to the cluster."""


class BackendUnavailable(SkaldsError):
    """A backend server cannot be reached or refused the operation."""

    http_status = 503
