"""The extremes method: a point must pass the series' own extremes, a run all but a few."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker, Observation
from bench.nab.scorer import probationary_length
from bench.nab.synthetic import Synthetic, anomalous_series, clean_series, judge

EXTREMES = AnomalyCondition.model_validate({"type": "anomaly", "method": "extremes"})


def observe(values: list[float], spec: AnomalyCondition = EXTREMES) -> list[Observation]:
    tracker = AnomalyTracker(spec)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [tracker.observe(start + i * timedelta(minutes=5), v) for i, v in enumerate(values)]


def noise(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(100.0, 2.0) for _ in range(n)]


@pytest.mark.parametrize("series", clean_series(), ids=lambda s: s.name)
def test_clean_generated_series_raise_no_alert(series: Synthetic) -> None:
    fired = [i for i, o in enumerate(observe(series.values)) if o.breached]
    result = judge(series, fired, probationary_length(len(series.values)))
    assert result.false_alerts == 0, fired


@pytest.mark.parametrize("series", anomalous_series(), ids=lambda s: s.name)
def test_injected_anomalies_are_caught_on_time(series: Synthetic) -> None:
    observations = observe(series.values)
    fired = [i for i, o in enumerate(observations) if o.anomalous]
    assert judge(series, fired, probationary_length(len(series.values))).on_time, fired
    at = next(i for i in fired if i >= (series.anomaly or 0))
    # The band explains the alert: what was judged (the value or its short mean) left it.
    assert abs(observations[at].score) > 1.0
    assert observations[at].lower <= observations[at].expected <= observations[at].upper


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


def test_a_recurring_spike_stops_being_news() -> None:
    values = noise(4000, seed=4)
    spikes = range(300, 4000, 150)
    for i in spikes:
        values[i] += 40
    observations = observe(values)
    assert observations[300].anomalous
    assert not any(observations[i].anomalous for i in spikes if i > 1500)


def test_higher_sensitivity_narrows_the_bands() -> None:
    values = noise(1000, seed=5)
    values.append(max(values) + 1.0)
    assert not observe(values)[1000].anomalous
    sharper = EXTREMES.model_copy(update={"sensitivity": 4.0})
    assert observe(values, sharper)[1000].anomalous
