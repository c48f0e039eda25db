"""The FastAPI application factory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse

from skalds.controller.routes import system, tasks
from skalds.controller.service import TaskService
from skalds.errors import SkaldsError
from skalds.reload.declared_tasks import DeclaredTasks


@dataclass
class AppState:
    """What routes reach through ``request.app.state.skalds``."""

    tasks: TaskService
    backend: str = "local"
    declared: DeclaredTasks | None = None
    started: float = field(default_factory=time.monotonic)


def _error_body(error: str, detail: str, **extra: object) -> dict[str, object]:
    return {"error": error, "detail": detail, **extra}


def create_app(service: TaskService, backend: str = "local", declared: DeclaredTasks | None = None) -> FastAPI:
    """Build the API around a task service (and the owner of declared tasks, if this
    process has one). Routes hold no try/except: errors map to HTTP here, once."""
    app = FastAPI(title="Skalds", docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)
    app.state.skalds = AppState(service, backend, declared)

    @app.exception_handler(SkaldsError)
    async def skalds_error(request: Request, exc: SkaldsError) -> JSONResponse:
        return JSONResponse(_error_body(type(exc).__name__, exc.message, **exc.detail), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]} for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(_error_body("ValidationFailed", summary, errors=errors), status_code=422)

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/api/docs")

    app.include_router(tasks.router)
    app.include_router(system.router)
    return app
