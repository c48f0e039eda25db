"""``from skalds.utils.logging import logger``: the logger worker code uses, as in the seed.

Log lines of a supervised worker carry its task id (the runtime configures that); a worker run
alone with ``start()`` logs to stderr at INFO.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("skalds.worker.user")


def configure_logging(level: str | int = "INFO", task_id: str | None = None) -> None:
    """Send log records to stderr with a compact format (and the task id when given).

    Called by the CLI, and by a worker run on its own; libraries never call it.
    """
    tag = f" [{task_id}]" if task_id else ""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)-5s %(name)s{tag}: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else str(level).upper())
