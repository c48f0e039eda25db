"""The seed README's node-mode Skald. Without hosts it runs on the embedded backends, with the
controller in the same process (REST API on http://127.0.0.1:8000)."""

import sys

from my_worker import MyWorker

from skalds import Skalds
from skalds.config.skald_config import SkaldConfig

config = SkaldConfig(
    skald_mode="node",
    log_split_with_worker_id=True,
    controller_port=int(sys.argv[1]) if len(sys.argv) > 1 else 8000,
)

app = Skalds(config)
app.register_task_worker(MyWorker)
app.run()
