"""The benchmark mode as a user runs it: a small Hydra sweep, a single run, their files and
what they print, no process left."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from skalds.bench.report import write_report
from skalds.bench.stats import min_samples, summarize, tail_statistic
from skalds.bench.tables import number

pytestmark = pytest.mark.integration

SAMPLE_TABLES = [
    "dispatch, one at a time (ms)",
    "dispatch of N at once (ms)",
    "update over HTTP (ms)",
    "update by YAML save (ms)",
    "event stream, state written -> event received (ms)",
    "event stream, request -> event received (ms)",
    "cancel (ms)",
    "task starts, N at once (starts/s)",
    "time until all run (s)",
    "CPU with N running (% of a core)",
    "memory per worker, USS (MiB)",
    "heartbeat age (ms)",
]


def processes_in(directory: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info.get("cwd")
        if cwd and Path(cwd).is_relative_to(directory):
            found.append(proc)
    return found


def tables(summary: str) -> dict[str, list[list[str]]]:
    """summary.md's tables by heading: their rows as lists of cells (header row first)."""
    found: dict[str, list[list[str]]] = {}
    heading = None
    for line in summary.splitlines():
        if line.startswith("## "):
            heading = line[3:]
            found[heading] = []
        elif heading and line.startswith("|") and not line.startswith("|---"):
            found[heading].append([cell.strip() for cell in line.strip("|").split("|")])
    return found


def test_a_small_sweep_writes_results_and_a_summary_and_leaves_nothing_running(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = [
        sys.executable,
        "-m",
        "skalds",
        "-m",
        "+mode=bench",
        "bench.tasks=6,3",  # N falling: rows must follow the sweep, not N
        "bench.samples=2",
        "bench.start_samples=2",
        "bench.event_samples=2",
        "bench.startup_samples=0",
        "bench.steady_s=0.3",
        "bench.timeout_s=60",
        f"hydra.sweep.dir={sweep}",
    ]
    r = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]

    results = [json.loads((sweep / str(job) / "results.json").read_text()) for job in (0, 1)]
    assert [res["config"]["tasks"] for res in results] == [6, 3]
    assert [res["job"]["num"] for res in results] == [0, 1]
    for res in results:
        f = res["figures"]
        n = res["config"]["tasks"]
        assert f["burst_dispatch_ms"]["count"] == n
        for key in ("dispatch_ms", "update_ms", "yaml_update_ms", "event_after_write_ms", "cancel_ms"):
            assert f[key]["count"] == 2
            assert 0 < f[key]["median"] <= f[key]["max"] < 60_000
            assert "p95" not in f[key] and "p99" not in f[key]  # two samples name no percentile
        assert f["starts_per_s"] > 0
        assert 0 < f["burst_all_running_s"] < 60
        assert 0 < f["worker_uss_mib"]["median"] < 100
        assert res["machine"]["cpus"] >= 1

    summary = (sweep / "summary.md").read_text()
    machine = results[0]["machine"]
    assert f"{machine['cpu_model']}, {machine['cpus']} cores" in summary
    assert f"Python {machine['python']}" in summary
    assert re.search(r"Date: \d{4}-\d\d-\d\d \d\d:\d\d", summary)
    found = tables(summary)
    assert list(found) == SAMPLE_TABLES  # one table per figure, in reading order; no failover on local
    for heading, rows in found.items():
        head, body = rows[0], rows[1:]
        assert head[:2] == ["job", "N"], heading
        assert [row[:2] for row in body] == [["0", "6"], ["1", "3"]], heading
        assert "p99" not in head and "p95" not in head, heading
    assert (sweep / "summary.png").read_bytes().startswith(b"\x89PNG")
    assert processes_in(tmp_path) == []


def test_a_single_run_prints_its_figures_as_a_table(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "skalds",
        "+mode=bench",
        "bench.tasks=3",
        "bench.samples=2",
        "bench.start_samples=2",
        "bench.event_samples=2",
        "bench.large_burst=4",
        "bench.startup_samples=1",
        "bench.steady_s=0.3",
        "bench.timeout_s=60",
        f"hydra.run.dir={run_dir}",
    ]
    r = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]

    results = json.loads((run_dir / "results.json").read_text())
    assert results["job"]["num"] is None
    out = r.stdout
    assert "backend local, dispatch least_loaded, N = 3" in out
    assert f"{results['machine']['cpus']} cores" in out
    lines = out.splitlines()
    head = next(line.split() for line in lines if line.startswith("figure") and "count" in line)
    assert head == ["figure", "count", "median", "max", "unit"]  # 2 or 3 samples: no percentile
    dispatch = results["figures"]["dispatch_ms"]
    row = next(line for line in lines if line.startswith("dispatch, one at a time"))
    assert row.split()[-4:] == ["2", number(dispatch["median"]), number(dispatch["max"]), "ms"]
    labels = (
        "update over HTTP",
        "cancel",
        "task starts, N at once",
        "all running, N at once",
        "dispatch of the large burst",
        "all running, large burst",
        "start -> ready, standalone",
        "SIGINT -> exited, standalone",
        "CPU, Skalds process",
    )
    for label in labels:
        assert any(line.startswith(label) for line in lines), label
    figures = results["figures"]
    assert figures["large_burst_dispatch_ms"]["count"] == 4
    assert 0 < figures["startup_standalone_s"]["median"] < 60
    assert f"results: {run_dir / 'results.json'}" in out
    assert processes_in(tmp_path) == []


def test_a_percentile_is_named_only_when_the_sample_supports_it() -> None:
    assert (min_samples(95), min_samples(99)) == (20, 100)
    assert set(summarize(range(19))) == {"count", "median", "max"}
    assert set(summarize(range(20))) == {"count", "median", "p95", "max"}
    assert set(summarize(range(100))) == {"count", "median", "p95", "p99", "max"}
    assert summarize(range(100))["p99"] < summarize(range(100))["max"]
    assert [tail_statistic(c) for c in ([10, 100], [20, 500], [100, 500], [])] == ["max", "p95", "p99", "max"]


def fake_result(num: int, tasks: int, dispatch: str, samples: int) -> dict[str, Any]:
    def lat(n: int) -> dict[str, Any]:
        return summarize([float(i + 1) for i in range(n)])

    return {
        "config": {"tasks": tasks, "samples": samples, "steady_s": 1, "backend": "distributed", "dispatch": dispatch},
        "job": {"num": num, "overrides": ["+mode=bench", f"bench.tasks={tasks}", f"dispatch={dispatch}"]},
        "machine": {"cpus": 2, "cpu_model": "Test CPU", "memory_gib": 8.0, "python": "3.11.7"},
        "started_at": 1_700_000_000 + num,
        "duration_s": 1.0,
        "figures": {
            "dispatch_ms": lat(samples),
            "burst_dispatch_ms": lat(tasks),
            "starts_per_s": 100.0,
            "cpu_skalds_pct": 1.5,
            "cpu_launcher_pct": 0.0,
            "worker_uss_mib": lat(min(tasks, 50)),
            "failover_s": lat(10),
        },
    }


def test_the_summary_follows_the_sweep_order_and_names_only_supported_percentiles(tmp_path: Path) -> None:
    jobs = [(0, 500, "least_loaded"), (1, 10, "least_loaded"), (2, 500, "round_robin"), (10, 100, "round_robin")]
    for num, tasks, dispatch in jobs:
        (tmp_path / str(num)).mkdir()
        (tmp_path / str(num) / "results.json").write_text(json.dumps(fake_result(num, tasks, dispatch, 20)))

    write_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "Test CPU, 2 cores, 8.0 GiB RAM, Python 3.11.7" in summary
    assert "Date: 2023-11-14 22:13 UTC" in summary
    assert "Swept: N (bench.tasks), dispatch" in summary
    found = tables(summary)
    assert list(found)[-1] == "failover of a killed node (s)"
    burst = found["dispatch of N at once (ms)"]
    assert burst[0] == ["job", "dispatch", "N", "count", "median", "p95", "p99", "max"]
    assert [row[:3] for row in burst[1:]] == [
        ["0", "least_loaded", "500"],
        ["1", "least_loaded", "10"],
        ["2", "round_robin", "500"],
        ["10", "round_robin", "100"],
    ]
    assert burst[2][5:7] == ["-", "-"]  # 10 samples: only the max
    assert burst[4][5] != "-" and burst[4][6] != "-"  # 100 samples: p95 and p99
    assert found["dispatch, one at a time (ms)"][0][-3:] == ["median", "p95", "max"]  # 20 samples
    assert found["CPU with N running (% of a core)"][0][-2:] == ["Skalds process", "launcher"]
    assert (tmp_path / "summary.png").read_bytes().startswith(b"\x89PNG")


def test_the_makespan_phase_runs_short_tasks_on_a_small_node_and_reports_against_the_floor(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "skalds",
        "+mode=bench",
        "bench.phases=[makespan]",
        "bench.tasks=6",
        "bench.task_s=0.3",
        "node.capacity=2",
        "bench.timeout_s=60",
        f"hydra.run.dir={run_dir}",
    ]
    r = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    f = results["figures"]
    assert set(f) == {"makespan_s", "makespan_floor_s", "refill_ms"}, "only the phase asked for ran"
    assert f["makespan_floor_s"] == 0.9
    assert f["makespan_s"] >= 0.9
    assert f["refill_ms"]["count"] == 4, "every task after the first two waited for a slot"
    assert (results["config"]["capacity"], results["config"]["task_s"]) == (2, 0.3)
    assert any(line.startswith("makespan, N short tasks") for line in r.stdout.splitlines())
    assert processes_in(tmp_path) == []


NODES_FIGURES = {
    "nodes_count",
    "nodes_capacity",
    "nodes_all_assigned_s",
    "nodes_all_running_s",
    "nodes_placed_per_s",
    "nodes_running_per_s",
    "nodes_tasks_per_node_min",
    "nodes_tasks_per_node_max",
    "nodes_cpu_controller_pct",
    "nodes_cpu_controller_ms_per_task",
    "nodes_cpu_nodes_pct",
    "nodes_cpu_node_max_pct",
    "nodes_all_gone_s",
    "nodes_left_running",
}


def test_the_nodes_phase_places_tasks_on_node_processes_and_stops_them_all(tmp_path: Path) -> None:
    from tests.servers import cluster_env

    env = {**os.environ, **cluster_env()}
    run_dir = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "skalds",
        "+mode=bench",
        "backend=distributed",
        "backend.kafka.fetch_wait_max_ms=10",
        "bench.phases=[nodes]",
        "bench.nodes=3",
        "bench.tasks=30",
        "bench.timeout_s=90",
        f"hydra.run.dir={run_dir}",
    ]
    r = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    f = results["figures"]
    assert set(f) == NODES_FIGURES, "only the phase asked for ran, with every figure"
    assert (f["nodes_count"], results["config"]["nodes"]) == (3, 3)
    assert f["nodes_capacity"] == 20, "twice an even share of 30 tasks on 3 nodes"
    # Every task landed on one of the three node processes (none on the controller).
    assert 0 < f["nodes_tasks_per_node_min"] <= 10 <= f["nodes_tasks_per_node_max"] <= 20
    assert 0 < f["nodes_all_assigned_s"] < 90 and 0 < f["nodes_all_running_s"] < 90
    assert f["nodes_placed_per_s"] > 0 and f["nodes_running_per_s"] > 0
    assert f["nodes_cpu_controller_ms_per_task"] > 0 and f["nodes_cpu_nodes_pct"] > 0
    assert f["nodes_left_running"] == 0, "a node or one of its workers outlived SIGINT"
    assert len([p for p in run_dir.iterdir() if p.name.startswith("nodes-bench-n")]) == 3, "a log per node"
    assert any(line.startswith("nodes phase: placements") for line in r.stdout.splitlines())
    assert processes_in(tmp_path) == []


def test_the_nodes_phase_is_refused_on_the_embedded_backends(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "skalds", "+mode=bench", "bench.phases=[nodes]", f"hydra.run.dir={tmp_path / 'run'}"]
    r = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "bench.phases" in r.stderr and "backend=distributed" in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "run" / "results.json").exists()
    assert processes_in(tmp_path) == []
