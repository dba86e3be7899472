"""Seasonal profile (the same phase in recent seasons) and the seasonal-median detector."""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any

from agent.evaluate.anomaly.base import (
    Detector,
    Estimate,
    band_score,
    clip_to_band,
    epoch_seconds,
    robust_scale,
)
from agent.evaluate.anomaly.condition import AnomalyCondition
from agent.evaluate.anomaly.windows import SortedWindow

#: seasons remembered per phase bin; their median is the seasonal expectation.
SEASONS_KEPT = 5
#: phase bins per season at most (one per 5 minutes of a day).
MAX_BINS = 288


class SeasonalProfile:
    """Median of the same phase in the last few seasons, e.g. the same time of day.

    The phase bin width is the series' first sampling gap (at least season / 288), so a bin
    holds about one point per season; anomalous points go in clipped.
    """

    def __init__(self, season_seconds: float) -> None:
        self.season = season_seconds
        self.bin_seconds: float | None = None
        self.previous: float | None = None
        self.bins: dict[int, deque[float]] = {}

    def _bin(self, at: datetime) -> int | None:
        epoch = epoch_seconds(at)
        if self.bin_seconds is None:
            if self.previous is None or epoch <= self.previous:
                self.previous = epoch
                return None
            bins = min(MAX_BINS, max(1, round(self.season / (epoch - self.previous))))
            self.bin_seconds = self.season / bins
        return int((epoch % self.season) // self.bin_seconds)

    def expected(self, at: datetime) -> tuple[int | None, float | None]:
        index = self._bin(at)
        if index is None:
            return None, None
        history = self.bins.get(index)
        if not history:
            return index, None
        ordered = sorted(history)
        n = len(ordered)
        return index, (ordered[(n - 1) // 2] + ordered[n // 2]) / 2.0

    def seen_near(
        self, index: int, value: float, jitter: int, centre: float, margin: float
    ) -> bool:
        """Did a remembered season reach ``value`` within ``jitter`` bins of this phase?

        "Reach" allows ``margin`` of the remembered extreme's distance from ``centre``.
        """
        assert self.bin_seconds is not None
        bins = round(self.season / self.bin_seconds)
        low = high = None
        for offset in range(-jitter, jitter + 1):
            history = self.bins.get((index + offset) % bins)
            if history:
                low = min(history) if low is None else min(low, *history)
                high = max(history) if high is None else max(high, *history)
        if low is None or high is None:
            return False
        low -= margin * max(centre - low, 0.0)
        high += margin * max(high - centre, 0.0)
        return low <= value <= high

    def absorb(self, index: int | None, value: float) -> None:
        if index is None:
            return
        self.bins.setdefault(index, deque(maxlen=SEASONS_KEPT)).append(value)

    def to_state(self) -> dict[str, Any]:
        return {
            "bin_seconds": self.bin_seconds,
            "previous": self.previous,
            "bins": {str(k): list(v) for k, v in self.bins.items()},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.bin_seconds = state["bin_seconds"]
        self.previous = state["previous"]
        self.bins = {
            int(k): deque((float(x) for x in v), maxlen=SEASONS_KEPT)
            for k, v in state["bins"].items()
        }


class SeasonalDetector(Detector):
    """Seasonal median ± width × robust spread of the recent residuals."""

    kind = "seasonal"
    min_residuals = 20

    def __init__(self, condition: AnomalyCondition) -> None:
        super().__init__(condition)
        season = condition.season.total_seconds() if condition.season else 86400.0
        self.profile = SeasonalProfile(season)
        self.residuals = SortedWindow(condition.history)

    def step(self, at: datetime, value: float) -> Estimate | None:
        index, seasonal = self.profile.expected(at)
        if seasonal is None:
            self.profile.absorb(index, value)
            return None
        residual = value - seasonal
        if len(self.residuals) < self.min_residuals:
            self.residuals.add(residual)
            self.profile.absorb(index, value)
            return None
        offset = self.residuals.median()
        half = self.width * robust_scale(self.residuals, offset)
        expected = seasonal + offset
        estimate = Estimate(
            expected,
            expected - half,
            expected + half,
            band_score(value, expected, expected - half, expected + half),
        )
        clipped = clip_to_band(value, estimate)
        self.residuals.add(clipped - seasonal)
        self.profile.absorb(index, clipped)
        return estimate

    def to_state(self) -> dict[str, Any]:
        return {"profile": self.profile.to_state(), "residuals": self.residuals.values()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.profile.load_state(state["profile"])
        self.residuals = SortedWindow(self.residuals.size, state["residuals"])
