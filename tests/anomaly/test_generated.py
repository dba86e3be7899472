"""The methods that must stay quiet on clean generated series and catch injected breaks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker, Observation
from bench.nab.scorer import probationary_length
from bench.nab.synthetic import Synthetic, anomalous_series, clean_series, judge

#: evt and extremes promise no alert on any clean generated series (bench/nab/validate.py).
METHODS = ["evt", "extremes"]


def observe(values: list[float], method: str) -> list[Observation]:
    spec = AnomalyCondition.model_validate({"type": "anomaly", "method": method})
    tracker = AnomalyTracker(spec)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [tracker.observe(start + i * timedelta(minutes=5), v) for i, v in enumerate(values)]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("series", clean_series(), ids=lambda s: s.name)
def test_clean_generated_series_raise_no_alert(series: Synthetic, method: str) -> None:
    fired = [i for i, o in enumerate(observe(series.values, method)) if o.breached]
    result = judge(series, fired, probationary_length(len(series.values)))
    assert result.false_alerts == 0, fired


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("series", anomalous_series(), ids=lambda s: s.name)
def test_injected_anomalies_are_caught_on_time(series: Synthetic, method: str) -> None:
    observations = observe(series.values, method)
    fired = [i for i, o in enumerate(observations) if o.anomalous]
    result = judge(series, fired, probationary_length(len(series.values)))
    assert result.on_time, fired
    at = next(i for i in fired if i >= (series.anomaly or 0))
    # The band explains the alert: what was judged (the value or its short mean) left it.
    assert abs(observations[at].score) > 1.0
    assert observations[at].lower <= observations[at].expected <= observations[at].upper


@pytest.mark.parametrize("method", METHODS)
def test_a_recurring_spike_stops_being_news(method: str) -> None:
    rng = random.Random(8)
    values = [rng.gauss(100, 2) for _ in range(4000)]
    spikes = range(300, 4000, 150)
    for i in spikes:
        values[i] += 40
    observations = observe(values, method)
    assert observations[300].anomalous
    assert not any(observations[i].anomalous for i in spikes if i > 1500)
