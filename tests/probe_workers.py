"""Workers for tests. Each writes what happens to it, one JSON line per event, to the file
named by its ``journal`` attachment, so a test can see inside the worker process."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time

from pydantic import BaseModel, ConfigDict, Field

from skalds.worker.baseclass import (
    BaseTaskWorker,
    error_handler,
    release_handler,
    run_after_handler,
    run_before_handler,
    run_main_handler,
    update_event_handler,
)


class ProbeModel(BaseModel):
    """Where to write, plus a value tests change while the task runs."""

    model_config = ConfigDict(populate_by_name=True)

    journal: str
    level: int = Field(1, ge=0, le=100)
    label: str = "start"
    mode: str = "loop"  # loop | finish | raise | ignore_stop | hang | chatty | crash
    steps: int = 3


def write(path: str, event: str, **data: object) -> None:
    """Append one event line (open/append/close: survives the process being killed)."""
    with open(path, "a") as f:
        f.write(json.dumps({"event": event, "pid": os.getpid(), "t": time.time(), **data}) + "\n")


def read(path: str) -> list[dict]:
    """Every event written so far."""
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


class ProbeWorker(BaseTaskWorker[ProbeModel]):
    """Does what ``mode`` says and journals every hook."""

    @run_before_handler
    def before(self) -> None:
        assert self.data is not None
        write(self.data.journal, "before", level=self.data.level, paused=self.is_paused())

    @run_main_handler
    def main(self) -> None:
        assert self.data is not None
        d = self.data
        write(d.journal, "main", level=d.level, task_id=self.task_id)
        if d.mode == "raise":
            raise ValueError(f"probe failure at level {d.level}")
        if d.mode == "finish":
            for i in range(d.steps):
                self.report_progress((i + 1) / d.steps)
                self.sleep(0.05)
            return
        if d.mode == "chatty":  # every kind of output a task writes, then it runs on
            print(f"plain stdout {d.label}")
            print(f"plain stderr {d.label}", file=sys.stderr)
            logging.getLogger("probe").info("logged info %s", d.label)
            try:
                raise KeyError("probe")
            except KeyError:
                logging.getLogger("probe").exception("logged error %s", d.label)
            print("x" * 40_000)
            write(d.journal, "chatted")
        if d.mode == "crash":  # last words without a newline, then killed outright
            sys.stderr.write(f"last words {d.label}")
            sys.stderr.flush()
            write(d.journal, "crashing")
            os.kill(os.getpid(), signal.SIGKILL)
        if d.mode in ("ignore_stop", "hang"):
            while True:
                time.sleep(0.05)
        paused_seen = False
        while not self.should_stop():
            if self.is_paused() and not paused_seen:
                write(d.journal, "paused")
                paused_seen = True
            if not self.wait_if_paused():
                break
            if paused_seen:
                write(d.journal, "resumed")
                paused_seen = False
            self.report_progress(0.5, "looping")
            self.sleep(0.02)

    @run_after_handler
    def after(self) -> None:
        assert self.data is not None
        write(self.data.journal, "after")

    @update_event_handler
    def update(self, data: ProbeModel) -> None:
        write(data.journal, "update", level=data.level, label=data.label)
        if data.mode == "chatty":
            print(f"update applied: {data.label}", flush=True)
        self.data = data

    @error_handler
    def error(self, exc: BaseException) -> None:
        assert self.data is not None
        write(self.data.journal, "error", message=str(exc))

    @release_handler
    def release(self) -> None:
        assert self.data is not None
        write(self.data.journal, "release")
