"""What a benchmark sweep is made of: its jobs' ``results.json`` in the order the sweep ran
them, and the settings that tell the jobs apart."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from skalds.bench.tables import DASH, date_range_text, machine_text

CONFIG_OPTIONS = {
    "backend": "backend",
    "dispatch": "dispatch",
    "samples": "bench.samples",
    "steady_s": "bench.steady_s",
    "heartbeat_interval_s": "node.heartbeat_interval_s",
}
"""Settings every ``results.json`` records besides N, and the override that sets each."""

_NOT_OPTIONS = {"mode", "bench.tasks", *CONFIG_OPTIONS.values()}


def _job_order(result: dict[str, Any]) -> tuple[float, str]:
    # Hydra's job number is the order the sweep ran; files from before it was recorded live
    # in a directory named by it (``hydra.sweep.subdir``). Sorting names would put 10 before 2.
    num = (result.get("job") or {}).get("num")
    if num is None and result["dir"].isdigit():
        num = int(result["dir"])
    return (math.inf if num is None else float(num), result["dir"])


def load_results(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every job's ``results.json`` under ``sweep_dir``, in the order the sweep ran them.

    Each result gets ``dir``: its directory relative to ``sweep_dir``.
    """
    results = []
    for path in sweep_dir.glob("**/results.json"):
        data = json.loads(path.read_text())
        data["dir"] = str(path.parent.relative_to(sweep_dir)) or "."
        results.append(data)
    return sorted(results, key=_job_order)


def job_label(result: dict[str, Any]) -> str:
    """The job's number in the sweep (its directory when it has none)."""
    num = (result.get("job") or {}).get("num")
    return str(num) if num is not None else result["dir"]


def options(result: dict[str, Any]) -> dict[str, str]:
    """A job's settings other than N: the recorded config, then any other command-line
    override (``backend.kafka.fetch_wait_max_ms=10``)."""
    config = result.get("config", {})
    found = {key: str(config[key]) for key in CONFIG_OPTIONS if key in config}
    for override in (result.get("job") or {}).get("overrides", []):
        key, _, value = override.lstrip("+~").partition("=")
        if key not in _NOT_OPTIONS and not key.startswith("hydra."):
            found[key] = value
    return found


def swept_options(results: list[dict[str, Any]]) -> list[str]:
    """The settings other than N whose value differs between jobs, in first-seen order."""
    seen: dict[str, set[str | None]] = {}
    for result in results:
        for key in options(result):
            seen.setdefault(key, set())
    for result in results:
        mine = options(result)
        for key, values in seen.items():
            values.add(mine.get(key))
    return [key for key, values in seen.items() if len(values) > 1]


def series_label(result: dict[str, Any], swept: list[str]) -> str:
    """What tells a job's line apart in the plot: its swept settings (backend/dispatch when
    nothing but N was swept)."""
    mine = options(result)
    if not swept:
        return f"{mine.get('backend')}/{mine.get('dispatch')}"
    return ", ".join(f"{key}={mine.get(key, DASH)}" for key in swept)


def machines(results: list[dict[str, Any]]) -> list[str]:
    """The machines the jobs ran on, one line each (one, unless results were merged)."""
    return list(dict.fromkeys(machine_text(r.get("machine", {})) for r in results))


def dates(results: list[dict[str, Any]]) -> str:
    """When the sweep ran: from its first job's start to its last job's end."""
    timed = [r for r in results if r.get("started_at") is not None]
    start = min((r["started_at"] for r in timed), default=None)
    end = max((r["started_at"] + r.get("duration_s", 0) for r in timed), default=None)
    return date_range_text(start, end)
