"""Summaries of a benchmark sweep: ``summary.md`` (one row per job) and ``summary.png``
(latency percentiles and throughput against N, one line per swept option).

``python -m skalds.bench.report <sweep dir>``, or automatically at the end of a
``-m +mode=bench`` sweep (the Hydra callback in ``conf/mode/bench.yaml``).
"""

from __future__ import annotations

import json
import logging
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

logger = logging.getLogger(__name__)

LATENCIES = [
    ("dispatch_ms", "dispatch"),
    ("burst_dispatch_ms", "dispatch of N at once"),
    ("update_ms", "update"),
    ("yaml_update_ms", "YAML save"),
    ("cancel_ms", "cancel"),
]


def load_results(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every job's ``results.json`` under ``sweep_dir``, ordered by backend, dispatch, N."""
    results = []
    for path in sorted(sweep_dir.glob("**/results.json")):
        data = json.loads(path.read_text())
        data["job"] = str(path.parent.relative_to(sweep_dir)) or "."
        results.append(data)
    return sorted(results, key=lambda r: (r["config"]["backend"], r["config"]["dispatch"], r["config"]["tasks"]))


def _cell(figure: dict[str, Any] | None, key: str) -> str:
    if not figure or key not in figure:
        return "-"
    return f"{figure[key]:g}"


def markdown(results: list[dict[str, Any]]) -> str:
    """The summary table."""
    head = ["job", "backend", "dispatch", "N"]
    for _, label in LATENCIES:
        head += [f"{label} p50 ms", f"{label} p99 ms"]
    head += ["starts/s", "worker USS MiB (median)", "Skalds CPU % (N running)", "heartbeat age p99 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        f, c = r["figures"], r["config"]
        row = [r["job"], c["backend"], c["dispatch"], str(c["tasks"])]
        for key, _ in LATENCIES:
            row += [_cell(f.get(key), "median"), _cell(f.get(key), "p99")]
        row += [
            f"{f.get('starts_per_s', '-')}",
            _cell(f.get("worker_uss_mib"), "median"),
            f"{f.get('cpu_skalds_pct', '-')}",
            _cell(f.get("heartbeat_age_ms"), "p99"),
        ]
        lines.append("| " + " | ".join(row) + " |")
    machine = results[0]["machine"] if results else {}
    note = f"\nMeasured on {machine.get('cpus')} CPUs ({machine.get('cpu_model')}), Python {machine.get('python')}.\n"
    return "# Benchmark summary\n\n" + "\n".join(lines) + "\n" + (note if results else "")


def plot(results: list[dict[str, Any]], path: Path) -> bool:
    """Draw latency percentiles and throughput against N; False when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("summary.png needs matplotlib (pip install matplotlib); wrote summary.md only")
        return False
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        series[f"{r['config']['backend']}/{r['config']['dispatch']}"].append(r)
    fig, grid = plt.subplots(2, 3, figsize=(13, 7.5), constrained_layout=True)
    axes = list(grid.flat)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    sizes = sorted({r["config"]["tasks"] for r in results})
    for ax, (key, label) in zip(axes, LATENCIES, strict=False):
        for i, (name, rows) in enumerate(series.items()):
            rows = sorted(rows, key=lambda r: r["config"]["tasks"])
            n = [r["config"]["tasks"] for r in rows]
            for pct, style in (("median", "-"), ("p99", "--")):
                values = [r["figures"].get(key, {}).get(pct) for r in rows]
                ax.plot(
                    n, values, style, marker="o", color=colors[i % len(colors)], label=name if pct == "median" else None
                )
        ax.set(title=f"{label} (solid p50, dashed p99)", xlabel="N tasks", ylabel="ms")
    ax = axes[-1]
    for i, (name, rows) in enumerate(series.items()):
        rows = sorted(rows, key=lambda r: r["config"]["tasks"])
        starts = [r["figures"].get("starts_per_s") for r in rows]
        ax.plot([r["config"]["tasks"] for r in rows], starts, marker="o", color=colors[i % len(colors)], label=name)
    ax.set(title="task starts per second (N at once)", xlabel="N tasks", ylabel="starts/s")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[-1].legend(fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(sweep_dir: Path) -> list[Path]:
    """Write ``summary.md`` (and ``summary.png``) into ``sweep_dir``; return the files."""
    results = load_results(sweep_dir)
    written = [sweep_dir / "summary.md"]
    written[0].write_text(markdown(results))
    if results and plot(results, sweep_dir / "summary.png"):
        written.append(sweep_dir / "summary.png")
    return written


class ReportCallback(Callback):
    """Hydra callback: summarize the sweep when the last job ended."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        files = write_report(Path(config.hydra.sweep.dir))
        print(f"benchmark summary: {', '.join(str(f) for f in files)}", file=sys.stderr)


def main(argv: list[str]) -> None:
    """``python -m skalds.bench.report <sweep dir>``."""
    if len(argv) != 2:
        raise SystemExit("usage: python -m skalds.bench.report <multirun dir>")
    for path in write_report(Path(argv[1])):
        print(path)


if __name__ == "__main__":
    main(sys.argv)
