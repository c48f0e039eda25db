"""The FastAPI application factory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from skalds import __version__
from skalds.config.schema import DEFAULTS
from skalds.controller import errors
from skalds.controller.access import Access, AccessPolicy
from skalds.controller.events import EventHub
from skalds.controller.leadership import ROLE, Leadership
from skalds.controller.limits import BodyLimit
from skalds.controller.metrics import CONTENT_TYPE, Metrics
from skalds.controller.models import COMMON_ERRORS
from skalds.controller.nodes import NodeDirectory
from skalds.controller.routes import dashboard, events, logs, skalds, system, tasks
from skalds.core.task import now_ms
from skalds.errors import BackendUnavailable
from skalds.reload.reloader import PoolReloader
from skalds.service.tasks import TaskService

ASSETS = Path(__file__).parent / "static" / "vendor"


def _docs(app: FastAPI) -> None:
    """Swagger UI at /api/docs and ReDoc at /api/redoc, with their scripts and styles from the
    package (under /docs-assets/), so the docs work offline."""
    app.mount("/docs-assets", StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json",
            title="Skalds API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    @app.get("/api/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/api/openapi.json",
            title="Skalds API",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/docs-assets/favicon-32x32.png",
            with_google_fonts=False,
        )


@dataclass(frozen=True)
class ControllerInfo:
    """What the system endpoints report about this controller."""

    run_mode: str = "standalone"
    host: str = DEFAULTS.controller.host
    port: int = DEFAULTS.controller.port
    dispatch_policy: str = "least_loaded"
    check_interval_s: float = DEFAULTS.monitor.check_interval_s
    sweep_interval_s: float = DEFAULTS.monitor.sweep_interval_s
    heartbeat_timeout_s: float = DEFAULTS.node.heartbeat_timeout_s
    log_level: str = DEFAULTS.log_level


@dataclass
class AppState:
    """What routes reach through ``request.app.state.skalds``."""

    tasks: TaskService
    nodes: NodeDirectory
    hub: EventHub
    backend: str = "local"
    reloader: PoolReloader | None = None
    here: str = "controller"  # this process's name among the nodes (its node id, if it has one)
    info: ControllerInfo = field(default_factory=ControllerInfo)
    started: float = field(default_factory=time.monotonic)
    started_ms: int = field(default_factory=now_ms)
    #: The controller lease, when several controllers may run (None: this one always leads).
    leadership: Leadership | None = None

    def lead(self) -> dict[str, Any]:
        """This controller's part among several: ``{id, role, leader}``."""
        lead = self.leadership
        if lead is None:
            return {"id": self.here, "role": "leader", "leader": self.here}
        try:
            holder = lead.live.lead_holder(ROLE)
        except BackendUnavailable:
            holder = None
        return {"id": lead.holder, "role": "leader" if lead.leading() else "standby", "leader": holder}


def create_app(
    service: TaskService,
    backend: str = "local",
    reloader: PoolReloader | None = None,
    here: str = "controller",
    *,
    nodes: NodeDirectory | None = None,
    hub: EventHub | None = None,
    metrics: Metrics | None = None,
    info: ControllerInfo | None = None,
    access: dict[str, Any] | None = None,
    max_request_bytes: int = DEFAULTS.controller.max_request_bytes,
    leadership: Leadership | None = None,
) -> FastAPI:
    """Build the API around a task service (and the pool's reloader, if this process watches
    one). Routes hold no try/except: errors map to HTTP in one place."""
    app = FastAPI(
        title="Skalds",
        version=__version__,
        responses=COMMON_ERRORS,
        docs_url=None,  # served below with assets from the package, not a CDN
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.skalds = AppState(
        service,
        nodes if nodes is not None else NodeDirectory(service.live),
        hub if hub is not None else EventHub(),
        backend,
        reloader,
        here,
        info or ControllerInfo(),
        leadership=leadership,
    )
    app.add_middleware(BodyLimit, max_bytes=max_request_bytes)
    rules = dict(access or {})
    cors = rules.pop("cors_origins", None) or []
    if cors:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )
    # Added last, so it runs first: nothing reaches a route (or the body limit) unchecked.
    host = info.host if info is not None else DEFAULTS.controller.host
    app.add_middleware(Access, policy=AccessPolicy.build(host, **rules))
    errors.install(app)

    registry = metrics or Metrics(service.store, service.live, app.state.skalds.nodes)
    if metrics is None:
        app.state.skalds.hub.listeners.append(registry.observe)

    @app.get("/metrics", tags=["system"], summary="Prometheus metrics", response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        """Tasks by state and class, nodes by state, each node's load, CPU and memory;
        dispatch, update and cancel latencies; retries, failovers and reloads."""
        return PlainTextResponse(registry.text(), media_type=CONTENT_TYPE)

    _docs(app)
    app.include_router(tasks.router)
    app.include_router(logs.router)
    app.include_router(skalds.router)
    app.include_router(events.router)
    app.include_router(system.router)
    app.include_router(dashboard.router)
    return app
