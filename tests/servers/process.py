"""One server process for tests: started in its own process group, waited on until it
answers, and stopped for sure (at :meth:`ServerProcess.stop`, at interpreter exit, and by the
kernel if the test process dies without running ``atexit``)."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Generic, TypeVar

_PR_SET_PDEATHSIG = 1
S = TypeVar("S")
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _child_setup(parent_pid: int) -> Callable[[], None]:
    def setup() -> None:  # runs in the child between fork and exec: no locks, no logging
        if _LIBC is not None:
            # The kernel SIGKILLs the server if the test process dies, even by SIGKILL.
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return setup


class ServerStartError(RuntimeError):
    """The server did not start or did not answer in time; the message has its log's tail."""


class ServerProcess:
    """A server command run as a child in its own session, restartable with the same argv.

    Args:
        name: what to call it in messages.
        argv: the command line.
        ready: returns True once the server answers (called repeatedly while starting).
        cwd: working directory of the server.
    """

    def __init__(self, name: str, argv: Sequence[str], ready: Callable[[], bool], cwd: str | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.ready = ready
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log = Path(tempfile.mkstemp(prefix=f"skalds-{name}-", suffix=".log")[1])
        atexit.register(self.stop)
        atexit.register(self._log.unlink, missing_ok=True)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server printed."""
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self, timeout_s: float = 30.0) -> ServerProcess:
        """Start the server and wait until ``ready()`` says it answers.

        Raises:
            ServerStartError: it exited or did not answer within ``timeout_s`` (it is stopped).
        """
        if self.process is not None and self.process.poll() is None:
            return self
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                start_new_session=True,
                # PDEATHSIG follows the thread that forks: start servers from the main thread.
                preexec_fn=_child_setup(os.getpid()),
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with {self.process.returncode}: {' '.join(self.argv)}\n{self.log_tail()}"
                )
            with contextlib.suppress(Exception):
                if self.ready():
                    return self
            time.sleep(0.05)
        self.stop()
        raise ServerStartError(f"{self.name} did not answer within {timeout_s}s\n{self.log_tail()}")

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the server's process group for the block, then SIGCONT it."""
        if self.process is None:
            raise ServerStartError(f"{self.name} is not running")
        os.killpg(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop the server's whole process group: SIGTERM, then SIGKILL after ``grace_s``.
        Idempotent."""
        process, self.process = self.process, None
        if process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            # The group id is the server's pid (start_new_session); it is still ours to
            # signal because the server is not reaped until the wait below returns.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=grace_s)
                return
            except subprocess.TimeoutExpired:
                continue


class SharedServer(Generic[S]):
    """One server shared by every test of this process, started on first use.

    When it cannot start, the calling test skips (fails when CI=true) and the failure is
    remembered, so later tests do not wait for it again.
    """

    def __init__(self, name: str, start: Callable[[], S]) -> None:
        self.name = name
        self._start = start
        self._server: S | None = None
        self._failure: str | None = None

    def get(self) -> S:
        """The running server."""
        from tests.servers import unavailable

        if self._server is None and self._failure is None:
            try:
                self._server = self._start()
            except (ServerStartError, OSError) as exc:
                self._failure = f"{self.name}: {exc}"
        if self._server is None:
            unavailable(self._failure or f"{self.name} did not start")
        assert self._server is not None
        return self._server
