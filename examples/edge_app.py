"""The seed README's edge-mode Skald: runs the tasks of all_workers.yml under its own id and
hot-reloads them. Hosts come from the environment (KAFKA_HOST, ...) with the seed's values as
defaults; start the servers first (docker compose up -d)."""

import os
from pathlib import Path

from complex_worker import ComplexWorker
from my_worker import MyWorker

from skalds import Skalds
from skalds.config.skald_config import SkaldConfig

config = SkaldConfig(
    skald_mode="edge",
    skald_id=os.environ.get("SKALD_ID", "edge-1"),
    yaml_file=os.environ.get("YAML_FILE", str(Path(__file__).with_name("all_workers.yml"))),
    log_split_with_worker_id=True,
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
