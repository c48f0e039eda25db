"""The seed's way to change a running task from a script: store the new attachments with
``TaskRepository.update_attachments`` and announce the change with a ``TaskEvent`` on
``task.update.attachment`` through ``KafkaProxy``. The node running the task reads them from
the store and hands them to the worker's update handler, with or without a controller. Servers
come from the environment (KAFKA_HOST, KAFKA_PORT, MONGO_HOST, DB_NAME).

    python examples/update_task.py [task-id] [fix-frame]
"""

import os
import sys

from my_worker import MyDataModel

from skalds.model.event import TaskEvent
from skalds.proxy.kafka import KafkaConfig, KafkaProxy, KafkaTopic
from skalds.proxy.mongo import MongoConfig, MongoProxy
from skalds.repository.repository import TaskRepository

task_id = sys.argv[1] if len(sys.argv) > 1 else "script-task-1"
fix_frame = int(sys.argv[2]) if len(sys.argv) > 2 else 60
mongo = MongoProxy(MongoConfig(host=os.environ.get("MONGO_HOST", "mongodb://localhost:27017/")))
kafka = KafkaProxy(
    KafkaConfig(
        host=os.environ.get("KAFKA_HOST", "127.0.0.1"),
        port=int(os.environ.get("KAFKA_PORT", "9092")),
        topic_prefix=os.environ.get("KAFKA_TOPIC_PREFIX", ""),
    )
)
repository = TaskRepository(mongo)

task = repository.update_attachments(task_id, MyDataModel(rtsp_url="rtsp://example.com/stream", fix_frame=fix_frame))
if task is None:
    sys.exit(f"no task {task_id}")
kafka.produce(KafkaTopic.TASK_UPDATE_ATTACHMENT, key=task_id, value=TaskEvent(task_ids=[task_id]).model_dump_json())
print(f"updated {task_id}: fixFrame={fix_frame} (desired version {task.desired_version})")
kafka.close()
mongo.close()
