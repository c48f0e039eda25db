"""``SystemController``: the seed's controller process, as ``python -m skalds +mode=controller``.

The seed's three modes (CONTROLLER = API only, MONITOR = + monitors, DISPATCHER = + dispatcher)
all run Skalds' whole controller: REST API and dashboard, dispatcher and monitor. A controller
without its monitor or dispatcher would show tasks that nobody places or recovers, and Skalds'
controller keeps no state of its own, so there is nothing to gain by leaving parts out.
"""

from __future__ import annotations

import logging

from skalds.config.system_controller_config import SystemControllerConfig
from skalds.settings import seed_settings
from skalds.system import SkaldsSystem
from skalds.utils.logging import configure_logging
from skalds.worker.registry import WorkerCatalog

logger = logging.getLogger(__name__)


class SystemController:
    """``SystemController(SystemControllerConfig(...)).run()``: the controller of a cluster on
    the servers the config names, or, with no host at all, on the embedded backends."""

    def __init__(self, config: SystemControllerConfig | None = None) -> None:
        self.config = config or SystemControllerConfig()
        self.system: SkaldsSystem | None = None

    def build(self) -> SkaldsSystem:
        """Compose the config and assemble the controller without starting it. It imports no
        worker class: attachments are validated by the schemas the nodes advertise.

        Raises:
            ConfigError: a value is wrong; the message names the key.
        """
        c = self.config
        logger.info(
            "system_controller_mode=%s: API, dispatcher (%s) and monitor all run",
            c.system_controller_mode.value,
            c.dispatcher_strategy.policy,
        )
        if not c.distributed:
            logger.warning(
                "no REDIS_HOST, KAFKA_HOST or MONGO_HOST: the controller runs on the embedded backends, "
                "where no node can join it (`python -m skalds` runs a controller and a node together)"
            )
        return SkaldsSystem(seed_settings(c), WorkerCatalog())

    def run(self) -> None:
        """Start and block until SIGINT/SIGTERM, then stop.

        Raises:
            SkaldsError: the controller could not start (a port or data directory in use, a
                wrong value, a server that cannot be reached).
        """
        configure_logging(self.config.log_level)
        self.system = self.build()
        self.system.run()
