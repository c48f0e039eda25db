"""Assembles a Skalds process from settings: controller parts, node agent, or both.

``SkaldsSystem`` is what ``python -m skalds`` runs and what tests start in-process: bind the
API's port (so a busy port stops the start before anything runs), build the backends (the
embedded ones lock their data directory first), start the node (it must hold its lease before
the dispatcher runs), start the dispatcher and monitor, serve HTTP; stop the controller's
loops first (a standby controller takes over at once), then drain the node.
"""

from __future__ import annotations

import importlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from skalds.backends.factory import Backends, build_backends
from skalds.core.dispatch import build_policy
from skalds.core.task import Task
from skalds.errors import OwnershipConflict
from skalds.node.agent import NodeAgent
from skalds.reload.reloader import DeclaredOwner, PoolReloader, ReloadResult
from skalds.service.catalog import ClusterCatalog
from skalds.service.tasks import ServiceLimits, TaskService
from skalds.settings import Settings
from skalds.worker.registry import WorkerCatalog

if TYPE_CHECKING:  # a node or an edge imports none of the controller (its web stack costs ~0.3 s)
    from skalds.controller.dispatcher import Dispatcher
    from skalds.controller.events import EventHub, HubFeed
    from skalds.controller.leadership import Leadership
    from skalds.controller.metrics import Metrics
    from skalds.controller.monitor import Monitor
    from skalds.controller.nodes import NodeDirectory

logger = logging.getLogger(__name__)

CONTROLLER_MODES = ("standalone", "controller", "bench")
#: In standalone, a request that creates at most this many tasks also starts those placed on
#: this node; larger batches are started by the node's own thread from the events.
_STARTED_ON_REQUEST = 16
NODE_MODES = ("standalone", "node", "edge", "bench")
#: Modes whose process owns the selected pool's declared tasks.
DECLARING_MODES = ("standalone", "controller", "edge", "bench")
#: Exit code when this process had to stop because another one took its node id over.
EXIT_TAKEN_OVER = 3


def bind(host: str, port: int) -> socket.socket:
    """A listening socket for the API, bound now.

    Raises:
        OwnershipConflict: the address is in use (or cannot be bound); nothing else started.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise OwnershipConflict(
            f"cannot serve on {host}:{port}: {exc.strerror or exc} (controller.host / controller.port)"
        ) from exc
    sock.set_inheritable(False)
    return sock


def _import_quietly(module: str) -> None:
    """Import ``module`` ahead of its use; a failure is left for that use to report."""
    try:
        importlib.import_module(module)
    except BaseException:  # the importing caller sees the same error, with its context
        pass


def _place_and_start(dispatcher: Dispatcher, node: NodeAgent) -> Callable[[list[Task]], None]:
    """In standalone: place tasks just created on the request's thread, and start there those
    placed on this node (a few at most), without the hops through the bus to the node's
    thread. The node still gets the assignment events, and takes them for the duplicates
    they then are; whatever is not started here, it starts from them."""

    def place_and_start(tasks: list[Task]) -> None:
        dispatcher.place(tasks)
        if len(tasks) > _STARTED_ON_REQUEST:
            return
        for task in tasks:
            try:
                node.start_task(task.id)  # does nothing unless the store says it is placed here
            except Exception as exc:  # the task is stored and placed: the node's thread starts it
                logger.debug("task %s not started on the request's thread: %s", task.id, exc)

    return place_and_start


class SkaldsSystem:
    """One Skalds process: the parts its mode calls for, on one set of backends (built on
    :meth:`start`, or given: then several systems share them, e.g. a controller and nodes in
    one test process, and the caller closes them)."""

    def __init__(
        self, settings: Settings, catalog: WorkerCatalog | None = None, backends: Backends | None = None
    ) -> None:
        self.settings = settings
        self.catalog = catalog if catalog is not None else WorkerCatalog(settings.pool_classes, settings.pool_retries)
        self._backends = backends
        self._own_backends = backends is None  # given ones are the giver's to close
        self.node: NodeAgent | None = None
        self.dispatcher: Dispatcher | None = None
        self.monitor: Monitor | None = None
        self.leadership: Leadership | None = None
        self._up = False  # started
        self.service: TaskService | None = None
        self.reloader: PoolReloader | None = None
        self.nodes: NodeDirectory | None = None
        self.hub: EventHub | None = None
        self.feed: HubFeed | None = None
        self.metrics: Metrics | None = None
        self.app: Any = None
        self.exit_code = 0
        self._socket: socket.socket | None = None
        self._server: Any = None
        self._stopped = threading.Event()

    @property
    def backends(self) -> Backends:
        """The adapters in use (built on :meth:`start`).

        Raises:
            RuntimeError: before :meth:`start`.
        """
        if self._backends is None:
            raise RuntimeError("SkaldsSystem.start() first")
        return self._backends

    def start(self, serve_http: bool = False) -> SkaldsSystem:
        """Build the backends and start every part of this mode. Returns self.

        With ``serve_http`` (what :meth:`serve` needs) the API's port is bound first.

        Raises:
            OwnershipConflict: the port, the data directory or the node id is in use.
            ConfigError, BackendUnavailable: as the parts raise them.
        """
        started = time.perf_counter()
        s = self.settings
        if serve_http and s.mode in CONTROLLER_MODES:
            self._socket = bind(s.host, s.port)
        try:
            self._start_parts()
        except BaseException:
            self.stop()
            raise
        self._up = True
        logger.info(
            "skalds %s up on %s backends in %.0f ms", s.mode, self.backends.kind, (time.perf_counter() - started) * 1000
        )
        return self

    def _start_parts(self) -> None:
        s = self.settings
        if s.mode in CONTROLLER_MODES:
            # The web stack takes ~0.25 s to import (FastAPI builds its OpenAPI models then);
            # a thread imports it while this one waits on the backends and the launcher.
            threading.Thread(target=_import_quietly, args=("skalds.controller.app",), daemon=True).start()
        if self._backends is None:
            self._backends = build_backends(s.backend)
        b = self._backends
        if s.mode in NODE_MODES:
            self.node = NodeAgent(s.node, self.catalog, b.bus, b.store, b.live, on_fatal=self._fatal)
            self.node.start()
        limits = ServiceLimits(max_event_bytes=s.max_event_bytes, max_batch=s.max_batch)
        self.service = TaskService(
            b.store, b.bus, b.live, ClusterCatalog(self.catalog, b.live), limits, retry=s.node.retry
        )
        if s.mode in CONTROLLER_MODES:
            from skalds.controller.dispatcher import Dispatcher
            from skalds.controller.events import EventHub, HubFeed
            from skalds.controller.leadership import Leadership
            from skalds.controller.metrics import Metrics
            from skalds.controller.monitor import Monitor
            from skalds.controller.nodes import NodeDirectory

            self.nodes = NodeDirectory(b.live)
            self.hub = EventHub()
            self.metrics = Metrics(b.store, b.live, self.nodes, self._files)
            self.hub.listeners.append(self.metrics.observe)
            self.feed = HubFeed(self.hub, b.bus, b.live, self.nodes, s.node.supervision.heartbeat_interval_s)
            self.feed.start()
            policy = build_policy(s.dispatch_policy, spread_label=s.dispatch.spread_label)
            group = f"skalds-dispatcher-{s.controller_id}"
            self.dispatcher = Dispatcher(policy, b.bus, b.store, b.live, s.dispatch, group=group)
            self.monitor = Monitor(s.monitor, self.dispatcher, b.bus, b.store, b.live, on_nodes=self.nodes.observe)
            self.leadership = Leadership(b.live, s.controller_id, s.lead, on_change=self._lead_changed)
            self.dispatcher.leading = self.monitor.leading = self.leadership.leading
            self.service.place_now = (
                self.dispatcher.place if self.node is None else _place_and_start(self.dispatcher, self.node)
            )
            self.dispatcher.start()
            self.monitor.start()
            self.leadership.start()  # leading, it sweeps: what waits since the last run is placed now
        if s.pool_file or s.tasks_file:
            owner = None
            if s.mode in DECLARING_MODES:
                pinned = s.node.id if s.mode == "edge" else None
                source = f"edge:{s.node.id}:{s.pool_name}" if pinned else f"yaml:{s.pool_name}"
                owner = DeclaredOwner(self.service, source, pinned)
            self.reloader = PoolReloader(
                self.catalog,
                s.pool_file,
                s.tasks_file,
                owner=owner,
                validation=lambda local: ClusterCatalog(local, b.live),
                on_classes=self.node.classes_changed if self.node is not None else None,
                on_reloaded=self._reloaded,
                debounce_s=s.reload_debounce_s,
                watch=s.reload_watch,
            )
            if self.node is not None:
                self.node.files_status = self.reloader.status
            self.reloader.start()
        if s.mode in CONTROLLER_MODES:
            from skalds.controller.app import ControllerInfo, create_app

            here = s.node.id if self.node is not None else "controller"
            info = ControllerInfo(
                run_mode=s.mode,
                host=s.host,
                port=s.port,
                dispatch_policy=s.dispatch_policy,
                check_interval_s=s.monitor.check_interval_s,
                sweep_interval_s=s.monitor.sweep_interval_s,
                heartbeat_timeout_s=s.node.supervision.heartbeat_timeout_s,
                log_level=s.log_level,
            )
            self.app = create_app(
                self.service,
                b.kind,
                self.reloader,
                here,
                nodes=self.nodes,
                hub=self.hub,
                metrics=self.metrics,
                info=info,
                access=s.access,
                max_request_bytes=s.max_request_bytes,
                leadership=self.leadership,
            )

    def _lead_changed(self, leading: bool) -> None:
        if self.monitor is None or self.dispatcher is None:
            return
        if leading:
            # Taking over from another controller, what waits was announced to that one:
            # take every waiting task. At start, young tasks may still have an event coming.
            self.monitor.take_lead(everything=self._up)
        else:
            self.dispatcher.stand_by()

    def _reloaded(self, result: ReloadResult) -> None:
        if self.node is not None:
            self.node.lease.renew_now()  # the new file status reaches the controller at once
        if self.metrics is not None:
            self.metrics.reloaded(result.ok)

    def _files(self) -> dict[str, list[dict[str, Any]]]:
        here = self.settings.node.id if self.node is not None else "controller"
        files = {here: self.reloader.status() if self.reloader else []}
        for view in self.nodes.views() if self.nodes else []:
            if view.online and view.info.id != here:
                files[view.info.id] = view.info.files
        return files

    def _fatal(self, reason: str) -> None:
        logger.error("stopping: %s", reason)
        self.exit_code = EXIT_TAKEN_OVER
        self._stopped.set()
        if self._server is not None:
            self._server.should_exit = True

    def catch_signals(self) -> None:
        """From now on SIGINT/SIGTERM only ask this process to stop (cleanly, in order), also
        while it is still starting. Call from the main thread before :meth:`start`."""
        # uvicorn puts these back when it stops and then re-raises the signal it caught,
        # which must not kill us before stop() has run.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self._stopped.set())

    def serve(self) -> None:
        """Block until SIGINT/SIGTERM: serve HTTP if this mode has a controller."""
        self.catch_signals()
        if self._stopped.is_set():
            return  # asked to stop while starting
        if self.app is not None:
            import uvicorn

            # Open event streams end when the server stops; whatever still hangs on gets 2 s.
            config = uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
            hub = self.hub

            class Server(uvicorn.Server):
                def handle_exit(self, sig: int, frame: object) -> None:
                    if hub is not None:
                        hub.close()
                    super().handle_exit(sig, frame)  # type: ignore[arg-type]

            self._server = Server(config)
            logger.info("API on http://%s:%d/ (docs at /api/docs)", self.settings.host, self.settings.port)
            sockets = [self._socket] if self._socket is not None else None
            if sockets is None:
                config.host, config.port = self.settings.host, self.settings.port
            self._server.run(sockets=sockets)  # returns after SIGINT/SIGTERM
        else:
            self._stopped.wait()

    def run(self) -> int:
        """Start with the API's port bound, serve until SIGINT/SIGTERM, stop. Call from the
        main thread. Returns the exit code (:data:`EXIT_TAKEN_OVER` after a takeover, else 0).

        Raises:
            OwnershipConflict, ConfigError, BackendUnavailable: as :meth:`start` raises them.
        """
        self.catch_signals()
        self.start(serve_http=True)
        try:
            self.serve()
        finally:
            self.stop()
        return self.exit_code

    def stop(self) -> None:
        """Stop the declared tasks' watcher, the controller loops, drain the node (its tasks
        handed back), then the backends. Safe to call twice."""
        started = time.perf_counter()
        if self.reloader is not None:
            self.reloader.stop()
        # The controller's loops first: what the node hands back waits in the store for the
        # next start, or for a standby controller, which takes the lease over at once.
        if self.monitor is not None:
            self.monitor.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self.leadership is not None:
            self.leadership.stop()
        if self.node is not None:
            self.node.stop()
        if self.feed is not None:
            self.feed.stop()
        if self._backends is not None and self._own_backends:
            self._backends.close()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        logger.info("skalds %s stopped in %.0f ms", self.settings.mode, (time.perf_counter() - started) * 1000)
