"""The benchmark's load generator: creates tasks over HTTP from a process of its own, so the
client's CPU is not charged to the Skalds process under test.

``python -m skalds.bench.loadgen URL CONCURRENCY`` reads a JSON list of create-request
bodies on stdin and prints ``{task id: UNIX time the POST was sent}`` as JSON.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx


def post_all(url: str, bodies: list[dict[str, Any]], concurrency: int) -> dict[str, float]:
    """POST every body to ``url/api/tasks`` with ``concurrency`` clients; return send times.

    Raises:
        httpx.HTTPStatusError: a request was refused.
    """
    local = threading.local()
    sent: dict[str, float] = {}

    def post(body: dict[str, Any]) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=60)
        sent[body["id"]] = time.time()
        client.post("/api/tasks", json=body).raise_for_status()

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, bodies))
    return sent


def main(argv: list[str]) -> None:
    """Entry point (see the module docstring)."""
    url, concurrency = argv[1], int(argv[2])
    print(json.dumps(post_all(url, json.load(sys.stdin), concurrency)))


if __name__ == "__main__":
    main(sys.argv)
