"""How errors become HTTP answers: one table from error class to status, one body shape.

Every error answer is ``{"error": <kind>, "detail": <message>, ...}`` with the fields of the
error's detail (``errors`` lists ``{"field", "message"}`` for validation problems).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from skalds.errors import (
    BackendUnavailable,
    ConfigError,
    InvalidTransition,
    NotFound,
    OwnershipConflict,
    PayloadTooLarge,
    SkaldsError,
    StaleWrite,
    TaskAlreadyExists,
    TaskNotFound,
    ValidationFailed,
    pydantic_errors,
)

#: Error class -> HTTP status. The most specific class listed wins (looked up along the MRO).
HTTP_STATUS: dict[type[SkaldsError], int] = {
    TaskNotFound: 404,
    NotFound: 404,
    TaskAlreadyExists: 409,
    InvalidTransition: 409,
    StaleWrite: 409,
    OwnershipConflict: 409,
    PayloadTooLarge: 413,
    ValidationFailed: 422,
    ConfigError: 500,
    BackendUnavailable: 503,
}


def status_of(exc: SkaldsError) -> int:
    """The HTTP status for ``exc``."""
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def error_body(error: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The one JSON shape of an error answer."""
    return {"error": error, "detail": detail, **extra}


def install(app: FastAPI) -> None:
    """Register the handlers that turn errors into answers of that shape."""

    @app.exception_handler(SkaldsError)
    async def skalds_error(request: Request, exc: SkaldsError) -> JSONResponse:
        return JSONResponse(error_body(type(exc).__name__, exc.message, **exc.detail), status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = pydantic_errors(exc.errors(), skip=("body",))
        failed = ValidationFailed.of_fields("", errors)
        return JSONResponse(error_body("ValidationFailed", failed.message, errors=errors), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        return JSONResponse(error_body(kind, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)
