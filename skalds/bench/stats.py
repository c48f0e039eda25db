"""Summaries of samples (count, median, the percentiles the sample supports, max), and the one
rule that decides when a percentile may be named.

A tail percentile of a small sample is just its largest value: by nearest rank, "p99" of 20
samples *is* the maximum. So pXX is named only when at least :data:`SAMPLES_ABOVE_TAIL`
samples are expected above it, i.e. with ``n >= SAMPLES_ABOVE_TAIL * 100 / (100 - XX)``
samples (p95 from 20, p99 from 100); below that the table, the summary and the plot say
"max". Every place that shows a percentile asks :func:`supports_percentile`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

NAMED_PERCENTILES = (95, 99)
"""The tail percentiles a summary may carry, as ``p95``, ``p99``."""

SAMPLES_ABOVE_TAIL = 1
"""How many samples a percentile must leave above it (on average) to be named."""


def min_samples(q: float) -> int:
    """The fewest samples with which the ``q``-th percentile is named (p95: 20, p99: 100)."""
    return math.ceil(round(SAMPLES_ABOVE_TAIL * 100 / (100 - q), 6))


def supports_percentile(count: int, q: float) -> bool:
    """Whether ``count`` samples support naming the ``q``-th percentile."""
    return count >= min_samples(q)


def percentile_key(q: float) -> str:
    """The name of a percentile in summaries: ``p95``, ``p99``."""
    return f"p{q:g}"


def named_percentiles(count: int) -> list[str]:
    """The keys of the tail percentiles ``count`` samples support, lowest first."""
    return [percentile_key(q) for q in NAMED_PERCENTILES if supports_percentile(count, q)]


def tail_statistic(counts: Iterable[int]) -> str:
    """The highest tail percentile every one of several samples supports, else ``"max"``.

    For a line or a column that joins samples of different sizes (a plot against N), so
    that one label is true of every point.
    """
    sizes = list(counts)
    supported = [q for q in NAMED_PERCENTILES if sizes and all(supports_percentile(n, q) for n in sizes)]
    return percentile_key(supported[-1]) if supported else "max"


def rule_text() -> str:
    """The rule in words, for the notes under a table."""
    needs = ", ".join(f"{percentile_key(q)} from {min_samples(q)}" for q in NAMED_PERCENTILES)
    return f"A tail percentile is named only when the sample supports it ({needs} samples); below that it is the max."


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of already sorted values, by nearest rank."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> dict[str, float | int]:
    """``{"count", "median", "p95"?, "p99"?, "max"}`` of ``values`` times ``scale``.

    A percentile is present only when :func:`supports_percentile` allows it.
    """
    ordered = sorted(v * scale for v in values)
    if not ordered:
        return {"count": 0}
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    summary: dict[str, float | int] = {"count": len(ordered), "median": round(median, digits)}
    for q in NAMED_PERCENTILES:
        if supports_percentile(len(ordered), q):
            summary[percentile_key(q)] = round(percentile(ordered, q), digits)
    summary["max"] = round(ordered[-1], digits)
    return summary
