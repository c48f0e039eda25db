"""``Skalds``: the seed's application object (``Skalds(config).register_task_worker(C).run()``)."""

from __future__ import annotations

from typing import Any

from hydra import compose, initialize_config_dir

from skalds.cli import config_dir
from skalds.config.skald_config import SkaldConfig
from skalds.settings import load_settings
from skalds.system import SkaldsSystem
from skalds.utils.logging import configure_logging
from skalds.worker.baseclass import BaseTaskWorker
from skalds.worker.registry import WorkerCatalog


class Skalds:
    """A Skald configured from code. With embedded backends (no hosts in the config) it runs
    the controller too, since nothing else could hand it tasks."""

    def __init__(self, config: SkaldConfig | None = None) -> None:
        self.config = config or SkaldConfig()
        self.catalog = WorkerCatalog()
        self.system: SkaldsSystem | None = None

    def register_task_worker(self, worker: type[BaseTaskWorker[Any]], name: str | None = None) -> None:
        """Make a worker class runnable here, under its class name (or ``name``)."""
        self.catalog.register(worker, name)

    def build(self) -> SkaldsSystem:
        """Compose the config and assemble the system without starting it."""
        overrides = self.config.overrides()  # no +mode: standalone, controller included
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
        settings = load_settings(cfg)
        return SkaldsSystem(settings, self.catalog)

    def run(self) -> None:
        """Start and block until SIGINT/SIGTERM, then stop every worker."""
        configure_logging(self.config.log_level)
        self.system = self.build().start()
        try:
            self.system.serve()
        finally:
            self.system.stop()
