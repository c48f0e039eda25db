"""The synthetic worker the benchmark runs: idle like a camera task between frames, and
cheap to update, so the figures show Skalds' own costs."""

from __future__ import annotations

from pydantic import BaseModel, Field

from skalds.worker.baseclass import BaseTaskWorker, run_main_handler, update_event_handler


class BenchModel(BaseModel):
    """A value to update, how often the main loop wakes up, and how long it runs."""

    value: int = 0
    tick_s: float = Field(0.5, gt=0)
    #: Finish by itself after this many seconds (0: run until cancelled).
    run_s: float = Field(0.0, ge=0)


class BenchWorker(BaseTaskWorker[BenchModel]):
    """Runs until cancelled (or for ``run_s``); applies updates by storing the value."""

    def initialize(self, data: BenchModel) -> None:
        self.data, self.tick_s, self.run_s = data, data.tick_s, data.run_s

    @run_main_handler
    def main(self) -> None:
        if self.run_s:
            self.sleep(self.run_s)  # a short task: done after run_s (or at once on cancel)
            return
        while self.wait_if_paused() and self.sleep(self.tick_s):
            pass

    @update_event_handler
    def update(self, data: BenchModel) -> None:
        self.data = data
