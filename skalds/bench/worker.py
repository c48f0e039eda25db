"""The synthetic worker the benchmark runs: idle like a camera task between frames, and
cheap to update, so the figures show Skalds' own costs."""

from __future__ import annotations

from pydantic import BaseModel, Field

from skalds.worker.baseclass import BaseTaskWorker, run_main_handler, update_event_handler


class BenchModel(BaseModel):
    """A value to update, and how often the main loop wakes up."""

    value: int = 0
    tick_s: float = Field(0.5, gt=0)


class BenchWorker(BaseTaskWorker[BenchModel]):
    """Runs until cancelled; applies updates by storing the value."""

    def initialize(self, data: BenchModel) -> None:
        self.data, self.tick_s = data, data.tick_s

    @run_main_handler
    def main(self) -> None:
        while self.wait_if_paused() and self.sleep(self.tick_s):
            pass

    @update_event_handler
    def update(self, data: BenchModel) -> None:
        self.data = data
