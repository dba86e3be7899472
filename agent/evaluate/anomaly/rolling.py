"""Rolling baselines without seasons: median ± MAD, EWMA mean ± deviation, and CUSUM."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from agent.evaluate.anomaly.base import (
    Detector,
    Estimate,
    band_score,
    clip_to_band,
    robust_scale,
    scale_floor,
)
from agent.evaluate.anomaly.condition import AnomalyCondition
from agent.evaluate.anomaly.windows import SortedWindow

#: CUSUM slack (per point, in standard deviations) and alarm level at sensitivity 1.
CUSUM_DRIFT = 1.0
CUSUM_LEVEL = 8.0
#: standardised deviations are clipped here before CUSUM adds them, so one spike can't alarm.
CUSUM_CLIP = 6.0


# --- rolling median / MAD ------------------------------------------------------------------


class MadDetector(Detector):
    """Median ± width × 1.4826 MAD of the last ``history`` points."""

    kind = "mad"
    min_points = 5

    def __init__(self, condition: AnomalyCondition) -> None:
        super().__init__(condition)
        self.window = SortedWindow(condition.history)

    def estimate(self) -> Estimate | None:
        if len(self.window) < self.min_points:
            return None
        median = self.window.median()
        half = self.width * robust_scale(self.window, median)
        return Estimate(median, median - half, median + half, 0.0)

    def step(self, at: datetime, value: float) -> Estimate | None:
        band = self.estimate()
        if band is None:
            self.window.add(value)
            return None
        score = band_score(value, band.expected, band.lower, band.upper)
        self.window.add(clip_to_band(value, band))
        return Estimate(band.expected, band.lower, band.upper, score)

    def to_state(self) -> dict[str, Any]:
        return {"window": self.window.values()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.window = SortedWindow(self.window.size, state["window"])


# --- EWMA mean and variance ----------------------------------------------------------------


class EwmaDetector(Detector):
    """Exponentially weighted mean ± width × weighted standard deviation.

    The span is a twentieth of ``history`` (100 points by default): recent enough to follow
    drifts, long enough to average noise.
    """

    kind = "ewma"
    min_points = 10

    def __init__(self, condition: AnomalyCondition) -> None:
        super().__init__(condition)
        self.alpha = 2.0 / (max(10, condition.history // 20) + 1.0)
        self.count = 0
        self.mean = 0.0
        self.var = 0.0

    def step(self, at: datetime, value: float) -> Estimate | None:
        estimate: Estimate | None = None
        absorbed = value
        outside = False
        if self.count >= self.min_points:
            half = self.width * max(math.sqrt(self.var), scale_floor(self.mean))
            lower, upper = self.mean - half, self.mean + half
            estimate = Estimate(self.mean, lower, upper, band_score(value, self.mean, lower, upper))
            absorbed = clip_to_band(value, estimate)
            outside = absorbed != value
        if self.count == 0:
            self.mean = absorbed
        else:
            # West's incremental form: the variance update uses the pre-update deviation.
            delta = absorbed - self.mean
            self.mean += self.alpha * delta
            # An anomalous point leaves the variance alone: clipped to the band edge it would
            # still widen the band by a fifth per point and normalise the anomaly in minutes.
            if not outside:
                self.var = (1.0 - self.alpha) * (self.var + self.alpha * delta * delta)
        self.count += 1
        return estimate

    def to_state(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean, "var": self.var}

    def load_state(self, state: dict[str, Any]) -> None:
        self.count = int(state["count"])
        self.mean = float(state["mean"])
        self.var = float(state["var"])


# --- CUSUM ---------------------------------------------------------------------------------


class CusumDetector(Detector):
    """Two-sided CUSUM of deviations from a rolling median, standardised by its MAD.

    Sums are capped at twice the alarm level, so they fall back below it soon after a
    shift ends or has been absorbed by the baseline.
    """

    kind = "cusum"

    def __init__(self, condition: AnomalyCondition) -> None:
        super().__init__(condition)
        self.baseline = MadDetector(condition)
        self.level = CUSUM_LEVEL / condition.sensitivity
        self.high = 0.0
        self.low = 0.0

    def step(self, at: datetime, value: float) -> Estimate | None:
        band = self.baseline.estimate()
        if band is None:
            self.baseline.window.add(value)
            return None
        median = band.expected
        scale = (band.upper - median) / self.baseline.width
        z = max(-CUSUM_CLIP, min(CUSUM_CLIP, (value - median) / scale))
        # The value at which this point alone would push either sum over the level.
        upper = median + (self.level - self.high + CUSUM_DRIFT) * scale
        lower = median - (self.level - self.low + CUSUM_DRIFT) * scale
        self.high = min(2.0 * self.level, max(0.0, self.high + z - CUSUM_DRIFT))
        self.low = min(2.0 * self.level, max(0.0, self.low - z - CUSUM_DRIFT))
        score = self.high / self.level if self.high >= self.low else -self.low / self.level
        self.baseline.window.add(clip_to_band(value, band))
        return Estimate(median, min(lower, median), max(upper, median), score)

    def to_state(self) -> dict[str, Any]:
        return {"baseline": self.baseline.to_state(), "high": self.high, "low": self.low}

    def load_state(self, state: dict[str, Any]) -> None:
        self.baseline.load_state(state["baseline"])
        self.high = float(state["high"])
        self.low = float(state["low"])
