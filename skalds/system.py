"""Assembles a Skalds process from settings: controller parts, node agent, or both.

``SkaldsSystem`` is what ``python -m skalds`` runs and what tests start in-process: build
backends, start the node (it must hold its lease before the dispatcher runs), start the
dispatcher and monitor, serve HTTP; stop in the reverse order.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from skalds.backends.factory import Backends, build_backends
from skalds.controller.catalog import ClusterCatalog
from skalds.controller.dispatcher import Dispatcher
from skalds.controller.monitor import Monitor
from skalds.controller.service import TaskService
from skalds.core.dispatch import build_policy
from skalds.node.agent import NodeAgent
from skalds.reload.declared_tasks import DeclaredTasks
from skalds.settings import Settings
from skalds.worker.registry import WorkerCatalog

logger = logging.getLogger(__name__)

CONTROLLER_MODES = ("standalone", "controller", "bench")
NODE_MODES = ("standalone", "node", "edge", "bench")
#: Modes whose process owns the selected pool's declared tasks.
DECLARING_MODES = ("standalone", "controller", "edge", "bench")


class SkaldsSystem:
    """One Skalds process: the parts its mode calls for, on one set of backends."""

    def __init__(
        self, settings: Settings, catalog: WorkerCatalog | None = None, backends: Backends | None = None
    ) -> None:
        self.settings = settings
        self.catalog = catalog if catalog is not None else WorkerCatalog(settings.pool_classes)
        self._backends = backends
        self.node: NodeAgent | None = None
        self.dispatcher: Dispatcher | None = None
        self.monitor: Monitor | None = None
        self.service: TaskService | None = None
        self.declared: DeclaredTasks | None = None
        self.app: Any = None
        self._server: Any = None
        self._stopped = threading.Event()

    @property
    def backends(self) -> Backends:
        """The adapters in use (built on :meth:`start`)."""
        assert self._backends is not None, "start() first"
        return self._backends

    def start(self) -> SkaldsSystem:
        """Build the backends and start every part of this mode. Returns self."""
        started = time.perf_counter()
        s = self.settings
        if self._backends is None:
            self._backends = build_backends(s.backend)
        b = self._backends
        if s.mode in NODE_MODES:
            self.node = NodeAgent(s.node, self.catalog, b.bus, b.store, b.live)
            self.node.start()
        self.service = TaskService(b.store, b.bus, b.live, ClusterCatalog(self.catalog, b.live))
        if s.mode in CONTROLLER_MODES:
            self.dispatcher = Dispatcher(build_policy(s.dispatch_policy), b.bus, b.store, b.live)
            self.dispatcher.start()
            self.monitor = Monitor(s.monitor, self.dispatcher, b.bus, b.store, b.live)
            self.monitor.start()
            self.monitor.check()  # place what waits since the last run, now rather than in a second
        if s.mode in DECLARING_MODES and (s.pool_file or s.tasks_file):
            pinned = s.node.id if s.mode == "edge" else None
            source = f"edge:{s.node.id}:{s.pool_name}" if pinned else f"yaml:{s.pool_name}"
            self.declared = DeclaredTasks(
                self.service,
                s.pool_file,
                s.tasks_file,
                source=source,
                pinned_node=pinned,
                debounce_s=s.reload_debounce_s,
                watch=s.reload_watch,
            )
            self.declared.start()
        if s.mode in CONTROLLER_MODES:
            from skalds.controller.app import create_app

            self.app = create_app(self.service, b.kind, self.declared)
        logger.info("skalds %s up on %s backends in %.0f ms", s.mode, b.kind, (time.perf_counter() - started) * 1000)
        return self

    def serve(self) -> None:
        """Block until SIGINT/SIGTERM: serve HTTP if this mode has a controller."""
        # Our handlers only note the signal. uvicorn puts them back when it stops and then
        # re-raises the signal it caught, which must not kill us before stop() has run.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self._stopped.set())
        if self.app is not None:
            import uvicorn

            config = uvicorn.Config(
                self.app, host=self.settings.host, port=self.settings.port, log_level="warning", lifespan="off"
            )
            self._server = uvicorn.Server(config)
            logger.info("API on http://%s:%d/ (docs at /api/docs)", self.settings.host, self.settings.port)
            self._server.run()  # returns after SIGINT/SIGTERM
            if self._server.started is False:
                raise SystemExit(f"cannot serve on {self.settings.host}:{self.settings.port} (port in use?)")
        else:
            self._stopped.wait()

    def stop(self) -> None:
        """Stop workers first (cooperatively), then the controller loops, then backends."""
        started = time.perf_counter()
        if self.declared is not None:
            self.declared.stop()
        if self.node is not None:
            self.node.stop()
        if self.monitor is not None:
            self.monitor.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self._backends is not None:
            self._backends.close()
        logger.info("skalds %s stopped in %.0f ms", self.settings.mode, (time.perf_counter() - started) * 1000)
