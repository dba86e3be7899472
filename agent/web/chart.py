"""An alert's recent values as SVG geometry, drawn on the server: the values as a line
with a dot per evaluation, against the threshold line or the anomaly band.

Pure: samples in, coordinates out; the template writes the elements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

WIDTH, HEIGHT = 720, 240
#: room for the axis labels: left, right, top, bottom.
MARGIN = (56, 12, 12, 28)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    state: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    #: runs of points without gaps (an evaluation without a value breaks the line).
    lines: list[str]
    points: list[Point]
    threshold_y: float | None
    #: the anomaly band as one polygon, when the samples carry one.
    band: str | None
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    left: float = MARGIN[0]
    right: float = WIDTH - MARGIN[1]


def number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}"


def build_chart(samples: Sequence[Mapping[str, Any]], threshold: float | None) -> Chart | None:
    """None when no sample has a value to draw."""
    rows = [(datetime.fromisoformat(s["at"]), _value(s.get("value")), s) for s in samples]
    valued = [(at, value) for at, value, _s in rows if value is not None]
    if not valued:
        return None
    banded = [
        (at, lower, upper)
        for at, _v, s in rows
        if (lower := _value(s.get("lower"))) is not None
        and (upper := _value(s.get("upper"))) is not None
    ]
    limit = _value(threshold)
    ys = [value for _at, value in valued] + ([limit] if limit is not None else [])
    ys += [bound for _at, lower, upper in banded for bound in (lower, upper)]
    ticks = _ticks(min(ys), max(ys))
    low, high = ticks[0], ticks[-1]
    start, end = rows[0][0].timestamp(), rows[-1][0].timestamp()
    left, top = MARGIN[0], MARGIN[2]
    right, bottom = WIDTH - MARGIN[1], HEIGHT - MARGIN[3]

    def x(at: datetime) -> float:
        span = end - start
        return round(left + (at.timestamp() - start) / span * (right - left) if span else left, 1)

    def y(value: float) -> float:
        return round(bottom - (value - low) / (high - low) * (bottom - top), 1)

    lines: list[str] = []
    run: list[str] = []
    points = []
    for at, value, sample in rows:
        if value is None:
            if run:
                lines.append(" ".join(run))
            run = []
            continue
        px, py, state = x(at), y(value), str(sample.get("state", ""))
        run.append(f"{px},{py}")
        points.append(Point(px, py, f"{at:%H:%M:%S} {number(value)} ({state})", state))
    if run:
        lines.append(" ".join(run))
    band = None
    if banded:
        tops = [f"{x(at)},{y(upper)}" for at, _lower, upper in banded]
        bottoms = [f"{x(at)},{y(lower)}" for at, lower, _upper in reversed(banded)]
        band = " ".join(tops + bottoms)
    times = [rows[0][0], rows[len(rows) // 2][0], rows[-1][0]] if len(rows) > 1 else [rows[0][0]]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        lines=lines,
        points=points,
        threshold_y=y(limit) if limit is not None else None,
        band=band,
        y_ticks=[(y(t), number(t)) for t in ticks],
        x_ticks=[(x(t), f"{t:%H:%M}") for t in dict.fromkeys(times)],
    )


def _value(value: Any) -> float | None:
    """A number to draw, or None (no value, not finite)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _ticks(low: float, high: float) -> list[float]:
    """Round values for the y axis, 1, 2 or 5 times a power of ten apart, from below the
    lowest value to above the highest (not below zero when no value is)."""
    pad = (high - low) * 0.05 if high != low else abs(high) * 0.1 or 1.0
    low, high = (0.0 if low >= 0 > low - pad else low - pad), high + pad
    raw = (high - low) / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.floor(low / step + 1e-9) * step
    count = math.ceil((high - first) / step - 1e-9)
    return [round(first + i * step, 12) for i in range(count + 1)]
