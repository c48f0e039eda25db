"""The FastAPI application factory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import FastAPI

from skalds import __version__
from skalds.config.schema import DEFAULTS
from skalds.controller import errors
from skalds.controller.events import EventHub
from skalds.controller.limits import BodyLimit
from skalds.controller.nodes import NodeDirectory
from skalds.controller.routes import dashboard, events, skalds, system, tasks
from skalds.core.task import now_ms
from skalds.reload.reloader import PoolReloader
from skalds.service.tasks import TaskService


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


def create_app(
    service: TaskService,
    backend: str = "local",
    reloader: PoolReloader | None = None,
    here: str = "controller",
    *,
    nodes: NodeDirectory | None = None,
    hub: EventHub | None = None,
    info: ControllerInfo | None = None,
    max_request_bytes: int = DEFAULTS.controller.max_request_bytes,
) -> FastAPI:
    """Build the API around a task service (and the pool's reloader, if this process watches
    one). Routes hold no try/except: errors map to HTTP in one place."""
    app = FastAPI(
        title="Skalds",
        version=__version__,
        docs_url="/api/docs",
        redoc_url="/api/redoc",
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
    )
    app.add_middleware(BodyLimit, max_bytes=max_request_bytes)
    errors.install(app)

    app.include_router(tasks.router)
    app.include_router(skalds.router)
    app.include_router(events.router)
    app.include_router(system.router)
    app.include_router(dashboard.router)
    return app
