"""``Skalds`` (the seed's ``Skald``): the application object (``Skalds(config).register_task_worker(C).run()``)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from skalds.config._enum import SkaldModeEnum
from skalds.config.schema import DEFAULTS
from skalds.config.skald_config import SkaldConfig
from skalds.errors import ConfigError
from skalds.node.launcher import IN_LAUNCHER_ENV
from skalds.settings import seed_settings
from skalds.single_process import first_task, run_single
from skalds.system import SkaldsSystem
from skalds.utils.logging import configure_logging
from skalds.worker.baseclass import BaseTaskWorker
from skalds.worker.registry import WorkerCatalog

logger = logging.getLogger(__name__)


class Skalds:
    """A Skald configured from code, by ``skald_mode``:

    - ``node``: without hosts, on the embedded backends with the controller in the same
      process (nothing else could hand it tasks); with hosts, a node of a distributed cluster;
    - ``edge``: runs the tasks of its ``yaml_file`` itself and hot-reloads them, with no
      controller needed: without hosts on the embedded backends (no REST API, no port
      opened), with hosts as an edge of a distributed cluster;
    - ``single_process``: runs the first task of its ``yaml_file`` in this process and
      exits with its outcome (see :mod:`skalds.single_process`).
    """

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
            raise ConfigError("skald_mode=single_process runs one task, not a system: call run()", key="skald_mode")
        # The declared tasks are the seed's yaml_file (edge); no pool file from conf/.
        tasks_file = Path(c.yaml_file) if c.yaml_file and c.skald_mode == SkaldModeEnum.EDGE else None
        return SkaldsSystem(dataclasses.replace(seed_settings(c), tasks_file=tasks_file), self.catalog)

    def run(self) -> None:
        """Start and block until SIGINT/SIGTERM, then stop every worker. In single_process
        mode: run the task and return when it finished, else exit with its code
        (:func:`~skalds.single_process.run_single`).

        Raises:
            ConfigError, ValidationFailed: the configuration or the tasks file is bad.
            SystemExit: single_process only, when the task failed or was stopped.
        """
        if os.environ.get(IN_LAUNCHER_ENV):
            return
        configure_logging(self.config.log_level)
        if self.config.skald_mode == SkaldModeEnum.SINGLE_PROCESS:
            code = self.run_single_process()
            if code:
                raise SystemExit(code)
            return
        self.system = self.build()
        self.system.run()

    def run_single_process(self) -> int:
        """Run the first task of ``yaml_file`` with the registered classes, in this process,
        until it ends (no controller, no backends); return its exit code.

        Raises:
            ConfigError: no ``yaml_file``, or it declares no task.
            ValidationFailed: the file, the task's class or its attachments are bad.
        """
        if not self.config.yaml_file:
            raise ConfigError(
                "yaml_file: single_process runs the first task of a tasks file; none given", key="yaml_file"
            )
        task = first_task(Path(self.config.yaml_file), self.catalog)
        configure_logging(self.config.log_level, task_id=task.id)
        return run_single(task, self.catalog, self.config.skald_id, DEFAULTS.node.cancel_grace_s)


#: The seed's name of the class (``from skalds import Skald``).
Skald = Skalds
