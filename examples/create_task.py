"""The seed's way to start work from a script: store a Task with ``TaskRepository`` and announce
it with a ``TaskEvent`` on ``task.assign`` through ``KafkaProxy``.

With a controller running, its dispatcher places the task; with ``SKALD_ID`` set (a node's id),
the task is pinned to that node, which runs it with or without a controller. Servers come from
the environment (KAFKA_HOST, KAFKA_PORT, MONGO_HOST, DB_NAME), as for the node and edge apps.

    python examples/create_task.py [task-id]
"""

import os
import sys

from my_worker import MyDataModel

from skalds.model.event import TaskEvent
from skalds.model.task import Task
from skalds.proxy.kafka import KafkaConfig, KafkaProxy, KafkaTopic
from skalds.proxy.mongo import MongoConfig, MongoProxy
from skalds.repository.repository import TaskRepository

task_id = sys.argv[1] if len(sys.argv) > 1 else "script-task-1"
mongo = MongoProxy(MongoConfig(host=os.environ.get("MONGO_HOST", "mongodb://localhost:27017/")))
kafka = KafkaProxy(
    KafkaConfig(
        host=os.environ.get("KAFKA_HOST", "127.0.0.1"),
        port=int(os.environ.get("KAFKA_PORT", "9092")),
        topic_prefix=os.environ.get("KAFKA_TOPIC_PREFIX", ""),
    )
)
repository = TaskRepository(mongo)

task = Task(
    id=task_id,
    class_name="MyWorker",
    source="TestingScript",
    name="a task created by a script",
    attachments=MyDataModel(rtsp_url="rtsp://example.com/stream", fix_frame=30),
)
repository.create_task(task)
executor = os.environ.get("SKALD_ID")
if executor:  # run it on this node, as the seed's scripts did
    repository.update_executor(task.id, executor)
kafka.produce(KafkaTopic.TASK_ASSIGN, key=task.id, value=TaskEvent(task_ids=[task.id]).model_dump_json())
print(f"created {task.id}" + (f" on {executor}" if executor else ""))
kafka.close()
mongo.close()
