"""What a benchmark reports and how it reads: the catalogue of figures (one place for their
labels and units), number formatting, and tables as aligned text or Markdown.

A figure in ``results.json`` is either a summary of samples (a dict from
:func:`skalds.bench.stats.summarize`) or a single value (``starts_per_s``, CPU %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from skalds.bench.stats import NAMED_PERCENTILES, named_percentiles, percentile_key, rule_text


@dataclass(frozen=True)
class Figure:
    """One measured figure: its key in ``results.json``, what a reader calls it, its unit.

    ``title`` names the figure's table in ``summary.md``; ``column`` its column there when
    several single values share a table (``group``).
    """

    key: str
    label: str
    unit: str
    group: str = ""
    column: str = ""

    @property
    def title(self) -> str:
        """The heading of this figure's table (the group's, for grouped single values)."""
        return self.group or self.label


FIGURES: tuple[Figure, ...] = (
    Figure("dispatch_ms", "dispatch, one at a time", "ms"),
    Figure("burst_dispatch_ms", "dispatch of N at once", "ms"),
    Figure("update_ms", "update over HTTP", "ms"),
    Figure("yaml_update_ms", "update by YAML save", "ms"),
    Figure("event_after_write_ms", "event stream, state written -> event received", "ms"),
    Figure("event_after_request_ms", "event stream, request -> event received", "ms"),
    Figure("cancel_ms", "cancel", "ms"),
    Figure("starts_per_s", "task starts, N at once", "starts/s"),
    Figure("burst_all_running_s", "all running, N at once", "s", "time until all run", "N at once"),
    Figure("large_burst_dispatch_ms", "dispatch of the large burst", "ms"),
    Figure("large_burst_all_running_s", "all running, large burst", "s", "time until all run", "large burst"),
    Figure("large_burst_all_gone_s", "all gone, large burst cancelled", "s", "time until all run", "large burst gone"),
    Figure("cpu_skalds_pct", "CPU, Skalds process", "% of a core", "CPU with N running", "Skalds process"),
    Figure("cpu_launcher_pct", "CPU, launcher", "% of a core", "CPU with N running", "launcher"),
    Figure("worker_uss_mib", "memory per worker, USS", "MiB"),
    Figure("heartbeat_age_ms", "heartbeat age", "ms"),
    Figure("failover_s", "failover of a killed node", "s"),
    Figure("makespan_s", "makespan, N short tasks", "s", "makespan of N short tasks", "measured"),
    Figure("makespan_floor_s", "makespan floor", "s", "makespan of N short tasks", "floor N x task_s / capacity"),
    Figure("refill_ms", "slot refill: a task ends -> the next starts", "ms"),
    Figure("nodes_count", "nodes phase: node processes", "nodes"),
    Figure("nodes_capacity", "nodes phase: slots per node", "slots"),
    Figure("nodes_all_assigned_s", "nodes phase: first create -> last assigned", "s"),
    Figure("nodes_all_running_s", "nodes phase: first create -> last running", "s"),
    Figure("nodes_placed_per_s", "nodes phase: placements", "tasks/s", "placement throughput", "assigned"),
    Figure("nodes_running_per_s", "nodes phase: starts", "tasks/s", "placement throughput", "running"),
    Figure("nodes_tasks_per_node_min", "nodes phase: fewest tasks on a node", "tasks"),
    Figure("nodes_tasks_per_node_max", "nodes phase: most tasks on a node", "tasks"),
    Figure("nodes_cpu_controller_pct", "nodes phase: CPU, controller process", "% of a core"),
    Figure("nodes_cpu_controller_ms_per_task", "nodes phase: controller CPU per placement", "ms"),
    Figure("nodes_cpu_nodes_pct", "nodes phase: CPU, all node processes", "% of a core"),
    Figure("nodes_cpu_node_max_pct", "nodes phase: CPU, busiest node process", "% of a core"),
    Figure("nodes_all_gone_s", "nodes phase: cancel all -> all gone", "s"),
    Figure("nodes_left_running", "nodes phase: processes left after SIGINT", "processes"),
    *(
        Figure(f"{what}_{kind}_s", f"{label} {kind}", "s")
        for kind in ("standalone", "controller", "node", "edge")
        for what, label in (("startup", "start -> ready,"), ("stop", "SIGINT -> exited,"))
    ),
)
"""Every figure, in the order people read them (the order of the phases)."""

LATENCY_KEYS = (
    "dispatch_ms",
    "burst_dispatch_ms",
    "update_ms",
    "yaml_update_ms",
    "event_after_write_ms",
    "cancel_ms",
    "heartbeat_age_ms",
)
"""The figures drawn as latency panels."""

DASH = "-"


def figure(key: str) -> Figure:
    """The catalogue entry of ``key``."""
    return next(f for f in FIGURES if f.key == key)


def number(value: Any) -> str:
    """A value as people read it (5.82, 41.3, 262; never an exponent), ``-`` when absent."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if isinstance(value, bool | int) or not isinstance(value, float):
        return str(value)
    size = abs(value)
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def is_summary(value: Any) -> bool:
    """Whether a figure's value is a summary of samples (not a single value)."""
    return isinstance(value, dict)


def tail_columns(summaries: Sequence[dict[str, Any]]) -> list[str]:
    """The percentile columns some of ``summaries`` support (the others show ``-``)."""
    shown = {key for s in summaries for key in named_percentiles(int(s.get("count", 0)))}
    return [percentile_key(q) for q in NAMED_PERCENTILES if percentile_key(q) in shown]


def summary_cells(summary: dict[str, Any], tails: Sequence[str]) -> list[str]:
    """count, median, each of ``tails`` (only where the count supports it), max."""
    count = int(summary.get("count", 0))
    supported = named_percentiles(count)
    cells = [str(count), number(summary.get("median"))]
    cells += [number(summary.get(t)) if t in supported else DASH for t in tails]
    return [*cells, number(summary.get("max"))]


def _is_numeric(cell: str) -> bool:
    return cell == DASH or cell.replace(".", "", 1).lstrip("-").isdigit()


def text_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns for a terminal: text left, numbers right."""
    widths = [max(len(str(c)) for c in column) for column in zip(head, *rows, strict=True)]
    numeric = [all(_is_numeric(row[i]) for row in rows) and bool(rows) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if right else c.ljust(w) for c, w, right in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, numbers right-aligned."""
    numeric = [all(_is_numeric(row[i]) for row in rows) and bool(rows) for i in range(len(head))]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def run_table(figures: dict[str, Any]) -> str:
    """The figures of one run as a text table: summaries first, then single values."""
    known = [f for f in FIGURES if f.key in figures and figures[f.key] is not None]
    summaries = [f for f in known if is_summary(figures[f.key])]
    values = [f for f in known if not is_summary(figures[f.key])]
    tails = tail_columns([figures[f.key] for f in summaries])
    rows = [[f.label, *summary_cells(figures[f.key], tails), f.unit] for f in summaries]
    parts = [text_table(["figure", "count", "median", *tails, "max", "unit"], rows)] if rows else []
    if values:
        parts.append(
            text_table(["figure", "value", "unit"], [[f.label, number(figures[f.key]), f.unit] for f in values])
        )
    return "\n\n".join(parts)


def machine_text(machine: dict[str, Any]) -> str:
    """The machine of :func:`skalds.bench.harness.machine_info` in one line."""
    return (
        f"{machine.get('cpu_model', 'unknown CPU')}, {machine.get('cpus', '?')} cores, "
        f"{machine.get('memory_gib', '?')} GiB RAM, Python {machine.get('python', '?')}"
    )


def date_text(at_s: float | None) -> str:
    """A UNIX time as a date people read (UTC, to the minute)."""
    if at_s is None:
        return "unknown date"
    return datetime.fromtimestamp(at_s, UTC).strftime("%Y-%m-%d %H:%M UTC")


def date_range_text(start_s: float | None, end_s: float | None) -> str:
    """From one UNIX time to another, the date once when they share it."""
    start, end = date_text(start_s), date_text(end_s)
    if start_s is None or end_s is None or start == end:
        return start
    if start[:10] == end[:10]:
        return f"{start[:-4]} to {end[11:]}"
    return f"{start} to {end}"


def run_text(results: dict[str, Any]) -> str:
    """What a single run prints at its end: what ran, where and when, and its figures."""
    config = results.get("config", {})
    lines = [
        f"Skalds benchmark: backend {config.get('backend')}, dispatch {config.get('dispatch')}, "
        f"N = {config.get('tasks')} ({config.get('samples')} samples, steady state {config.get('steady_s')} s)",
        f"{machine_text(results.get('machine', {}))}; {date_text(results.get('started_at'))}, "
        f"{number(results.get('duration_s'))} s",
        "",
        run_table(results.get("figures", {})),
        "",
        rule_text(),
    ]
    return "\n".join(lines)
