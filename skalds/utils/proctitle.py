"""Process titles, so ``ps`` and ``top`` tell Skalds' processes apart."""

from __future__ import annotations


def set_title(title: str) -> None:
    """Name this process (``skalds node node-a``, ``skalds worker cam-1 MyWorker``)."""
    from setproctitle import setproctitle

    setproctitle(title)
