"""``evt``: extreme-value (peaks-over-threshold) bands on three deviations of a series."""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any

from agent.evaluate.anomaly.base import Detector, Estimate, band_score, iqr
from agent.evaluate.anomaly.condition import AnomalyCondition
from agent.evaluate.anomaly.seasonal import SeasonalProfile
from agent.evaluate.anomaly.tail import tail_bounds
from agent.evaluate.anomaly.windows import SortedWindow

#: evt: points in the rolling median the jump is measured from.
LOCAL_POINTS = 10
#: evt: points in the rolling median judged for sustained shifts (a spike shorter than
#: half of it does not move it, so the alert ends with the spike).
LEVEL_POINTS = 24
#: evt: per-point probability of a deviation beyond the band's tail fit, at sensitivity 1.
BASE_RISK = 1e-3
#: evt: bands and the noise floor are refitted every this many points (or sooner, when a
#: deviation leaves the band), as a window of thousands changes little from point to point.
REFIT_EVERY = 16
#: evt: a seasonal residual joins its band's history this many points late, so a broken
#: cycle that drifts away slowly is still judged against the days before it began. (Not
#: the level's: a random walk reaches new ground within any such lag.)
SEASONAL_LAG = 48
#: evt: the seasonal residual is judged when its IQR is below this fraction of the level's.
SEASONAL_FIT = 0.5


class TailBand:
    """Extreme-value band of one deviation series.

    Deviations are remembered as they came, anomalous or not (habituation: what recurs
    stops being news), but only ``lag`` points later.
    """

    def __init__(self, history: int, risk: float, lag: int = 0) -> None:
        self.window = SortedWindow(history)
        self.risk = risk
        self.lag = lag
        self.bounds: tuple[float, float] | None = None
        self.age = REFIT_EVERY
        #: how far past the largest deviation seen the band reaches at least.
        self.floor = 0.0
        #: the latest deviations, not yet in the window.
        self.pending: deque[float] = deque()

    def judge(self, deviation: float, floor: float) -> tuple[float, float] | None:
        bounds = self.bounds
        if bounds is None or self.age >= REFIT_EVERY or not bounds[0] < deviation < bounds[1]:
            self.bounds = bounds = tail_bounds(self.window, self.risk, floor)
            self.age = 0
        self.age += 1
        return bounds

    def observe(self, deviation: float) -> tuple[float, float] | None:
        """The bounds ``deviation`` is judged by; then it joins the history (``lag`` late)."""
        bounds = self.judge(deviation, self.floor)
        if self.lag:
            pending = self.pending
            pending.append(deviation)
            if len(pending) > self.lag:
                self.window.add(pending.popleft())
        else:
            self.window.add(deviation)
        return bounds

    def to_state(self) -> dict[str, Any]:
        return {
            "window": self.window.values(),
            "pending": list(self.pending),
            "bounds": None if self.bounds is None else list(self.bounds),
            "age": self.age,
            "floor": self.floor,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.window = SortedWindow(self.window.size, state["window"])
        self.pending = deque(float(x) for x in state["pending"])
        bounds = state["bounds"]
        self.bounds = None if bounds is None else (float(bounds[0]), float(bounds[1]))
        self.age = int(state["age"])
        self.floor = float(state["floor"])


class EvtDetector(Detector):
    """Extreme-value bands on the jump, on the 24-point median and on the seasonal residual.

    Each band is where a deviation becomes rarer than ``risk`` per point by a peaks-over-
    threshold fit of its own history, and never inside the largest deviation of that
    history plus one noise IQR (the IQR of the jumps): what the series did in the last
    ``history`` points is not news.
    """

    kind = "evt"

    def __init__(self, condition: AnomalyCondition) -> None:
        super().__init__(condition)
        self.sensitivity = condition.sensitivity
        risk = BASE_RISK * condition.sensitivity
        self.jump = TailBand(condition.history, risk)
        self.level = TailBand(condition.history, risk)
        self.residual = TailBand(condition.history, risk, SEASONAL_LAG)
        self.recent: deque[float] = deque(maxlen=LEVEL_POINTS)
        self.local: deque[float] = deque(maxlen=LOCAL_POINTS)
        season = condition.season.total_seconds() if condition.season else 86400.0
        self.profile = SeasonalProfile(season)
        self.steps = 0
        self.seasonal = False

    def _refloor(self) -> None:
        ordered = self.jump.window._sorted
        n = len(ordered)
        noise = ordered[(3 * n) // 4] - ordered[n // 4] if n else 0.0
        # The seasonal band speaks only for a series its daily profile explains well.
        residuals, levels = self.residual.window, self.level.window
        self.seasonal = len(residuals) >= 50 and iqr(residuals) < SEASONAL_FIT * iqr(levels)
        for _, band in self._bands():
            # A series without noise (a square wave) steps by its own spread instead.
            spread = noise or (iqr(band.window) if len(band.window) else 0.0)
            band.floor = spread / self.sensitivity

    def step(self, at: datetime, value: float) -> Estimate | None:
        if self.steps % REFIT_EVERY == 0:
            self._refloor()
        self.steps += 1
        recent = self.recent
        # The band furthest exceeded speaks for the point.
        best: Estimate | None = None
        strongest = -1.0
        if recent:
            local = sorted(self.local)
            n = len(local)
            base = (local[(n - 1) // 2] + local[n // 2]) / 2.0
            bounds = self.jump.observe(value - base)
            if bounds is not None:
                lower, upper = base + bounds[0], base + bounds[1]
                score = band_score(value, base, lower, upper)
                best, strongest = Estimate(base, lower, upper, score), abs(score)
        recent.append(value)
        self.local.append(value)
        ordered = sorted(recent)
        n = len(ordered)
        level = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2.0
        # The level band is in the series' own units: its window holds the levels themselves.
        bounds = self.level.observe(level)
        if bounds is not None:
            middle = self.level.window.median()
            score = band_score(level, middle, bounds[0], bounds[1])
            if abs(score) > strongest:
                best, strongest = Estimate(middle, bounds[0], bounds[1], score), abs(score)
        index, seasonal = self.profile.expected(at)
        if seasonal is not None:
            bounds = self.residual.observe(value - seasonal)
            if bounds is not None and self.seasonal:
                lower, upper = seasonal + bounds[0], seasonal + bounds[1]
                score = band_score(value, seasonal, lower, upper)
                if abs(score) > strongest:
                    best = Estimate(seasonal, lower, upper, score)
        self.profile.absorb(index, value)
        return best

    def _bands(self) -> tuple[tuple[str, TailBand], ...]:
        return (("jump", self.jump), ("level", self.level), ("residual", self.residual))

    def to_state(self) -> dict[str, Any]:
        return {
            **{key: band.to_state() for key, band in self._bands()},
            "recent": list(self.recent),
            "profile": self.profile.to_state(),
            "steps": self.steps,
            "seasonal": self.seasonal,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        for key, band in self._bands():
            band.load_state(state[key])
        self.recent = deque((float(x) for x in state["recent"]), maxlen=LEVEL_POINTS)
        self.local = deque(self.recent, maxlen=LOCAL_POINTS)
        self.profile.load_state(state["profile"])
        self.steps = int(state["steps"])
        self.seasonal = bool(state["seasonal"])
