"""The task record's JSON form and the seed's ways of building one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from skalds.core.events import TaskEvent
from skalds.core.task import Task, TaskLifecycleStatus
from skalds.model.event import TaskEvent as SeedTaskEvent
from skalds.model.task import Task as SeedTask


class Camera(BaseModel):
    rtsp_url: str = Field(alias="rtspUrl")
    fix_frame: int = Field(alias="fixFrame")
    model_config = ConfigDict(populate_by_name=True)


def test_a_task_round_trips_through_its_camel_case_document() -> None:
    task = Task(id="t1", class_name="MyWorker", attachments={"a": 1}, priority=5)
    doc = task.to_doc()
    assert {
        "id",
        "className",
        "attachments",
        "lifecycleStatus",
        "executor",
        "priority",
        "epoch",
        "attempt",
        "desiredVersion",
        "appliedVersion",
        "progress",
        "error",
        "createDateTime",
        "updateDateTime",
    } <= set(doc)
    assert doc["lifecycleStatus"] == "Created"
    assert Task.from_doc(doc) == task


def test_seed_style_task_with_model_attachments_stores_them_by_alias() -> None:
    task = SeedTask(
        id="task_1",
        class_name="MyWorker",
        source="Test",
        attachments=Camera(rtsp_url="rtsp://example.com/stream", fix_frame=30),
    )
    assert task.to_doc()["attachments"] == {"rtspUrl": "rtsp://example.com/stream", "fixFrame": 30}
    assert task.lifecycle_status is TaskLifecycleStatus.CREATED


def test_seed_task_event_json_is_read_back_by_either_field_style() -> None:
    raw = SeedTaskEvent(task_ids=["a", "b"]).model_dump_json()
    assert TaskEvent.model_validate_json(raw).task_ids == ["a", "b"]
    assert TaskEvent.model_validate({"taskIds": ["c"]}).task_ids == ["c"]
