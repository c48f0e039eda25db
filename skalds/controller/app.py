"""The FastAPI application factory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from skalds.config.schema import DEFAULTS
from skalds.controller import errors
from skalds.controller.limits import BodyLimit
from skalds.controller.routes import system, tasks
from skalds.reload.reloader import PoolReloader
from skalds.service.tasks import TaskService


@dataclass
class AppState:
    """What routes reach through ``request.app.state.skalds``."""

    tasks: TaskService
    backend: str = "local"
    reloader: PoolReloader | None = None
    here: str = "controller"  # this process's name among the nodes (its node id, if it has one)
    started: float = field(default_factory=time.monotonic)


def create_app(
    service: TaskService,
    backend: str = "local",
    reloader: PoolReloader | None = None,
    here: str = "controller",
    *,
    max_request_bytes: int = DEFAULTS.controller.max_request_bytes,
) -> FastAPI:
    """Build the API around a task service (and the pool's reloader, if this process watches
    one). Routes hold no try/except: errors map to HTTP in one place."""
    app = FastAPI(title="Skalds", docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)
    app.state.skalds = AppState(service, backend, reloader, here)
    app.add_middleware(BodyLimit, max_bytes=max_request_bytes)
    errors.install(app)

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/api/docs")

    app.include_router(tasks.router)
    app.include_router(system.router)
    return app
