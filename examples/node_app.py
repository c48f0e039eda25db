"""The seed README's node-mode Skald: runs the tasks the dispatcher assigns. Hosts come from the
environment (KAFKA_HOST, ...) with the seed's values as defaults; with NO_SERVERS=1 it runs on
the embedded backends instead, controller included (REST API on http://127.0.0.1:8000)."""

import os

from my_worker import MyWorker

from skalds import Skalds
from skalds.config.skald_config import SkaldConfig

if os.environ.get("NO_SERVERS"):
    config = SkaldConfig(skald_mode="node", controller_port=int(os.environ.get("PORT", "8000")))
else:
    config = SkaldConfig(
        skald_mode="node",
        skald_id=os.environ.get("SKALD_ID"),
        log_split_with_worker_id=True,
        redis_host=os.environ.get("REDIS_HOST", "localhost"),
        redis_port=int(os.environ.get("REDIS_PORT", "6379")),
        kafka_host=os.environ.get("KAFKA_HOST", "127.0.0.1"),
        kafka_port=int(os.environ.get("KAFKA_PORT", "9092")),
        mongo_host=os.environ.get("MONGO_HOST", "mongodb://localhost:27017/"),  # credentials go in MONGO_HOST
    )

app = Skalds(config)
app.register_task_worker(MyWorker)
app.run()
