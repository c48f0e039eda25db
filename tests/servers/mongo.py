"""A real MongoDB-wire server for tests: SecantusDB (``pip install secantusdb==0.7.0b3``, GPL,
a test-only dependency that Skalds itself never imports), run as ``python -m secantus`` on a
free loopback port with its data in a temporary directory."""

from __future__ import annotations

import atexit
import importlib.util
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port
from tests.servers.process import ServerProcess, ServerStartError, SharedServer


def _uri(host: str, port: int) -> str:
    # directConnection: the server advertises itself as a one-member replica set; talk to it
    # as it is instead of discovering a set.
    return f"mongodb://{host}:{port}/?directConnection=true"


def _answers_ping(uri: str) -> bool:
    import pymongo

    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500) as client:
        return bool(client.admin.command("ping").get("ok"))


@dataclass
class MongoServer:
    """A running MongoDB-wire server at ``uri``."""

    host: str
    port: int
    process: ServerProcess

    @property
    def uri(self) -> str:
        """Connection string of the server."""
        return _uri(self.host, self.port)

    def stop(self) -> None:
        """Stop the server. Idempotent."""
        self.process.stop()

    def start(self) -> None:
        """(Re)start the server on the same port and storage (its data is kept)."""
        self.process.start(timeout_s=60)


def start_mongo() -> MongoServer:
    """Start a new SecantusDB on a free loopback port with a fresh data directory; the caller
    stops it (it is also stopped, and its directory removed, at interpreter exit).

    Raises:
        ServerStartError: secantusdb is not installed, or the server did not start.
    """
    if importlib.util.find_spec("secantus") is None:
        raise ServerStartError("no MongoDB-wire server: pip install secantusdb==0.7.0b3")
    home = Path(tempfile.mkdtemp(prefix="skalds-secantus-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)  # runs after the server stopped
    # An explicit (empty) config file turns off the search of ./secantusd.toml, ~/.secantus/
    # and /etc/secantus/, so nothing on the machine changes the server under test.
    config = home / "secantusd.toml"
    config.write_text("")
    port = free_port()
    argv = [sys.executable, "-m", "secantus", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--storage-path", str(home / "data"), "--log-level", "WARNING"]
    uri = _uri("127.0.0.1", port)
    process = ServerProcess(f"secantus-{port}", argv, lambda: _answers_ping(uri), cwd=str(home))
    process.start(timeout_s=60)
    return MongoServer("127.0.0.1", port, process)


_shared = SharedServer("mongo", start_mongo)


def mongo() -> MongoServer:
    """The MongoDB-wire server shared by this test process, started on first use (see
    :class:`~tests.servers.process.SharedServer`)."""
    return _shared.get()
