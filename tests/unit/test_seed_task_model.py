"""The original's task-model behaviours (its tests/unit/test_task.py and
test_dynamic_basemodel.py): mode defaults, epoch-millisecond times, attachments that must be a
model, and the records its scripts build."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from skalds.core.task import Task as CoreTask
from skalds.core.task import now_ms
from skalds.model.task import ModeEnum, Task, TaskLifecycleStatus


class Camera(BaseModel):
    rtsp_url: str = Field(alias="rtspUrl")
    fix_frame: int = Field(alias="fixFrame")
    model_config = ConfigDict(populate_by_name=True)


class Stage(BaseModel):
    name: str
    duration: float = 1.0


class Pipeline(BaseModel):
    job: str
    camera: Camera
    stages: list[Stage] = Field(default_factory=list)


def test_the_original_enums_and_their_values() -> None:
    assert ModeEnum.list() == {"Active", "Passive", "PassiveProcess"}
    assert [s.value for s in TaskLifecycleStatus] == [
        "Created", "Assigning", "Running", "Paused", "Finished", "Failed", "Cancelled",
    ]  # fmt: skip
    assert TaskLifecycleStatus.Created is TaskLifecycleStatus.CREATED, "the older member names still work"


def test_a_task_has_the_originals_defaults_with_epoch_millisecond_times() -> None:
    before = now_ms()
    task = Task(id="t", class_name="MyWorker", source="TestingScript", attachments=Camera(rtsp_url="r", fix_frame=1))
    assert task.mode is ModeEnum.PASSIVE and task.is_persistent and task.priority == 0
    assert task.lifecycle_status is TaskLifecycleStatus.CREATED and task.executor is None
    assert before <= task.create_date_time <= now_ms() and isinstance(task.update_date_time, int)
    week = 7 * 24 * 3600 * 1000
    assert task.deadline_date_time is not None and abs(task.deadline_date_time - task.create_date_time - week) < 5000
    doc = task.to_doc()
    assert doc["mode"] == "Passive" and doc["isPersistent"] is True and isinstance(doc["createDateTime"], int)


@pytest.mark.parametrize(
    "attachments",
    [
        Camera(rtsp_url="rtsp://x", fix_frame=30),
        Pipeline(
            job="j", camera=Camera(rtsp_url="r", fix_frame=1), stages=[Stage(name="a"), Stage(name="b", duration=2)]
        ),
        None,
    ],
    ids=["simple", "nested with a list", "none"],
)
def test_attachments_may_be_any_model_or_none(attachments: BaseModel | None) -> None:
    task = Task(id="t", class_name="C", source="s", attachments=attachments)
    assert task.attachments is attachments
    if attachments is not None:
        assert task.to_doc()["attachments"] == attachments.model_dump(mode="json", by_alias=True)


def test_a_dict_as_attachments_is_refused_as_by_the_original() -> None:
    with pytest.raises(ValidationError, match="pydantic model"):
        Task(id="t", class_name="C", source="s", attachments={"rtspUrl": "r", "fixFrame": 1})


def test_a_seed_task_reads_back_as_skalds_task_from_its_document() -> None:
    task = Task(id="t", class_name="C", source="s", attachments=Camera(rtsp_url="r", fix_frame=1))
    again = CoreTask.from_doc(task.to_doc())
    assert again.attachments == {"rtspUrl": "r", "fixFrame": 1} and again.deadline_date_time == task.deadline_date_time
