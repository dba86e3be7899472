"""``extremes``: a point is news against the series' own extremes, a run against all but a few.

Five statistics of the series are judged, each against the last ``history`` values of
itself: the value, its jump from the median of the previous points, the mean of the last
few points (level shifts, denser spikes), the median step between those points (volatility:
noise that grows, or a series that stops moving, changes no level) and, when the series has
a daily cycle its profile explains, the deviation from the same time in recent days. Each
statistic has two bands:

* the *point* band reaches one noise IQR beyond the most extreme value in the window: a
  single point is anomalous only when the series has not done that in ``history`` points;
* the *run* band reaches beyond all but the ``TOLERATED`` most extreme values, by a
  margin of their distance from the median (and at least one noise IQR): it counts only
  when another of the last ``RUN_POINTS`` points was past it on the same side.

Noise that wanders near its extremes now and then stays quiet (one point past the run band
is not a run), while a sustained change needs only beat all but a few of the values seen.
Statistics join their windows as they came (what recurs stops being news), but the recent
median and mean that the jump and the level are taken from hold each value clipped to the
band that spoke for it, so a spike is reported once, not again while it is in them (the
median step is one a lone spike cannot move). There is one knob: ``sensitivity`` divides the
margin and the noise floor.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any

from agent.evaluate.anomaly.base import Detector, Estimate, band_score, iqr
from agent.evaluate.anomaly.condition import AnomalyCondition
from agent.evaluate.anomaly.seasonal import SeasonalProfile
from agent.evaluate.anomaly.windows import SortedWindow

#: the run band passes all but this many of the most extreme remembered values...
TOLERATED = 6
#: ...by this fraction of their distance from the median, at sensitivity 1.
MARGIN = 0.25
#: a point past the run band counts when one more of the last RUN_POINTS points was too.
RUN_POINTS = 3
#: points in the median the jump is measured from, and in the mean judged as the level.
LOCAL_POINTS = 10
LEVEL_POINTS = 12
#: what the level and volatility bands are for (the annotation ``anomaly_statistic``).
LEVEL = f"mean of the last {LEVEL_POINTS} points"
VOLATILITY = f"median step of the last {LEVEL_POINTS} points"
#: a band is judged once its window holds this many values.
MIN_VALUES = 50
#: the noise IQR and the seasonal decision are refreshed every this many points.
REFRESH_EVERY = 16
#: the seasonal residual is judged when its IQR is below this fraction of the value's.
SEASONAL_FIT = 0.5


class RunBand:
    """The point and run bands of one statistic, and which side its last points were on."""

    __slots__ = ("margin", "sides", "window")

    def __init__(self, history: int, margin: float) -> None:
        self.window = SortedWindow(history)
        self.margin = margin
        #: per recent point: +1 above the run band, -1 below it, 0 inside.
        self.sides: deque[int] = deque(maxlen=RUN_POINTS - 1)

    def observe(self, x: float, floor: float) -> tuple[float, float, float] | None:
        """The median and the band ``x`` is judged by (``None`` while too few values)."""
        ordered = self.window._sorted  # read-only access on the hot path
        n = len(ordered)
        band: tuple[float, float, float] | None = None
        if n >= MIN_VALUES:
            middle = ordered[n // 2]
            k = min(TOLERATED, n // 10)
            high, low = ordered[n - 1 - k], ordered[k]
            # (Conditional expressions: builtin max/min cost more on this hot path.)
            reach = self.margin * (high - middle)
            upper = high + (reach if reach > floor else floor)
            reach = self.margin * (middle - low)
            lower = low - (reach if reach > floor else floor)
            side = 1 if x > upper else -1 if x < lower else 0
            if side == 0 or side not in self.sides:
                # Not a run: the point band, beyond everything the window holds.
                edge = ordered[-1] + floor
                upper = edge if edge > upper else upper
                edge = ordered[0] - floor
                lower = edge if edge < lower else lower
            self.sides.append(side)
            band = (middle, lower, upper)
        self.window.add(x)
        return band

    def to_state(self) -> dict[str, Any]:
        return {"window": self.window.values(), "sides": list(self.sides)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.window = SortedWindow(self.window.size, state["window"])
        self.sides = deque((int(s) for s in state["sides"]), maxlen=RUN_POINTS - 1)


class ExtremesDetector(Detector):
    """Point and run bands on the value, the jump, the short mean, the median step and the
    seasonal residual.

    The band furthest exceeded speaks for the point.
    """

    kind = "extremes"

    def __init__(self, condition: AnomalyCondition) -> None:
        super().__init__(condition)
        self.sensitivity = condition.sensitivity
        margin = MARGIN / condition.sensitivity
        self.value = RunBand(condition.history, margin)
        self.jump = RunBand(condition.history, margin)
        self.level = RunBand(condition.history, margin)
        self.residual = RunBand(condition.history, margin)
        self.volatility = RunBand(condition.history, margin)
        self.local: deque[float] = deque(maxlen=LOCAL_POINTS)
        self.recent: deque[float] = deque(maxlen=LEVEL_POINTS)
        #: the size of each step between the recent points.
        self.moves: deque[float] = deque(maxlen=LEVEL_POINTS - 1)
        season = condition.season.total_seconds() if condition.season else 86400.0
        self.profile = SeasonalProfile(season)
        self.steps = 0
        self.noise = 0.0
        self.seasonal = False

    def _refresh(self) -> None:
        jumps = self.jump.window
        self.noise = iqr(jumps) if len(jumps) else 0.0
        residuals, values = self.residual.window, self.value.window
        self.seasonal = len(residuals) >= MIN_VALUES and iqr(residuals) < SEASONAL_FIT * iqr(values)

    def step(self, at: datetime, value: float) -> Estimate | None:
        if self.steps % REFRESH_EVERY == 0:
            self._refresh()
        self.steps += 1
        floor = self.noise / self.sensitivity
        best: Estimate | None = None
        strongest = -1.0
        local = self.local
        if local:
            ordered = sorted(local)
            n = len(ordered)
            base = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2.0
            best, strongest = _stronger(
                best, strongest, base, value - base, self.jump.observe(value - base, floor)
            )
        best, strongest = _stronger(best, strongest, 0.0, value, self.value.observe(value, floor))
        index, seasonal = self.profile.expected(at)
        if seasonal is not None:
            band = self.residual.observe(value - seasonal, floor)
            if self.seasonal:
                best, strongest = _stronger(best, strongest, seasonal, value - seasonal, band)
        self.profile.absorb(index, value)
        # The recent median and mean take the value clipped to the band that spoke for it:
        # an outlier counts once, not again for each of the next few points.
        clipped = value if best is None else min(max(value, best.lower), best.upper)
        local.append(clipped)
        recent = self.recent
        if recent:
            move = clipped - recent[-1]
            self.moves.append(move if move >= 0.0 else -move)
        recent.append(clipped)
        if len(recent) == LEVEL_POINTS:
            # The mean of n points is √n times less noisy than one point.
            level = sum(recent) / LEVEL_POINTS
            band = self.level.observe(level, floor / LEVEL_POINTS**0.5)
            best, strongest = _stronger(best, strongest, 0.0, level, band, LEVEL)
            # The median step: most of the recent points moving more (or less) than the
            # series ever did is a change of volatility, which no level or jump shows.
            moves = sorted(self.moves)
            typical = moves[len(moves) // 2]
            band = self.volatility.observe(typical, floor)
            best, strongest = _stronger(best, strongest, 0.0, typical, band, VOLATILITY)
        return best

    def _bands(self) -> tuple[tuple[str, RunBand], ...]:
        return (
            ("value", self.value),
            ("jump", self.jump),
            ("level", self.level),
            ("residual", self.residual),
            ("volatility", self.volatility),
        )

    def to_state(self) -> dict[str, Any]:
        return {
            **{key: band.to_state() for key, band in self._bands()},
            "local": list(self.local),
            "recent": list(self.recent),
            "moves": list(self.moves),
            "profile": self.profile.to_state(),
            "steps": self.steps,
            "noise": self.noise,
            "seasonal": self.seasonal,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        for key, band in self._bands():
            if key in state:  # (a state saved before volatility was judged starts it afresh)
                band.load_state(state[key])
        self.local = deque((float(x) for x in state["local"]), maxlen=LOCAL_POINTS)
        self.recent = deque((float(x) for x in state["recent"]), maxlen=LEVEL_POINTS)
        self.moves = deque((float(x) for x in state.get("moves", ())), maxlen=LEVEL_POINTS - 1)
        self.profile.load_state(state["profile"])
        self.steps = int(state["steps"])
        self.noise = float(state["noise"])
        self.seasonal = bool(state["seasonal"])


def _stronger(
    best: Estimate | None,
    strongest: float,
    offset: float,
    x: float,
    band: tuple[float, float, float] | None,
    statistic: str | None = None,
) -> tuple[Estimate | None, float]:
    """The band furthest exceeded so far: ``best``, or ``x``'s band if it is exceeded more.

    ``statistic`` names what ``x`` is when the band is not for the point's value.
    """
    if band is None:
        return best, strongest
    middle, lower, upper = band
    score = band_score(x, middle, lower, upper)
    if abs(score) > strongest:
        if statistic is None:
            estimate = Estimate(offset + middle, offset + lower, offset + upper, score)
        else:
            estimate = Estimate(middle, lower, upper, score, statistic, x)
        return estimate, abs(score)
    return best, strongest
