"""The demo pool: the seed's ``MyWorker``, a worker that finishes by itself and one that fails."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from skalds.utils.logging import logger
from skalds.worker.baseclass import (
    BaseTaskWorker,
    release_handler,
    run_before_handler,
    run_main_handler,
    update_event_handler,
)


class MyDataModel(BaseModel):
    """The seed's attachments: a stream URL and a frame number."""

    rtsp_url: str = Field(..., description="RTSP stream URL", alias="rtspUrl")
    fix_frame: int = Field(..., description="Fix frame number", alias="fixFrame")

    model_config = ConfigDict(populate_by_name=True, use_enum_values=True)


class MyWorker(BaseTaskWorker[MyDataModel]):
    """Runs until cancelled, logging its parameters; honours pause and live updates."""

    def initialize(self, data: MyDataModel) -> None:
        self.rtsp_url = data.rtsp_url
        self.fix_frame = data.fix_frame
        self.ticks = 0

    @run_before_handler
    def before_run(self) -> None:
        logger.info("Starting MyWorker with RTSP URL: %s", self.rtsp_url)

    @run_main_handler
    def main_run(self) -> None:
        while self.wait_if_paused():
            self.ticks += 1
            logger.info("MyWorker tick %d: rtspUrl=%s fixFrame=%d", self.ticks, self.rtsp_url, self.fix_frame)
            if not self.sleep(1.0):
                break

    @update_event_handler
    def update_event(self, event_data: MyDataModel) -> None:
        logger.info("MyWorker updated: rtspUrl=%s fixFrame=%d", event_data.rtsp_url, event_data.fix_frame)
        self.rtsp_url = event_data.rtsp_url
        self.fix_frame = event_data.fix_frame

    @release_handler
    def release(self) -> None:
        logger.info("MyWorker released after %d ticks", self.ticks)


class CountdownModel(BaseModel):
    """How many steps to count and how long each takes."""

    steps: int = Field(5, ge=0, description="Steps before finishing")
    step_s: float = Field(0.2, ge=0, alias="stepS", description="Seconds per step")

    model_config = ConfigDict(populate_by_name=True)


class CountdownWorker(BaseTaskWorker[CountdownModel]):
    """Counts ``steps`` steps, reporting progress, then finishes by itself."""

    def initialize(self, data: CountdownModel) -> None:
        self.steps, self.step_s = data.steps, data.step_s

    @run_main_handler
    def main_run(self) -> None:
        for step in range(self.steps):
            if not self.wait_if_paused() or not self.sleep(self.step_s):
                return
            self.report_progress((step + 1) / self.steps, f"step {step + 1}/{self.steps}")


class FailModel(BaseModel):
    """Why to fail (shown in the task's error)."""

    reason: str = "this worker always fails"


class AlwaysFailWorker(BaseTaskWorker[FailModel]):
    """Raises at once, to show how a failing task looks."""

    def initialize(self, data: FailModel) -> None:
        self.reason = data.reason

    @run_main_handler
    def main_run(self) -> None:
        raise RuntimeError(self.reason)
