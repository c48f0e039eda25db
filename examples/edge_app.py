"""The seed README's edge-mode Skald: places and runs the tasks of all_workers.yml (or
YAML_FILE) under its own id and hot-reloads them; no controller is needed. Hosts come from the
environment (KAFKA_HOST, ...) with the seed's values as defaults; start the servers first
(docker compose up -d). With NO_SERVERS=1 it runs alone on the embedded backends (no REST API,
no port opened)."""

import os
from pathlib import Path

from complex_worker import ComplexWorker
from my_worker import MyWorker

from skalds import Skalds
from skalds.config.skald_config import SkaldConfig

edge = {
    "skald_mode": "edge",
    "skald_id": os.environ.get("SKALD_ID", "edge-1"),
    "yaml_file": os.environ.get("YAML_FILE", str(Path(__file__).with_name("all_workers.yml"))),
    "log_split_with_worker_id": True,
}
if os.environ.get("NO_SERVERS"):
    config = SkaldConfig(**edge)
else:
    config = SkaldConfig(
        **edge,
        redis_host=os.environ.get("REDIS_HOST", "localhost"),
        redis_port=int(os.environ.get("REDIS_PORT", "6379")),
        kafka_host=os.environ.get("KAFKA_HOST", "127.0.0.1"),
        kafka_port=int(os.environ.get("KAFKA_PORT", "9092")),
        mongo_host=os.environ.get("MONGO_HOST", "mongodb://localhost:27017/"),  # credentials go in MONGO_HOST
    )

app = Skalds(config)
app.register_task_worker(MyWorker)
app.register_task_worker(ComplexWorker)
app.run()
