"""``from skalds.utils.logging import logger``: the logger worker code uses, as in the seed.

Log lines of a supervised worker carry its task id (the runtime configures that); a worker run
alone with ``start()`` logs to stderr at INFO. ``init_logger`` is the seed's way to set the
level (and a log file) from a script; it configures Python's standard logging.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

logger = logging.getLogger("skalds.worker.user")

#: The seed's loguru levels that standard logging lacks, and the level they log at.
_SEED_LEVELS = {"TRACE": "DEBUG", "SUCCESS": "INFO"}
#: Rotated log files kept next to the current one.
_ROTATED_FILES = 5


def std_level(level: str | int) -> str | int:
    """A standard logging level for ``level``: names in any case, the seed's TRACE and
    SUCCESS as DEBUG and INFO, numbers unchanged."""
    if isinstance(level, int):
        return level
    name = str(level).strip().upper()
    return _SEED_LEVELS.get(name, name)


def configure_logging(
    level: str | int = "INFO", task_id: str | None = None, log_file: Path | None = None, rotate_bytes: int = 0
) -> None:
    """Send log records to stderr with a compact format (and the task id when given), and
    also to ``log_file`` when given (rotated at ``rotate_bytes``, 0 = never).

    Called by the CLI, by ``Skalds.run``, by ``init_logger`` and by a worker run on its own;
    libraries never call it.
    """
    formatter = _formatter(task_id)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        backups = _ROTATED_FILES if rotate_bytes > 0 else 0
        handlers.append(logging.handlers.RotatingFileHandler(log_file, maxBytes=rotate_bytes, backupCount=backups))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(std_level(level))


def _formatter(task_id: str | None) -> logging.Formatter:
    tag = f" [{task_id}]" if task_id else ""
    return logging.Formatter(f"%(asctime)s %(levelname)-5s %(name)s{tag}: %(message)s")


def tag_with_task(level: str | int, task_id: str) -> None:
    """In a worker forked from a process :func:`configure_logging` set up: tag its lines
    with ``task_id`` and log at ``level``, keeping the handler it inherited.

    Configuring anew would replace the handler, and a fork that does so writes to about
    0.3 MiB of memory it otherwise shares with its parent (measured on Python 3.11).
    """
    root = logging.getLogger()
    if len(root.handlers) != 1 or type(root.handlers[0]) is not logging.StreamHandler:
        configure_logging(level, task_id)
        return
    root.handlers[0].setFormatter(_formatter(task_id))
    level = std_level(level)
    if root.level != (level if isinstance(level, int) else logging.getLevelName(level)):
        root.setLevel(level)


def init_logger(
    logger_name: str,
    level: str | int = "INFO",
    log_path: str | Path | None = None,
    process_id: str | None = None,
    rotation: str | int | None = None,
) -> logging.Logger:
    """The seed's ``init_logger``: log at ``level`` to stderr and, with ``log_path``, also to
    ``<log_path>/<logger_name>.log``, rotated every ``rotation`` MB (``10``, ``"10"`` or
    ``"10MB"``; None or 0: never). ``process_id`` tags every line. Returns the logger called
    ``logger_name``.

    Raises:
        ValueError: ``rotation`` is not a number of MB, or ``level`` is unknown.
    """
    rotate_bytes = 0
    if rotation not in (None, ""):
        match = re.fullmatch(r"\s*(\d+)\s*(?:MB)?\s*", str(rotation), re.IGNORECASE)
        if match is None:
            raise ValueError(f"rotation: expected a number of MB such as 10 or '10MB', got {rotation!r}")
        rotate_bytes = int(match.group(1)) * 1024 * 1024
    log_file = Path(log_path) / f"{logger_name}.log" if log_path else None
    configure_logging(level, task_id=process_id, log_file=log_file, rotate_bytes=rotate_bytes)
    return logging.getLogger(logger_name)
