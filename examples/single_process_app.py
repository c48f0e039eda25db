"""The seed's single_process Skald: runs the first task of all_workers.yml (or YAML_FILE) in
this process and exits when it ends, the shape for one Kubernetes Pod per task (a Deployment
when the task is persistent, a Job when it is not). No controller and no servers are needed.
The exit code is the task's outcome: 0 finished, 1 failed, 128 + the signal that stopped it."""

import os
from pathlib import Path

from complex_worker import ComplexWorker
from my_worker import MyWorker

from skalds import Skalds
from skalds.config.skald_config import SkaldConfig

config = SkaldConfig(
    skald_mode="single_process",
    skald_id=os.environ.get("SKALD_ID", "single-1"),
    yaml_file=os.environ.get("YAML_FILE", str(Path(__file__).with_name("all_workers.yml"))),
)

app = Skalds(config)
app.register_task_worker(MyWorker)
app.register_task_worker(ComplexWorker)
app.run()
