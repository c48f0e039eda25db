"""The benchmark mode as a user runs it: a small Hydra sweep, its files, no process left."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from skalds.bench.stats import min_samples, summarize, tail_statistic

pytestmark = pytest.mark.integration


def processes_in(directory: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info.get("cwd")
        if cwd and Path(cwd).is_relative_to(directory):
            found.append(proc)
    return found


def test_a_small_sweep_writes_results_and_a_summary_and_leaves_nothing_running(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = [
        sys.executable,
        "-m",
        "skalds",
        "-m",
        "+mode=bench",
        "bench.tasks=3,6",
        "bench.samples=2",
        "bench.steady_s=0.3",
        "bench.timeout_s=60",
        f"hydra.sweep.dir={sweep}",
    ]
    r = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]

    results = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]
    assert [res["config"]["tasks"] for res in results] == [3, 6]
    for res in results:
        f = res["figures"]
        n = res["config"]["tasks"]
        assert f["burst_dispatch_ms"]["count"] == n
        for key in ("dispatch_ms", "update_ms", "yaml_update_ms", "cancel_ms"):
            assert f[key]["count"] == 2
            assert 0 < f[key]["median"] <= f[key]["max"] < 60_000
        assert f["starts_per_s"] > 0
        assert 0 < f["worker_uss_mib"]["median"] < 100
        assert res["machine"]["cpus"] >= 1

    summary = (sweep / "summary.md").read_text()
    assert summary.count("| local | least_loaded |") == 2
    assert (sweep / "summary.png").read_bytes().startswith(b"\x89PNG")
    assert processes_in(tmp_path) == []


def test_a_percentile_is_named_only_when_the_sample_supports_it() -> None:
    assert (min_samples(95), min_samples(99)) == (20, 100)
    assert set(summarize(range(19))) == {"count", "median", "max"}
    assert set(summarize(range(20))) == {"count", "median", "p95", "max"}
    assert set(summarize(range(100))) == {"count", "median", "p95", "p99", "max"}
    assert summarize(range(100))["p99"] < summarize(range(100))["max"]
    assert [tail_statistic(c) for c in ([10, 100], [20, 500], [100, 500], [])] == ["max", "p95", "p99", "max"]
