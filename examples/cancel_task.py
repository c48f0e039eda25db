"""The seed's way to cancel a task from a script: a ``TaskEvent`` on ``task.cancel`` through
``KafkaProxy``. The node running the task marks it Cancelled and stops its worker (stop flag,
then SIGTERM, then SIGKILL), with or without a controller. Servers come from the environment
(KAFKA_HOST, KAFKA_PORT).

    python examples/cancel_task.py [task-id]
"""

import os
import sys

from skalds.model.event import TaskEvent
from skalds.proxy.kafka import KafkaConfig, KafkaProxy, KafkaTopic

task_id = sys.argv[1] if len(sys.argv) > 1 else "script-task-1"
kafka = KafkaProxy(
    KafkaConfig(
        host=os.environ.get("KAFKA_HOST", "127.0.0.1"),
        port=int(os.environ.get("KAFKA_PORT", "9092")),
        topic_prefix=os.environ.get("KAFKA_TOPIC_PREFIX", ""),
    )
)
kafka.produce(KafkaTopic.TASK_CANCEL, key=task_id, value=TaskEvent(task_ids=[task_id]).model_dump_json())
print(f"cancel sent for {task_id}")
kafka.close()
