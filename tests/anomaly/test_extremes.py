"""The extremes method: a point must pass the series' own extremes, a run all but a few.

Clean and injected generated series: test_generated.py.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker, Observation

EXTREMES = AnomalyCondition.model_validate({"type": "anomaly", "method": "extremes"})


def observe(values: list[float], spec: AnomalyCondition = EXTREMES) -> list[Observation]:
    tracker = AnomalyTracker(spec)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [tracker.observe(start + i * timedelta(minutes=5), v) for i, v in enumerate(values)]


def noise(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(100.0, 2.0) for _ in range(n)]


def test_a_level_shift_is_caught_within_a_few_points_with_its_band() -> None:
    values = noise(1000, seed=1) + [v + 12.0 for v in noise(100, seed=2)]
    observations = observe(values)
    first = next(i for i, o in enumerate(observations) if o.anomalous)
    assert 1000 <= first <= 1003
    hit = observations[first]
    assert hit.score > 1.0 and hit.expected == pytest.approx(100.0, abs=1.0)
    assert hit.value > hit.upper


def test_one_point_short_of_the_extremes_is_not_news_but_two_in_a_row_are() -> None:
    # Five past spikes to about 130 widen the point band; the run band, which passes all
    # but the six most extreme values, stays near the noise.
    values = noise(1000, seed=3)
    for i in (200, 400, 600, 800, 900):
        values[i] += 30.0
    lone = observe([*values, 118.0, 100.0])
    assert not lone[1000].anomalous and lone[1000].upper > 130.0
    run = observe([*values, 118.0, 118.0])
    assert not run[1000].anomalous and run[1001].anomalous
    assert run[1001].value > run[1001].upper


def test_higher_sensitivity_narrows_the_bands() -> None:
    values = noise(1000, seed=5)
    values.append(max(values) + 1.0)
    assert not observe(values)[1000].anomalous
    sharper = EXTREMES.model_copy(update={"sensitivity": 4.0})
    assert observe(values, sharper)[1000].anomalous
