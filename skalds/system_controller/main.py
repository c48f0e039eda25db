"""``python -m skalds.system_controller.main``: the seed's way to start the controller, from the
environment and ``.env`` (``SYSTEM_CONTROLLER_MODE``, ``SYSTEM_CONTROLLER_HOST``,
``SYSTEM_CONTROLLER_PORT``, ``KAFKA_HOST``, ``REDIS_HOST``, ``MONGO_HOST``, ...)."""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from skalds.config.system_controller_config import SystemControllerConfig
from skalds.errors import SkaldsError
from skalds.system_controller.controller import SystemController

__all__ = ["SystemController", "main"]

logger = logging.getLogger(__name__)


def main() -> None:
    """Run the controller configured by the environment; exit 2 with the reason if it cannot
    start (a wrong variable, a port or data directory in use, a server out of reach)."""
    try:
        SystemController(SystemControllerConfig()).run()
    except (SkaldsError, ValidationError) as exc:
        logger.error("%s", exc)
        sys.exit(2)


if __name__ == "__main__":
    main()
