"""The benchmark's load generator: creates tasks over HTTP from a process of its own, so the
client's CPU is not charged to the Skalds process under test.

``python -m skalds.bench.loadgen URL CONCURRENCY [posts|batch BATCH_SIZE]`` reads a JSON list
of create-request bodies on stdin and prints ``{task id: UNIX time its request was sent}`` as
JSON. ``posts`` (the default) sends one ``POST /api/tasks`` per task from ``CONCURRENCY``
clients; ``batch`` sends ``POST /api/tasks/batch`` requests of up to ``BATCH_SIZE`` tasks.
``one`` reads one request per line instead (``{"method", "path", "json"}``), sends it at once
and answers with a line ``{"sent": UNIX time it was sent, "status", "body"}``: the benchmark
times requests made one at a time this way (:class:`PacedClient`).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

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


def serve_requests(url: str) -> None:
    """Send each request read from stdin (one JSON object per line) when it arrives, on one
    kept-alive connection, and print when it was sent, its status and its JSON body.

    The time is taken with the request built, just before its bytes are written: what is
    timed is the server's work, not this client's.
    """
    target = urlsplit(url)
    conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port or 80, timeout=120)
    try:
        for line in sys.stdin:
            request = json.loads(line)
            payload = json.dumps(request["json"]).encode() if request.get("json") is not None else b""
            conn.putrequest(request["method"], request["path"])
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(payload)))
            sent = time.time()
            conn.endheaders(payload)
            response = conn.getresponse()
            data = response.read()
            try:
                body = json.loads(data) if data else None
            except ValueError:
                body = None
            print(json.dumps({"sent": sent, "status": response.status, "body": body}), flush=True)
    finally:
        conn.close()


class PacedClient:
    """An HTTP client in a process of its own that sends one request when asked, and says
    when it sent it.

    A benchmark timing one request at a time uses it rather than a client in its own process:
    such a client would compete with the server's threads for the interpreter lock just when
    the work being timed happens (it parses the answer then), adding its time to each sample.
    A user's script is another process too.
    """

    def __init__(self, url: str) -> None:
        cmd = [sys.executable, "-m", "skalds.bench.loadgen", url, "1", "one"]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[float, Any]:
        """Send it; return the UNIX time it was sent and the JSON of the answer.

        Raises:
            RuntimeError: the answer was not a 2xx, or the client process died.
        """
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps({"method": method, "path": path, "json": body}) + "\n")
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark client died before answering {method} {path}")
        answer = json.loads(line)
        if answer["status"] >= 300:
            raise RuntimeError(f"{method} {path} answered {answer['status']}: {answer['body']}")
        return answer["sent"], answer["body"]

    def close(self) -> None:
        """End the client process."""
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=10)

    def __enter__(self) -> PacedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str]) -> None:
    """Entry point (see the module docstring)."""
    url, concurrency = argv[1], int(argv[2])
    how = argv[3] if len(argv) > 3 else "posts"
    if how == "one":
        serve_requests(url)
        return
    bodies = json.load(sys.stdin)
    if how == "batch":
        print(json.dumps(post_batches(url, bodies, concurrency, int(argv[4]))))
    else:
        print(json.dumps(post_all(url, bodies, concurrency)))


if __name__ == "__main__":
    main(sys.argv)
