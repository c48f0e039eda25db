"""``python -m tests.servers``: start the three test servers (tansu, Valkey, SecantusDB) on
free loopback ports, print the environment that points Skalds at them, and keep them up until
Ctrl-C. For trying the distributed mode, or benchmarking it, on a machine without Docker."""

from __future__ import annotations

import signal
import threading

from tests.servers import mongo, tansu, valkey


def main() -> None:
    """Start, print ``export`` lines, wait for Ctrl-C (the servers stop at exit)."""
    host, port = tansu.bootstrap_servers().split(":")
    redis = valkey.start_valkey()
    mongodb = mongo.start_mongo()
    print(f"export KAFKA_HOST={host} KAFKA_PORT={port}")
    print(f"export REDIS_HOST={redis.host} REDIS_PORT={redis.port}")
    print(f"export MONGO_HOST='{mongodb.uri}'", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
