"""Start-to-ready time of each kind of Skalds process, as a user starts it
(``python -m skalds ...``): from the moment the process is spawned until it can do its job.

- standalone and controller: ``GET /api/system/health`` answers 200 (the HTTP server is the
  last part a process starts, after its node and dispatcher are subscribed);
- node and edge: the node's lease is in the live state and says it takes work (it is written
  once the node is subscribed and has handed back what a previous run left).

Standalone runs on the embedded backends (a fresh data directory each time); controller, node
and edge only when the benchmark runs on the distributed ones, against the same servers.
Each process is then stopped with SIGINT (as Ctrl-C) and must exit by itself.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from skalds.bench.harness import Progress
from skalds.bench.stats import summarize
from skalds.ports.live_state import LiveState

_POLL_S = 0.005


def quote(value: Any) -> str:
    """A value as a Hydra command-line override writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def process_command(settings: Any, mode: str | None, *overrides: str) -> list[str]:
    """``python -m skalds [+mode=MODE]`` on the same distributed backends as ``settings``
    (secrets go by environment, see :func:`process_env`), with ``overrides``."""
    cmd = [sys.executable, "-m", "skalds", *([f"+mode={mode}"] if mode else []), *overrides]
    if settings.backend.get("kind") == "distributed":
        for section in ("kafka", "redis", "mongo"):
            for key, value in settings.backend[section].items():
                if key != "password":
                    cmd.append(f"backend.{section}.{key}={quote(value)}")
    return cmd


def process_env(settings: Any) -> dict[str, str]:
    """The environment for :func:`process_command`: this one, plus the backends' passwords."""
    env = dict(os.environ)
    for section, var in (("kafka", "KAFKA_PASSWORD"), ("redis", "REDIS_PASSWORD")):
        password = (settings.backend.get(section) or {}).get("password")
        if password:
            env[var] = password
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _api_ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/system/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _node_ready(live: LiveState, node_id: str) -> bool:
    return any(n.id == node_id and not n.draining for n in live.nodes())


def time_to_ready(cmd: list[str], env: dict[str, str], ready: Any, log: Path, timeout_s: float) -> tuple[float, float]:
    """Spawn ``cmd``, poll ``ready()`` until it holds; then SIGINT it and wait for its exit.
    Returns (spawn -> ready, SIGINT -> exited), in seconds.

    Raises:
        RuntimeError: it exited before it was ready, did not get ready in ``timeout_s`` or did
            not exit by itself after SIGINT (it is killed then).
    """
    with open(log, "ab") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        while not ready():
            if proc.poll() is not None:
                raise RuntimeError(f"benchmark: {cmd[3:5]} exited with {proc.returncode} before ready; see {log}")
            if time.monotonic() - t0 > timeout_s:
                raise RuntimeError(f"benchmark: {cmd[3:5]} not ready within {timeout_s}s; see {log}")
            time.sleep(_POLL_S)
        up = time.monotonic() - t0
        t1 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        return up, time.monotonic() - t1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _empty_pool(directory: Path) -> Path:
    pool = directory / "startup_pool.yaml"
    pool.write_text(yaml.safe_dump({"name": "startup", "classes": {"BenchWorker": "skalds.bench.worker:BenchWorker"}}))
    return pool


def startup_figures(settings: Any, live: LiveState, samples: int, out: Path, timeout_s: float) -> dict[str, Any]:
    """``startup_<kind>_s`` and ``stop_<kind>_s`` summaries for each kind of process that
    runs on this benchmark's backends, ``samples`` starts each (kinds interleaved)."""
    pool = _empty_pool(out)
    log = out / "startup.log"
    env = process_env(settings)
    distributed = settings.backend.get("kind") == "distributed"
    kinds = ["standalone", *(["controller", "node", "edge"] if distributed else [])]
    up: dict[str, list[float]] = {k: [] for k in kinds}
    down: dict[str, list[float]] = {k: [] for k in kinds}
    progress = Progress("process start -> ready", samples * len(kinds))
    for i in range(samples):
        for kind in kinds:
            common = [f"reload.pool_file={pool}", "log_level=WARNING"]
            if kind in ("standalone", "controller"):
                port = _free_port()
                common.append(f"controller.port={port}")
                check = lambda port=port: _api_ready(port)  # noqa: E731
            else:
                node_id = f"bench-start-{kind}-{uuid.uuid4().hex[:6]}"
                common.append(f"node.id={node_id}")
                check = lambda node_id=node_id: _node_ready(live, node_id)  # noqa: E731
            with tempfile.TemporaryDirectory(prefix="skalds-bench-start-") as data:
                if kind == "standalone":
                    cmd = [sys.executable, "-m", "skalds", f"data_dir={data}", *common]
                else:
                    cmd = process_command(settings, kind, *common)
                a, b = time_to_ready(cmd, env, check, log, timeout_s)
            up[kind].append(a)
            down[kind].append(b)
            progress.update(i * len(kinds) + kinds.index(kind) + 1)
    figures: dict[str, Any] = {}
    for kind in kinds:
        figures[f"startup_{kind}_s"] = summarize(up[kind], 1, 3)
        figures[f"stop_{kind}_s"] = summarize(down[kind], 1, 3)
    return figures
