"""The benchmark's load generator: creates tasks over HTTP from a process of its own, so the
client's CPU is not charged to the Skalds process under test.

``python -m skalds.bench.loadgen URL CONCURRENCY [posts|batch BATCH_SIZE]`` reads a JSON list
of create-request bodies on stdin and prints ``{task id: UNIX time its request was sent}`` as
JSON. ``posts`` (the default) sends one ``POST /api/tasks`` per task from ``CONCURRENCY``
clients; ``batch`` sends ``POST /api/tasks/batch`` requests of up to ``BATCH_SIZE`` tasks.
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


def post_batches(url: str, bodies: list[dict[str, Any]], concurrency: int, size: int) -> dict[str, float]:
    """POST the bodies to ``url/api/tasks/batch`` in batches of ``size``, ``concurrency`` at
    a time; every task's send time is its batch's.

    Raises:
        httpx.HTTPStatusError: a batch was refused.
    """
    chunks = [bodies[i : i + size] for i in range(0, len(bodies), size)]
    sent: dict[str, float] = {}

    def post(chunk: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            at = time.time()
            sent.update((body["id"], at) for body in chunk)
            client.post("/api/tasks/batch", json={"items": chunk}).raise_for_status()

    with ThreadPoolExecutor(max(1, min(concurrency, len(chunks)))) as pool:
        list(pool.map(post, chunks))
    return sent


def main(argv: list[str]) -> None:
    """Entry point (see the module docstring)."""
    url, concurrency = argv[1], int(argv[2])
    how = argv[3] if len(argv) > 3 else "posts"
    bodies = json.load(sys.stdin)
    if how == "batch":
        print(json.dumps(post_batches(url, bodies, concurrency, int(argv[4]))))
    else:
        print(json.dumps(post_all(url, bodies, concurrency)))


if __name__ == "__main__":
    main(sys.argv)
