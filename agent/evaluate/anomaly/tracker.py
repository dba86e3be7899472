"""One alert instance's anomaly state: detector, warm-up and trigger/recovery windows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.evaluate.anomaly.base import Detector, Estimate
from agent.evaluate.anomaly.condition import AnomalyCondition
from agent.evaluate.anomaly.detectors import build_detector
from agent.evaluate.anomaly.windows import FlagWindow

STATE_VERSION = 1


@dataclass(frozen=True)
class Observation:
    """What one point looked like to the tracker.

    ``score`` is the signed deviation in band half-widths (beyond ±1 is outside the band).
    ``breached`` is the rule's condition (fire), ``recovered`` its clear condition; they are
    never both true.
    """

    at: datetime
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    anomalous: bool
    breached: bool
    recovered: bool
    #: what the band is for: the value, or a statistic of the last few points...
    statistic: str
    #: ...and that statistic's value (the point's value when it is the value).
    observed: float


class AnomalyTracker:
    """Feeds points to the condition's detector and judges the trigger/recovery windows.

    Points must arrive in time order: a point not later than the previous one, or not a
    finite number, is not absorbed and repeats the previous verdict.
    """

    def __init__(self, condition: AnomalyCondition) -> None:
        self.condition = condition
        self._detector: Detector = build_detector(condition)
        self._seen = 0
        self._last: Observation | None = None
        self._trigger = FlagWindow(condition.trigger_window)
        self._recovery = FlagWindow(condition.recovery_window)

    @property
    def last(self) -> Observation | None:
        """The latest point absorbed, with the band it was judged against."""
        return self._last

    def observe(self, at: datetime, value: float) -> Observation:
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        last = self._last
        if last is not None and (at <= last.at or not math.isfinite(value)):
            return Observation(
                at, value, last.expected, last.lower, last.upper, 0.0, False,
                last.breached, last.recovered, "value", value,
            )  # fmt: skip
        if not math.isfinite(value):
            return Observation(
                at, value, value, value, value, 0.0, False, False, True, "value", value
            )
        estimate = self._detector.step(at, value)
        self._seen += 1
        anomalous = estimate is not None and self._seen > self.condition.warmup
        anomalous = anomalous and self._counts(value, estimate)  # type: ignore[arg-type]
        self._trigger.add(at, anomalous)
        self._recovery.add(at, anomalous)
        flagged = self._trigger.flagged
        # The tiny tolerance keeps e.g. 0.3 × 10 from needing 4 points by rounding error.
        breached = flagged > 0 and flagged >= self.condition.trigger_fraction * len(
            self._trigger
        ) * (1.0 - 1e-9)
        recovered = not breached and (
            self._recovery.flagged <= self.condition.recovery_fraction * len(self._recovery)
        )
        if estimate is None:
            estimate = Estimate(value, value, value, 0.0)
        observation = Observation(
            at=at,
            value=value,
            expected=estimate.expected,
            lower=estimate.lower,
            upper=estimate.upper,
            score=estimate.score,
            anomalous=anomalous,
            breached=breached,
            recovered=recovered,
            statistic=estimate.statistic,
            observed=value if estimate.observed is None else estimate.observed,
        )
        self._last = observation
        return observation

    def _counts(self, value: float, estimate: Estimate) -> bool:
        """Outside the band, on a watched side, and by more than the minimum deviations."""
        condition = self.condition
        if estimate.score > 1.0:
            if condition.direction == "below":
                return False
        elif estimate.score < -1.0:
            if condition.direction == "above":
                return False
        else:
            return False
        # The band's own quantity: the value, or the statistic of recent points it is for.
        observed = value if estimate.observed is None else estimate.observed
        deviation = abs(observed - estimate.expected)
        if deviation < condition.min_deviation:
            return False
        return deviation >= condition.min_relative_deviation * abs(estimate.expected)

    # --- persistence ----------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON-compatible state; :meth:`from_state` continues exactly where this left off."""
        last = self._last
        return {
            "version": STATE_VERSION,
            "method": self.condition.method,
            "seen": self._seen,
            "last": None
            if last is None
            else {
                "at": last.at.isoformat(),
                "value": last.value,
                "expected": last.expected,
                "lower": last.lower,
                "upper": last.upper,
                "score": last.score,
                "anomalous": last.anomalous,
                "breached": last.breached,
                "recovered": last.recovered,
                "statistic": last.statistic,
                "observed": last.observed,
            },
            "trigger": self._trigger.to_state(),
            "recovery": self._recovery.to_state(),
            "detector": self._detector.to_state(),
        }

    @classmethod
    def from_state(cls, condition: AnomalyCondition, state: dict[str, Any]) -> AnomalyTracker:
        """Restore a tracker; a state of another version or method starts afresh."""
        tracker = cls(condition)
        if state.get("version") != STATE_VERSION or state.get("method") != condition.method:
            return tracker
        tracker._detector.load_state(state["detector"])
        tracker._seen = int(state["seen"])
        tracker._trigger = FlagWindow.from_state(condition.trigger_window, state["trigger"])
        tracker._recovery = FlagWindow.from_state(condition.recovery_window, state["recovery"])
        last = state.get("last")
        if last is not None:
            # (A state saved before observations named their statistic judged the value.)
            last = {"statistic": "value", "observed": last["value"], **last}
            tracker._last = Observation(**{**last, "at": datetime.fromisoformat(last["at"])})
        return tracker
