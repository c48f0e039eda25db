"""The seed's complex worker: sub-tasks run in order, each retried on failure, with a feature
switch (the class ``examples/all_workers.yml`` declares as ``ComplexWorker``)."""

import random

from pydantic import BaseModel, ConfigDict, Field

from skalds.utils.logging import logger
from skalds.worker.baseclass import BaseTaskWorker, release_handler, run_before_handler, run_main_handler


class SubTask(BaseModel):
    name: str
    duration: float = Field(1.0, ge=0, description="Seconds the sub-task takes")
    fail_chance: float = Field(0.0, ge=0, le=1, description="Probability that one attempt fails")


class ComplexDataModel(BaseModel):
    job_id: str = Field(..., alias="jobId")
    retries: int = Field(2, ge=0, description="Retries per sub-task")
    enable_feature_x: bool = False
    sub_tasks: list[SubTask] = Field(default_factory=list)

    model_config = ConfigDict(populate_by_name=True)


class ComplexWorker(BaseTaskWorker[ComplexDataModel]):
    """Supports multi-stage execution, retries and a feature switch."""

    def initialize(self, data: ComplexDataModel) -> None:
        self.job_id = data.job_id
        self.retries = data.retries
        self.sub_tasks = data.sub_tasks
        self.feature_x = data.enable_feature_x
        self.done = 0

    @run_before_handler
    def before_run(self) -> None:
        if not self.sub_tasks:
            raise RuntimeError("No sub-tasks configured")
        logger.info(f"[{self.job_id}] {len(self.sub_tasks)} sub-tasks, feature X {'on' if self.feature_x else 'off'}")

    @run_main_handler
    def main_run(self) -> None:
        for subtask in self.sub_tasks:
            if not self.wait_if_paused():
                return
            self._execute_subtask(subtask)
            self.done += 1
            self.report_progress(self.done / len(self.sub_tasks), f"{subtask.name} done")

    def _execute_subtask(self, subtask: SubTask) -> None:
        for attempt in range(1, self.retries + 2):
            logger.info(f"[{self.job_id}] {subtask.name}: attempt {attempt}")
            if not self.sleep(subtask.duration):
                return
            if random.random() >= subtask.fail_chance:
                return
            logger.warning(f"[{self.job_id}] {subtask.name}: attempt {attempt} failed")
        raise RuntimeError(f"{subtask.name} failed {self.retries + 1} times")

    @release_handler
    def release(self) -> None:
        logger.info(f"[{self.job_id}] released after {self.done}/{len(self.sub_tasks)} sub-tasks")
