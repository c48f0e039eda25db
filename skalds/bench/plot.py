"""``summary.png`` of a benchmark sweep: latencies, task starts per second, CPU and memory per
worker against N, one line per swept setting, every axis from zero, titled with the machine
and the date."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skalds.bench.stats import tail_statistic
from skalds.bench.sweep import dates, machines, series_label, swept_options
from skalds.bench.tables import LATENCY_KEYS, figure

logger = logging.getLogger(__name__)

Series = dict[str, list[dict[str, Any]]]


def _series(results: list[dict[str, Any]]) -> Series:
    """Jobs grouped by their swept settings, in sweep order; each line sorted by N."""
    swept = swept_options(results)
    series: Series = {}
    for result in results:
        series.setdefault(series_label(result, swept), []).append(result)
    return {label: sorted(rows, key=lambda r: r["config"]["tasks"]) for label, rows in series.items()}


def _value(result: dict[str, Any], key: str, statistic: str | None = None) -> float:
    value = result.get("figures", {}).get(key)
    if statistic is not None:
        value = value.get(statistic) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else math.nan


def _has(results: list[dict[str, Any]], key: str) -> bool:
    """Whether some job has a value of ``key`` to draw (a summary of no samples has none)."""
    values = [result.get("figures", {}).get(key) for result in results]
    return any(v is not None and (not isinstance(v, dict) or v.get("count", 0) > 0) for v in values)


def _from_zero(ax: Any, x_max: float) -> None:
    """Both axes from zero, with room above the highest point (so a line's height and slope
    read as proportions)."""
    ys = [float(y) for line in ax.get_lines() for y in line.get_ydata() if math.isfinite(float(y))]
    top = max(ys, default=0.0)
    ax.set_xlim(0, x_max * 1.05)
    ax.set_ylim(0, top * 1.1 if top > 0 else 1)


def _summary_panel(ax: Any, series: Series, key: str, colors: list[str]) -> None:
    """Median solid, the tail the samples support dashed (its name in the title)."""
    counts = [int(r["figures"][key].get("count", 0)) for rows in series.values() for r in rows if _has([r], key)]
    tail = tail_statistic(counts)
    for i, (label, rows) in enumerate(series.items()):
        n = [r["config"]["tasks"] for r in rows]
        color = colors[i % len(colors)]
        ax.plot(n, [_value(r, key, "median") for r in rows], "-", marker="o", color=color, label=label)
        ax.plot(n, [_value(r, key, tail) for r in rows], "--", marker="o", color=color)
    fig = figure(key)
    ax.set(title=f"{fig.label}\n(solid median, dashed {tail})", ylabel=fig.unit)


def _values_panel(ax: Any, series: Series, keys: list[str], colors: list[str]) -> None:
    """Single values, one style per key (solid, dashed, ...)."""
    styles = ["-", "--", ":"]
    styles_named = ["solid", "dashed", "dotted"]
    for i, (label, rows) in enumerate(series.items()):
        n = [r["config"]["tasks"] for r in rows]
        for j, (style, key) in enumerate(zip(styles, keys, strict=False)):
            color = colors[i % len(colors)]
            ax.plot(n, [_value(r, key) for r in rows], style, marker="o", color=color, label=None if j else label)
    first = figure(keys[0])
    if len(keys) == 1:
        title = first.label
    else:
        names = ", ".join(f"{style_name} {figure(k).column}" for style_name, k in zip(styles_named, keys, strict=False))
        title = f"{first.title}\n({names})"
    ax.set(title=title, ylabel=first.unit)


def _panels(results: list[dict[str, Any]]) -> list[Callable[[Any, Series, list[str]], None]]:
    """What to draw, in reading order, skipping figures no job measured."""
    panels: list[Callable[[Any, Series, list[str]], None]] = []

    def summary(key: str) -> Callable[[Any, Series, list[str]], None]:
        return lambda ax, series, colors: _summary_panel(ax, series, key, colors)

    for key in (*LATENCY_KEYS, "failover_s"):
        if _has(results, key):
            panels.append(summary(key))
    if _has(results, "starts_per_s"):
        panels.append(lambda ax, series, colors: _values_panel(ax, series, ["starts_per_s"], colors))
    cpu = [k for k in ("cpu_skalds_pct", "cpu_launcher_pct") if _has(results, k)]
    if cpu:
        panels.append(lambda ax, series, colors: _values_panel(ax, series, cpu, colors))
    if _has(results, "worker_uss_mib"):
        panels.append(summary("worker_uss_mib"))
    return panels


def plot(results: list[dict[str, Any]], path: Path) -> bool:
    """Draw the sweep's figures against N into ``path``; False when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("summary.png needs matplotlib (pip install matplotlib); wrote summary.md only")
        return False
    series = _series(results)
    panels = _panels(results)
    columns = 3
    rows = max(1, math.ceil(len(panels) / columns))
    fig, grid = plt.subplots(rows, columns, figsize=(13, 3.6 * rows + 0.6), constrained_layout=True, squeeze=False)
    axes = list(grid.flat)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    sizes = sorted({r["config"]["tasks"] for r in results})
    for ax, draw in zip(axes, panels, strict=False):
        draw(ax, series, colors)
        _from_zero(ax, max(sizes))
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.set_xlabel("N tasks")
        ax.grid(alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if panels:
        axes[0].legend(fontsize=7)
    on = machines(results)
    machine = on[0] if len(on) == 1 else "several machines (see summary.md)"
    fig.suptitle(f"Skalds benchmark: {machine}; {dates(results)}", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
