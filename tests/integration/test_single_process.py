"""``skald_mode="single_process"``: the first task of a seed tasks file, run in this process
with the registered classes, ending with the worker's outcome as the exit code."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
import yaml

from skalds.errors import ConfigError, ValidationFailed
from skalds.single_process import first_task, run_single
from skalds.worker.registry import WorkerCatalog
from tests.probe_workers import ProbeWorker, read

pytestmark = pytest.mark.integration


def tasks_file(path: Path, entries: dict) -> Path:
    path.write_text(yaml.safe_dump({"TaskWorkers": entries}, sort_keys=False))
    return path


@pytest.fixture
def catalog() -> WorkerCatalog:
    c = WorkerCatalog()
    c.register(ProbeWorker)
    return c


def run(tmp_path: Path, catalog: WorkerCatalog, mode: str) -> tuple[int, list[str]]:
    journal = str(tmp_path / f"{mode}.jsonl")
    path = tasks_file(
        tmp_path / "all_workers.yml",
        {"sp-1": {"className": "ProbeWorker", "attachments": {"journal": journal, "mode": mode}}},
    )
    code = run_single(first_task(path, catalog), catalog, "sp-node", grace_s=0.5)
    return code, [e["event"] for e in read(journal)]


def test_a_task_that_finishes_exits_0_after_every_hook(tmp_path: Path, catalog: WorkerCatalog) -> None:
    assert run(tmp_path, catalog, "finish") == (0, ["before", "main", "after", "release"])


def test_a_task_that_raises_exits_1_after_its_error_and_release_hooks(tmp_path: Path, catalog: WorkerCatalog) -> None:
    assert run(tmp_path, catalog, "raise") == (1, ["before", "main", "error", "release"])


@pytest.mark.parametrize(("mode", "events"), [("loop", ["after", "release"]), ("hang", ["release"])])
def test_sigterm_stops_the_task_at_once_or_after_the_grace_period_and_exits_143(
    tmp_path: Path, catalog: WorkerCatalog, mode: str, events: list[str]
) -> None:
    threading.Timer(0.3, os.kill, [os.getpid(), signal.SIGTERM]).start()
    previous = signal.getsignal(signal.SIGTERM)
    code, seen = run(tmp_path, catalog, mode)
    assert code == 128 + signal.SIGTERM
    assert seen[:2] == ["before", "main"] and seen[-len(events) :] == events
    assert signal.getsignal(signal.SIGTERM) is previous, "the process's own handlers are back"


def test_only_the_first_entry_is_read_so_other_classes_need_not_be_registered(
    tmp_path: Path, catalog: WorkerCatalog
) -> None:
    path = tasks_file(
        tmp_path / "all_workers.yml",
        {
            "first": {"className": "ProbeWorker", "attachments": {"journal": "j", "level": 7}},
            "second": {"className": "NotRegisteredHere", "attachments": {"x": 1}},
        },
    )
    task = first_task(path, catalog)
    assert (task.id, task.class_name, task.attachments.level) == ("first", "ProbeWorker", 7)  # type: ignore[attr-defined]


def test_a_bad_first_task_or_an_empty_file_is_refused_before_anything_runs(
    tmp_path: Path, catalog: WorkerCatalog
) -> None:
    with pytest.raises(ConfigError, match="declares no task"):
        first_task(tasks_file(tmp_path / "empty.yml", {}), catalog)
    bad = tasks_file(
        tmp_path / "bad.yml", {"t": {"className": "ProbeWorker", "attachments": {"journal": "j", "level": 999}}}
    )
    with pytest.raises(ValidationFailed, match=r"bad.yml:\d+: TaskWorkers.t.attachments.level"):
        first_task(bad, catalog)
    unknown = tasks_file(tmp_path / "unknown.yml", {"t": {"className": "Nope"}})
    with pytest.raises(ValidationFailed, match="unknown className 'Nope'"):
        first_task(unknown, catalog)
