"""``Skalds``: the seed's application object (``Skalds(config).register_task_worker(C).run()``)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from skalds.config.paths import config_dir
from skalds.config.skald_config import SkaldConfig
from skalds.node.launcher import IN_LAUNCHER_ENV
from skalds.settings import load_settings
from skalds.system import SkaldsSystem
from skalds.utils.logging import configure_logging
from skalds.worker.baseclass import BaseTaskWorker
from skalds.worker.registry import WorkerCatalog

logger = logging.getLogger(__name__)


class Skalds:
    """A Skald configured from code. Without hosts it runs on the embedded backends with the
    controller in the same process (nothing else could hand it tasks); with hosts it is a
    node or edge of a distributed cluster."""

    def __init__(self, config: SkaldConfig | None = None) -> None:
        self.config = config or SkaldConfig()
        self.catalog = WorkerCatalog()
        self.system: SkaldsSystem | None = None

    def register_task_worker(self, worker: type[BaseTaskWorker[Any]], name: str | None = None) -> None:
        """Make a worker class runnable here, under its class name (or ``name``)."""
        self.catalog.register(worker, name)

    def build(self) -> SkaldsSystem:
        """Compose the config and assemble the system without starting it."""
        c = self.config
        overrides = c.overrides()
        if c.distributed:
            overrides.append(f"+mode={'edge' if c.skald_mode == 'edge' else 'node'}")
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
        if c.distributed:
            # Set after composing: connection strings and passwords need no override quoting.
            values = {
                "backend.kafka.bootstrap_servers": f"{c.kafka_host or 'localhost'}:{c.kafka_port}",
                "backend.kafka.username": c.kafka_username,
                "backend.kafka.password": c.kafka_password,
                "backend.redis.host": c.redis_host or "localhost",
                "backend.redis.port": c.redis_port,
                "backend.redis.password": c.redis_password,
                "backend.mongo.uri": c.mongo_host or "mongodb://localhost:27017",
                "backend.mongo.db_name": c.db_name,
            }
            for key, value in values.items():
                OmegaConf.update(cfg, key, value)
        settings = load_settings(cfg)
        # The declared tasks are the seed's yaml_file (edge); no pool file from conf/.
        tasks_file = Path(c.yaml_file) if c.yaml_file and c.skald_mode == "edge" else None
        settings = dataclasses.replace(settings, pool_file=None, tasks_file=tasks_file)
        return SkaldsSystem(settings, self.catalog)

    def run(self) -> None:
        """Start and block until SIGINT/SIGTERM, then stop every worker."""
        if os.environ.get(IN_LAUNCHER_ENV):
            return
        configure_logging(self.config.log_level)
        self.system = self.build()
        self.system.catch_signals()
        self.system.start(serve_http=True)
        try:
            self.system.serve()
        finally:
            self.system.stop()
