"""The extremes method: a point must pass the series' own extremes, a run all but a few.

Clean and injected generated series: test_generated.py.
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker, Observation
from agent.evaluate.anomaly.extremes import VOLATILITY

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


def test_noise_that_grows_inside_the_range_is_news_to_the_median_step() -> None:
    # A daily cycle of ±50 with little noise; then points alternate 30 and 70 around the
    # middle, inside every value seen, but each step is wider than any the series made.
    rng = random.Random(6)
    values = [
        100.0 + 50.0 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 0.5) for i in range(1500)
    ]
    values += [100.0 + (20.0 if i % 2 else -20.0) for i in range(24)]
    observations = observe(values)
    assert not any(o.anomalous for o in observations[300:1500])
    judged = [o for o in observations[1500:] if o.anomalous and o.statistic == VOLATILITY]
    assert judged, [(o.statistic, o.score) for o in observations[1500:] if o.anomalous]
    hit = judged[0]
    assert hit.observed == pytest.approx(40.0) and hit.observed > hit.upper
    assert hit.lower <= hit.expected < 5.0


def test_a_lone_spike_does_not_move_the_median_step() -> None:
    values = noise(1000, seed=9)
    values[900] += 40.0
    observations = observe(values)
    assert observations[900].anomalous and observations[900].statistic == "value"
    assert not any(o.statistic == VOLATILITY and o.anomalous for o in observations[901:])


def test_a_state_saved_before_the_median_step_was_judged_still_loads() -> None:
    values = noise(1200, seed=10)
    tracker = AnomalyTracker(EXTREMES)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i, v in enumerate(values[:1000]):
        tracker.observe(start + i * timedelta(minutes=5), v)
    state = json.loads(json.dumps(tracker.to_state()))
    for key in ("volatility", "moves"):
        del state["detector"][key]
    for key in ("statistic", "observed"):
        del state["last"][key]
    restored = AnomalyTracker.from_state(EXTREMES, state)
    assert restored.last is not None and restored.last.statistic == "value"
    later = [
        restored.observe(start + (1000 + i) * timedelta(minutes=5), v)
        for i, v in enumerate(values[1000:])
    ]
    # The other bands are the ones saved; the median step's starts afresh, quiet on noise.
    assert not any(o.anomalous for o in later)
    assert later[0].upper == pytest.approx(tracker.observe(later[0].at, values[1000]).upper)
