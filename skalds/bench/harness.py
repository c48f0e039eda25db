"""Plumbing of a benchmark job: where it writes, what machine it ran on, a progress bar, and
the API served on a free port."""

from __future__ import annotations

import os
import platform
import re
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self._shown = label, total, -1

    def update(self, done: int) -> None:
        """Show ``done`` of ``total`` (on a terminal every 5 %; in a log only the end)."""
        step = done * 20 // max(1, self.total)
        if not sys.stderr.isatty() and done < self.total:
            return  # in a log file, one line per phase
        if step != self._shown:
            self._shown = step
            sys.stderr.write(f"\r{self.label:<28} [{'#' * step}{'.' * (20 - step)}] {done}/{self.total}")
            if done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    import psutil

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def job_dir() -> Path:
    """The Hydra job's output directory (the working directory outside Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:
        return Path.cwd()


_SECRET = re.compile(r"password|secret|token", re.IGNORECASE)


def job_info() -> dict[str, Any]:
    """Which Hydra job this is: ``num`` (its place in the sweep, None outside a sweep) and
    its command-line ``overrides`` (secrets left out)."""
    from omegaconf import OmegaConf

    try:
        from hydra.core.hydra_config import HydraConfig

        hydra = HydraConfig.get()
    except ValueError:
        return {"num": None, "overrides": []}
    num = None if OmegaConf.is_missing(hydra.job, "num") else int(hydra.job.num)
    overrides = [o for o in hydra.overrides.task if not _SECRET.search(o.split("=", 1)[0])]
    return {"num": num, "overrides": overrides}


def serve(app: Any) -> tuple[Any, threading.Thread, str]:
    """Serve ``app`` on a free loopback port from a thread; return server, thread, base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="bench-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("benchmark: the API server did not start")
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{port}"
