"""The worker fault tests run. It records what really runs — start and stop of each copy, with
its task, epoch, node, attempt and pid, on the host's monotonic clock — to a journal shared by
every process of a test (one ``O_APPEND`` write per record, so records never interleave)."""

from __future__ import annotations

import json
import os
import time

from pydantic import BaseModel, ConfigDict

from skalds.worker.baseclass import (
    BaseTaskWorker,
    release_handler,
    run_before_handler,
    run_main_handler,
    update_event_handler,
)


class FaultModel(BaseModel):
    """What the worker does besides recording."""

    model_config = ConfigDict(populate_by_name=True)

    journal: str
    label: str = ""
    #: Ignore the stop flag this long after it is set (a worker blocked in a read).
    stop_delay_s: float = 0.0
    #: The update handler takes this long.
    update_s: float = 0.0
    #: Finish by itself after this long (0: run until stopped).
    finish_after_s: float = 0.0
    #: Padding, to make the attachments large.
    padding: str = ""
    #: Any number (tests of what a store can hold).
    count: int = 0


def record(path: str, event: str, **fields: object) -> None:
    """Append one record to the journal in a single write."""
    line = json.dumps({"e": event, "pid": os.getpid(), "mono": time.monotonic(), **fields}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class FaultWorker(BaseTaskWorker[FaultModel]):
    """Runs until stopped (or ``finish_after_s``), recording its life."""

    def _record(self, event: str, **fields: object) -> None:
        assert self.data is not None
        record(
            self.data.journal,
            event,
            task=self.task_id,
            epoch=self.epoch,
            node=self.node_id,
            attempt=self.attempt,
            **fields,
        )

    @run_before_handler
    def before(self) -> None:
        self._record("start", paused=self.is_paused())

    @run_main_handler
    def main(self) -> None:
        assert self.data is not None
        started = time.monotonic()
        while not self.should_stop():
            self.wait_if_paused(0.1)
            if self.data.finish_after_s and time.monotonic() - started >= self.data.finish_after_s:
                return
            self.report_progress(None, f"tick {self.data.label}")
            self.sleep(0.05)
        if self.data.stop_delay_s:
            time.sleep(self.data.stop_delay_s)  # deaf to the stop flag, as if blocked in a read

    @update_event_handler
    def update(self, data: FaultModel) -> None:
        self._record("update_begin", label=data.label, size=len(data.padding))
        if data.update_s:
            time.sleep(data.update_s)
        self.data = data
        self._record("update_end", label=data.label)

    @release_handler
    def release(self) -> None:
        self._record("stop", stopped=self.should_stop())
