"""Running ``python -m skalds`` as a separate process in tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil

from skalds.testing import wait_until
from tests.conftest import write_pool
from tests.servers import free_port


def online(http: httpx.Client | Any) -> set[str]:
    """The ids of the nodes and edges a controller's API shows online."""
    return {n["id"] for n in http.get("/api/skalds", params={"status": "online"}).json()["items"]}


class SkaldsProcess:
    """One ``python -m skalds`` run in a working directory, with its log captured.

    With ``http=True`` (modes with a controller) it waits for the API to answer; otherwise
    for the log line that says the process is up.
    """

    def __init__(
        self,
        cwd: Path,
        *overrides: str,
        pool: Path | None = None,
        env: dict[str, str] | None = None,
        name: str = "skalds",
        http: bool = True,
        node_id: str = "proc-node",
    ) -> None:
        self.port = free_port()
        self.cwd = cwd
        self.name = name
        self.log = cwd / f"{name}-{self.port}.log"
        if pool is None:
            pool = cwd / "pool.yaml"
            if not pool.exists():
                write_pool(pool)
        self.args = [
            sys.executable,
            "-m",
            "skalds",
            f"controller.port={self.port}",
            f"node.id={node_id}",
            "node.heartbeat_interval_s=0.2",
            "node.cancel_grace_s=1",
            f"reload.pool_file={pool}",
            *overrides,
        ]
        self.env = {**os.environ, **(env or {})}
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        self.has_http = http
        self.start()

    def start(self) -> None:
        """(Re)start the process and wait until it is up."""
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(self.args, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        wait_until(self._up, timeout_s=60, interval_s=0.1, message=f"{self.name} up (log: {self.log})")

    def _up(self) -> bool:
        assert self.proc.poll() is None, f"{self.name} exited:\n{self.log.read_text()}"
        if not self.has_http:
            with open(self.log) as log:  # only what this run wrote
                log.seek(self._log_offset)
                return " up on " in log.read()
        try:
            return self.http.get("/api/system/health").status_code == 200
        except httpx.TransportError:
            return False

    def descendants(self) -> list[psutil.Process]:
        """The launcher and worker processes below this one."""
        return psutil.Process(self.proc.pid).children(recursive=True)

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 20) -> int:
        """Send ``sig`` and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.proc.kill()
        self.proc.wait()


#: Short group session (tansu joins take half of it) and fetch wait (tansu waits it out).
KAFKA_FAST = ["backend.kafka.session_timeout_ms=2000", "backend.kafka.fetch_wait_max_ms=10"]


class Cluster:
    """Controller, nodes and edges as ``python -m skalds`` processes on the test servers."""

    def __init__(self, tmp: Path, env: dict[str, str], *overrides: str) -> None:
        self.tmp, self.env, self.overrides = tmp, env, overrides
        self.procs: list[SkaldsProcess] = []
        self.pool = write_pool(tmp / "pool.yaml")

    def start(self, mode: str, node_id: str, *overrides: str, pool: Path | None = None) -> SkaldsProcess:
        """Start one process of ``mode`` (controller, node, edge) under ``node_id``."""
        p = SkaldsProcess(
            self.tmp,
            f"+mode={mode}",
            *KAFKA_FAST,
            # The default lease: a worker fences itself after lease - fence margin (1 s)
            # without a renewal, and a 2 s lease left a loaded CI machine only 1 s of that.
            "node.lease_ttl_s=2.5",
            "monitor.check_interval_s=0.2",
            *self.overrides,
            *overrides,
            pool=pool or self.pool,
            env=self.env,
            name=node_id,
            http=mode == "controller",
            node_id=node_id,
        )
        self.procs.append(p)
        return p

    def controller_and_node(self) -> SkaldsProcess:
        """A controller and one node ("node-a"); returns the controller once the node holds
        a lease."""
        controller = self.start("controller", "controller")
        self.start("node", "node-a")
        wait_until(lambda: online(controller.http), timeout_s=30, message="node up")
        return controller

    def close(self) -> None:
        """Kill what still runs, and print each process's last log lines (pytest shows them
        when the test failed)."""
        for p in self.procs:
            if p.proc.poll() is None:
                p.kill()
            print(f"----- {p.name} ({p.log}) -----\n" + "\n".join(p.log.read_text().splitlines()[-40:]))
