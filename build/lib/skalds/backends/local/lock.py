"""One process per embedded data directory: an exclusive lock that names its holder."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from skalds.errors import OwnershipConflict

LOCK_NAME = "skalds.lock"


class DataDirLock:
    """Holds ``<data_dir>/skalds.lock`` exclusively (``flock``) for this process's life.

    The lock dies with the process (the kernel drops it), so a crash never leaves a stale lock
    behind; the file's content only names the holder for the error a second process gets.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock.

        Raises:
            OwnershipConflict: another process holds it; the message names its pid and host.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(os.pread(fd, 4096, 0))
            os.close(fd)
            raise OwnershipConflict(
                f"data_dir {self.path.parent} is in use by {holder}; stop that Skalds first, "
                "or give this one another data_dir",
                data_dir=str(self.path.parent),
            ) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up. Idempotent."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _describe(raw: bytes) -> str:
    try:
        info = json.loads(raw or b"{}")
        return f"pid {info['pid']} on {info['host']} (since {info['since']})"
    except (ValueError, KeyError, TypeError):
        return "another process"
