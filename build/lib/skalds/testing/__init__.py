"""Helpers for tests of Skalds and of user workers: waiting on conditions, composing
configs. Nothing here is used by Skalds at run time."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from skalds.config.paths import config_dir

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout_s: float = 10.0, interval_s: float = 0.01, message: str = "") -> T:
    """Poll ``condition`` until it returns something truthy and return that.

    Raises:
        TimeoutError: it did not within ``timeout_s`` (with ``message`` and the last value).
    """
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval_s)
    raise TimeoutError(f"condition not met in {timeout_s}s: {message} (last value: {last!r})")


def compose_config(overrides: Sequence[str] = (), data_dir: Path | None = None) -> DictConfig:
    """The composed ``conf/`` with overrides, as ``python -m skalds`` would see it."""
    extra = [f"data_dir={data_dir}"] if data_dir is not None else []
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name="config", overrides=[*extra, *overrides])


def process_gone(pid: int) -> bool:
    """True once process ``pid`` has exited (a zombie waiting to be reaped counts as gone)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
