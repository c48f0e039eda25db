"""``Skalds`` (the seed's ``Skald``): the application object (``Skalds(config).register_task_worker(C).run()``)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from skalds.config._enum import SkaldModeEnum
from skalds.config.skald_config import SkaldConfig
from skalds.node.launcher import IN_LAUNCHER_ENV
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
        """Compose the config and assemble the system without starting it.

        Raises:
            ConfigError: a value is wrong; the message names the key.
        """
        c = self.config
        if c.skald_mode == SkaldModeEnum.SINGLE_PROCESS:
            logger.warning("skald_mode=single_process runs as a node for now (its own runtime is not there yet)")
        # The declared tasks are the seed's yaml_file (edge); no pool file from conf/.
        tasks_file = Path(c.yaml_file) if c.yaml_file and c.skald_mode == SkaldModeEnum.EDGE else None
        return SkaldsSystem(dataclasses.replace(c.settings(), tasks_file=tasks_file), self.catalog)

    def run(self) -> None:
        """Start and block until SIGINT/SIGTERM, then stop every worker."""
        if os.environ.get(IN_LAUNCHER_ENV):
            return
        configure_logging(self.config.log_level)
        self.system = self.build()
        self.system.run()


#: The seed's name of the class (``from skalds import Skald``).
Skald = Skalds
