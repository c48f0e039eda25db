"""Summaries of a benchmark sweep: ``summary.md`` (what machine and when, then one short table
per figure, rows in the order the sweep ran) and ``summary.png`` (see
:mod:`skalds.bench.plot`).

``python -m skalds.bench.report <sweep dir>``, or automatically at the end of a
``-m +mode=bench`` sweep (the Hydra callback in ``conf/mode/bench.yaml``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from skalds.bench.plot import plot
from skalds.bench.stats import rule_text
from skalds.bench.sweep import dates, job_label, load_results, machines, options, swept_options
from skalds.bench.tables import (
    DASH,
    FIGURES,
    Figure,
    is_summary,
    markdown_table,
    number,
    summary_cells,
    tail_columns,
)


def header(results: list[dict[str, Any]]) -> list[str]:
    """Machine, date, what every job shared and what was swept, as Markdown lines."""
    on = machines(results)
    lines = [f"- Machine: {m}" for m in on]
    if len(on) > 1:
        lines.insert(0, "- The jobs ran on different machines:")
    lines.append(f"- Date: {dates(results)}")
    swept = swept_options(results)
    shared = {k: v for k, v in options(results[0]).items() if k not in swept}
    lines.append(f"- Every job: {', '.join(f'{k}={v}' for k, v in shared.items()) or DASH}")
    lines.append(
        f"- Swept: N (bench.tasks){''.join(', ' + k for k in swept)}; "
        f"{len(results)} jobs, rows in the order the sweep ran them"
    )
    return lines


def _sections(results: list[dict[str, Any]]) -> list[tuple[str, list[Figure]]]:
    """Figures grouped by table, in catalogue order, only those some job measured."""
    present = [f for f in FIGURES if any(r.get("figures", {}).get(f.key) is not None for r in results)]
    sections: dict[str, list[Figure]] = {}
    for fig in present:
        sections.setdefault(fig.title, []).append(fig)
    return list(sections.items())


def section_table(results: list[dict[str, Any]], figures: list[Figure], swept: list[str]) -> str:
    """One figure's table (or a group of single values'): a row per job that measured it."""
    rows_of = [r for r in results if any(r.get("figures", {}).get(f.key) is not None for f in figures)]
    lead = ["job", *swept, "N"]

    def first(r: dict[str, Any]) -> list[str]:
        mine = options(r)
        return [job_label(r), *(mine.get(k, DASH) for k in swept), str(r.get("config", {}).get("tasks", DASH))]

    values = [r["figures"][figures[0].key] for r in rows_of]
    if len(figures) == 1 and all(is_summary(v) for v in values):
        tails = tail_columns(values)
        rows = [first(r) + summary_cells(v, tails) for r, v in zip(rows_of, values, strict=True)]
        return markdown_table([*lead, "count", "median", *tails, "max"], rows)
    head = [*lead, *(f.column or f.unit for f in figures)]
    rows = [first(r) + [number(r["figures"].get(f.key)) for f in figures] for r in rows_of]
    return markdown_table(head, rows)


def markdown(results: list[dict[str, Any]]) -> str:
    """``summary.md``: the header, then one table per figure."""
    if not results:
        return "# Benchmark summary\n\nNo results.json found.\n"
    swept = swept_options(results)
    parts = ["# Benchmark summary", "\n".join(header(results)), rule_text()]
    for title, figures in _sections(results):
        units = list(dict.fromkeys(f.unit for f in figures))
        parts += [f"## {title} ({', '.join(units)})", section_table(results, figures, swept)]
    return "\n\n".join(parts) + "\n"


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
