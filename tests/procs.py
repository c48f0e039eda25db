"""Running ``python -m skalds`` as a separate process in tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from skalds.testing import wait_until
from tests.conftest import write_pool
from tests.servers import free_port


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
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(self.args, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        wait_until(self._up, timeout_s=60, interval_s=0.1, message=f"{self.name} up (log: {self.log})")

    def _up(self) -> bool:
        assert self.proc.poll() is None, f"{self.name} exited:\n{self.log.read_text()}"
        if not self.has_http:
            return " up on " in self.log.read_text()
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
