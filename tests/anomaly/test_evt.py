"""The evt method: extreme-value bands (clean and injected series: test_generated.py)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker, Observation
from agent.evaluate.anomaly.tail import exceedance_level, tail_bounds
from agent.evaluate.anomaly.windows import SortedWindow
from bench.nab.synthetic import DAY

EVT = AnomalyCondition.model_validate({"type": "anomaly", "method": "evt"})


def observe(values: list[float], spec: AnomalyCondition = EVT) -> list[Observation]:
    tracker = AnomalyTracker(spec)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [tracker.observe(start + i * timedelta(minutes=5), v) for i, v in enumerate(values)]


def test_tail_fit_finds_an_exponential_quantile() -> None:
    # Excesses of an exponential distribution are exponential: xi = 0, and the level
    # exceeded with probability p of the peaks is -ln(p) times the mean.
    rng = random.Random(3)
    peaks = sorted(rng.expovariate(1.0) for _ in range(4000))
    assert exceedance_level(peaks, 0.0, 0.01) == pytest.approx(-math.log(0.01), rel=0.15)


def test_bounds_never_fall_inside_what_the_window_holds() -> None:
    rng = random.Random(5)
    window = SortedWindow(2000, [rng.gauss(0, 1) for _ in range(2000)])
    bounds = tail_bounds(window, risk=0.5, floor=0.25)
    assert bounds is not None
    assert bounds[0] <= window.at_rank(0) - 0.25 and bounds[1] >= window.at_rank(-1) + 0.25
    # Counts: the next count up beyond the largest seen is still inside the band.
    counts = SortedWindow(500, [float(rng.randint(0, 5)) for _ in range(500)])
    low, high = tail_bounds(counts, risk=0.5, floor=0.0) or (0.0, 0.0)
    assert high >= 6.0 and low <= -1.0
    assert tail_bounds(SortedWindow(10, [1.0, 2.0]), risk=0.5, floor=0.0) is None


def test_higher_sensitivity_raises_more_alerts() -> None:
    # A modest new extreme: within one noise IQR of the records at sensitivity 1, news at 8.
    rng = random.Random(9)
    values = [rng.gauss(0, 1) for _ in range(4 * DAY)]
    values[3 * DAY] = 4.4
    assert not observe(values, EVT)[3 * DAY].anomalous
    assert observe(values, EVT.model_copy(update={"sensitivity": 8.0}))[3 * DAY].anomalous
