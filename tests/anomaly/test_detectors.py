"""Online anomaly detectors and the tracker's warm-up, filters, windows and persistence."""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker, Observation
from agent.evaluate.anomaly.windows import SortedWindow

START = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
METHODS = ["auto", "mad", "ewma", "seasonal", "cusum", "evt", "extremes"]


def condition(**overrides: Any) -> AnomalyCondition:
    return AnomalyCondition.model_validate({"type": "anomaly", "warmup": 100, **overrides})


def feed(tracker: AnomalyTracker, values: Iterable[float], offset: int = 0) -> list[Observation]:
    return [tracker.observe(START + (offset + i) * STEP, v) for i, v in enumerate(values)]


def noise(n: int, *, level: float = 100.0, sd: float = 2.0, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(level, sd) for _ in range(n)]


def daily(n: int, *, seed: int = 2) -> list[float]:
    """A 5-minute series with a strong daily cycle (288 points a day) and mild noise."""
    rng = random.Random(seed)
    return [100 + 50 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 2) for i in range(n)]


# --- detection ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", "mad", "ewma", "seasonal"])
def test_spike_is_detected(method: str) -> None:
    values = daily(3 * 288) if method == "seasonal" else noise(800)
    at = len(values) - 10
    values[at] += 80
    observations = feed(AnomalyTracker(condition(method=method)), values)
    assert observations[at].anomalous and observations[at].breached
    assert observations[at].score > 1 and observations[at].value > observations[at].upper
    assert observations[at].lower < observations[at].expected < observations[at].upper


@pytest.mark.parametrize("method", ["auto", "mad", "ewma", "cusum"])
def test_level_shift_is_detected_within_a_few_points(method: str) -> None:
    values = noise(600) + noise(60, level=110, seed=3)
    observations = feed(AnomalyTracker(condition(method=method)), values)
    assert not any(o.breached for o in observations[200:600])
    assert any(o.breached for o in observations[600:610])


def test_cusum_ignores_a_lone_spike_but_sums_a_small_shift() -> None:
    values = noise(600)
    values[500] += 80
    observations = feed(AnomalyTracker(condition(method="cusum")), values)
    assert not observations[500].anomalous
    # A shift of 2 standard deviations is inside the mad band yet CUSUM catches it.
    shifted = feed(AnomalyTracker(condition(method="cusum")), noise(600) + noise(60, level=104))
    assert any(o.breached for o in shifted[600:640])


@pytest.mark.parametrize("method", ["auto", "seasonal"])
def test_seasonal_pattern_is_not_flagged_but_a_broken_day_is(method: str) -> None:
    values = daily(8 * 288)
    tracker = AnomalyTracker(condition(method=method, season="1d" if method == "auto" else None))
    observations = feed(tracker, values)
    assert sum(o.anomalous for o in observations[3 * 288 :]) <= 2
    # The next day stays at the daily mean: every value is in range, the timing is not.
    flat = feed(tracker, noise(288, level=100, sd=2, seed=9), offset=len(values))
    assert any(o.breached for o in flat[:100])


def test_auto_finds_the_daily_cycle_by_itself() -> None:
    values = daily(8 * 288)
    tracker = AnomalyTracker(condition())
    feed(tracker, values)
    flat = feed(tracker, noise(288, level=100, sd=2, seed=9), offset=len(values))
    assert any(o.breached for o in flat[:100])


@pytest.mark.parametrize("method", METHODS)
def test_warm_up_is_silent(method: str) -> None:
    values = noise(200)
    values[60] += 500
    values[61] -= 500
    observations = feed(AnomalyTracker(condition(method=method, warmup=100)), values)
    assert not any(o.anomalous or o.breached for o in observations[:100])


@pytest.mark.parametrize("method", ["auto", "mad", "ewma", "seasonal"])
def test_ongoing_anomaly_does_not_become_normal_fast(method: str) -> None:
    base = daily(3 * 288) if method == "seasonal" else noise(800)
    shift = [
        v + 60
        for v in (
            daily(4 * 288)[3 * 288 : 3 * 288 + 36] if method == "seasonal" else noise(36, seed=5)
        )
    ]
    observations = feed(AnomalyTracker(condition(method=method)), base + shift)
    # Three hours of a sustained jump are all still anomalous.
    assert all(o.anomalous for o in observations[len(base) :])


def test_auto_habituates_to_recurring_spikes() -> None:
    """A spike of a size seen again and again is no longer news."""
    values = noise(3000)
    for i in range(200, 3000, 100):
        values[i] += 60
    observations = feed(AnomalyTracker(condition()), values)
    late = [observations[i].anomalous for i in range(2000, 3000, 100)]
    assert not any(late)
    assert observations[200 + 100 * 2].anomalous or observations[200 + 100 * 3].anomalous


# --- filters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "up", "down"),
    [("both", True, True), ("above", True, False), ("below", False, True)],
)
def test_direction_filter(direction: str, up: bool, down: bool) -> None:
    values = noise(700)
    values[600] += 60
    values[650] -= 60
    observations = feed(AnomalyTracker(condition(method="mad", direction=direction)), values)
    assert observations[600].anomalous is up
    assert observations[650].anomalous is down


def test_minimum_deviations() -> None:
    values = noise(700, level=1.0, sd=0.001)
    values[600] += 0.05
    assert feed(AnomalyTracker(condition(method="mad")), values)[600].anomalous
    absolute = feed(AnomalyTracker(condition(method="mad", min_deviation=0.1)), values)
    assert not absolute[600].anomalous
    relative = feed(AnomalyTracker(condition(method="mad", min_relative_deviation=0.1)), values)
    assert not relative[600].anomalous
    assert feed(AnomalyTracker(condition(method="mad", min_relative_deviation=0.01)), values)[
        600
    ].anomalous


# --- trigger and recovery windows --------------------------------------------------------


def test_trigger_fraction_needs_enough_anomalous_points_in_the_window() -> None:
    spec = condition(method="mad", trigger_window="15m", trigger_fraction=0.6)
    values = noise(700)
    values[600] += 60  # one of three points in 15 minutes: not enough
    values[650] += 60
    values[651] += 60  # two of three: enough
    observations = feed(AnomalyTracker(spec), values)
    assert observations[600].anomalous and not observations[600].breached
    assert observations[651].breached and not observations[650].breached


def test_recovery_window_must_be_free_of_anomalies() -> None:
    spec = condition(method="mad", recovery_window="1h")
    values = noise(700)
    values[600] += 60
    values[620] += 60
    observations = feed(AnomalyTracker(spec), values)
    assert observations[599].recovered
    assert observations[600].breached and not observations[600].recovered
    # 1 hour = 12 points of 5 minutes: the spike leaves the window at point 612.
    assert not any(o.recovered for o in observations[600:612])
    assert observations[612].recovered
    assert not observations[620].recovered and not any(o.recovered for o in observations[620:632])
    assert observations[632].recovered


def test_recovery_fraction_tolerates_a_few_anomalies() -> None:
    spec = condition(method="mad", recovery_window="1h", recovery_fraction=0.1)
    values = noise(700)
    values[600] += 60
    values[601] += 60
    observations = feed(AnomalyTracker(spec), values)
    # 1 hour holds 12 points: two anomalous ones are too many, one (after 612) is few enough.
    assert not any(o.recovered for o in observations[600:612])
    assert observations[612].recovered
    strict = feed(AnomalyTracker(spec.model_copy(update={"recovery_fraction": 0.0})), values)
    assert not strict[612].recovered and strict[613].recovered


def test_out_of_order_and_non_finite_points_are_not_absorbed() -> None:
    tracker = AnomalyTracker(condition(method="mad"))
    feed(tracker, noise(300))
    state = json.dumps(tracker.to_state())
    late = tracker.observe(START, 1e9)
    nan = tracker.observe(START + 301 * STEP, float("nan"))
    assert not late.anomalous and not nan.anomalous
    assert json.dumps(tracker.to_state()) == state


# --- persistence -------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_state_round_trip_gives_identical_outputs(method: str) -> None:
    spec = condition(method=method, trigger_window="10m", recovery_window="1h")
    values = daily(4 * 288)
    values[700] += 90
    values[900:960] = [v - 70 for v in values[900:960]]
    original = AnomalyTracker(spec)
    feed(original, values[:800])
    state = json.loads(json.dumps(original.to_state(), allow_nan=False))
    restored = AnomalyTracker.from_state(spec, state)
    assert feed(restored, values[800:], offset=800) == feed(original, values[800:], offset=800)


def test_state_of_another_method_starts_afresh() -> None:
    tracker = AnomalyTracker(condition(method="mad"))
    feed(tracker, noise(300))
    fresh = AnomalyTracker.from_state(condition(method="ewma"), tracker.to_state())
    assert fresh.to_state()["seen"] == 0


# --- building blocks ---------------------------------------------------------------------


def test_sorted_window_mad_matches_brute_force() -> None:
    rng = random.Random(4)
    window = SortedWindow(101)
    kept: list[float] = []
    for _ in range(400):
        value = rng.choice([rng.gauss(0, 1), float(rng.randint(0, 3))])
        window.add(value)
        kept = [*kept, value][-101:]
        median = statistics.median(kept)
        assert window.median() == pytest.approx(median)
        assert window.mad() == pytest.approx(statistics.median(abs(v - median) for v in kept))


def test_condition_parses_durations_and_rejects_unknown_keys() -> None:
    spec = condition(trigger_window="15m", recovery_window="2h", season="1d")
    assert spec.trigger_window == timedelta(minutes=15)
    assert spec.season == timedelta(days=1)
    with pytest.raises(ValidationError):
        condition(threshold=3)
    with pytest.raises(ValidationError):
        condition(trigger_window=900)
    with pytest.raises(ValidationError):
        condition(sensitivity=0)


def test_auto_expects_a_spike_at_the_same_time_of_day_as_before() -> None:
    """A daily spike (with a few minutes of timing jitter) is no longer news on later days."""
    values = noise(288 * 6)
    spikes = [day * 288 + 150 + day % 3 - 1 for day in range(1, 6)]
    # Every spike has the same height: a later spike added to noise could overshoot the
    # first by more than SEASONAL_REACH allows (true for ~1 noise seed in 7), which made the
    # outcome hinge on the particular draw rather than on the behaviour under test.
    for i in spikes:
        values[i] = 180.0
    observations = feed(AnomalyTracker(condition(method="auto")), values)
    assert observations[spikes[0]].anomalous
    assert not any(observations[i].anomalous for i in spikes[1:])


def test_auto_holds_an_ongoing_level_shift_but_forgets_it_eventually() -> None:
    """The level band learns a shift, yet judges it by the pre-shift band for a while."""
    observations = feed(
        AnomalyTracker(condition(method="auto", history=400)), noise(400) + noise(300, level=130)
    )
    assert all(o.anomalous for o in observations[400 + 12 : 400 + 12 + 15])
    assert not any(o.anomalous for o in observations[-50:])
