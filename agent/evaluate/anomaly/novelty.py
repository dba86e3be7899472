"""``auto``: novelty bands on the value, its short mean and its seasonal residual."""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any

from agent.evaluate.anomaly.base import (
    ABSOLUTE_FLOOR,
    RELATIVE_FLOOR,
    Detector,
    Estimate,
    band_score,
    clip_to_band,
    iqr,
)
from agent.evaluate.anomaly.condition import AnomalyCondition
from agent.evaluate.anomaly.seasonal import SeasonalProfile
from agent.evaluate.anomaly.windows import SortedWindow

#: auto: how many of the most extreme remembered values are ignored as one-offs when drawing
#: the novelty band; a value must beat the (k+1)-th most extreme to be new.
TOLERATED_EXTREMES = 6
#: auto: the band reaches this fraction beyond that extreme, at sensitivity 1.
NOVELTY_MARGIN = 0.25
#: auto: points in the short mean that reveals level shifts.
SHORT_MEAN_POINTS = 12
#: auto: a value novel to the value band is still expected when the same time of day in a
#: remembered season (± this many phase bins, for timing jitter) reached it: a daily spike.
SEASONAL_JITTER_BINS = 3
#: auto: an excursion of the short mean is judged against the band from its start for at
#: most this fraction of ``history`` points, though the band itself learns the new values.
EXCURSION_HOLD = 0.1
#: auto: how far past a remembered season's extreme (as a fraction of its distance from the
#: median) a value still counts as reached.
SEASONAL_REACH = 0.05
#: auto uses the seasonal residual when its spread is below this fraction of the value's.
SEASONAL_GAIN = 0.6
SEASONAL_RECHECK = 32
#: auto: the novelty band is never narrower than this many IQR-based standard deviations.
IQR_SIGMAS = 4.0


class NoveltyBand:
    """Is a value beyond what ``history`` has shown more than a few times?

    The band runs from the median out to the (k+1)-th most extreme remembered value on each
    side, plus a margin of that distance. Heavy-tailed series thus get wide bands and quiet
    ones narrow bands, with no distributional assumption. ``habituate`` decides what is
    remembered of an anomalous value: itself (a spike seen k times is no longer news) or
    the band edge (a sustained shift stays news for a while, widening the band gradually).
    """

    def __init__(self, history: int, margin: float, habituate: bool) -> None:
        self.window = SortedWindow(history)
        self.margin = margin
        self.habituate = habituate

    def judge(self, value: float) -> Estimate | None:
        ordered = self.window._sorted  # read-only access on the hot path
        n = len(ordered)
        if n < 2 * TOLERATED_EXTREMES + 3:
            return None
        median = ordered[n // 2]
        # However few extremes the window has seen yet, the band is at least IQR_SIGMAS robust
        # standard deviations wide: short histories of well-behaved series stay quiet.
        floor = max(
            IQR_SIGMAS * (ordered[(3 * n) // 4] - ordered[n // 4]) / 1.349 / (1.0 + self.margin),
            RELATIVE_FLOOR * abs(median),
            ABSOLUTE_FLOOR,
        )
        stretch = 1.0 + self.margin
        upper = median + stretch * max(ordered[n - 1 - TOLERATED_EXTREMES] - median, floor)
        lower = median - stretch * max(median - ordered[TOLERATED_EXTREMES], floor)
        if value >= median:
            score = (value - median) / (upper - median)
        else:
            score = (value - median) / (median - lower)
        return Estimate(median, lower, upper, score)

    def absorb(self, value: float, estimate: Estimate | None) -> None:
        if estimate is not None and not self.habituate:
            value = min(max(value, estimate[1]), estimate[2])
        self.window.add(value)


class AutoDetector(Detector):
    """Novelty of the value, of its short mean and (if seasonal) of its seasonal residual.

    The component furthest outside its band speaks for the point. Value novelty catches
    spikes and new extremes, short-mean novelty level shifts and changed noise, the
    seasonal residual a cycle that broke (a day that did not rise, a flat stretch).
    """

    kind = "auto"

    def __init__(self, condition: AnomalyCondition) -> None:
        super().__init__(condition)
        margin = NOVELTY_MARGIN / condition.sensitivity
        # Every band remembers what it saw: a recurring excursion stops being news.
        self.value = NoveltyBand(condition.history, margin, habituate=True)
        self.level = NoveltyBand(condition.history, margin, habituate=True)
        self.residual = NoveltyBand(condition.history, margin, habituate=True)
        self.recent: deque[float] = deque(maxlen=SHORT_MEAN_POINTS)
        self.forced_season = condition.season is not None
        season = condition.season.total_seconds() if condition.season else 86400.0
        self.profile = SeasonalProfile(season)
        self.steps = 0
        self.seasonal = self.forced_season
        #: the level band at the start of an ongoing excursion, and points left to hold it.
        self.excursion: Estimate | None = None
        self.hold = 0
        self.max_hold = max(1, int(EXCURSION_HOLD * condition.history))

    def _seasonal_helps(self) -> bool:
        # Spreads change slowly: re-decide every SEASONAL_RECHECK points, not every point.
        if self.forced_season or self.steps % SEASONAL_RECHECK:
            return self.seasonal
        residuals, values = self.residual.window, self.value.window
        if len(residuals) < len(values) // 4 or len(residuals) < 50:
            self.seasonal = False
        else:
            self.seasonal = iqr(residuals) < SEASONAL_GAIN * iqr(values)
        return self.seasonal

    def step(self, at: datetime, value: float) -> Estimate | None:
        self.steps += 1
        self.recent.append(value)
        mean = sum(self.recent) / len(self.recent)
        by_value = self.value.judge(value)
        by_level = self._level(mean)
        index, seasonal = self.profile.expected(at)
        by_season: Estimate | None = None
        if seasonal is not None:
            judged = self.residual.judge(value - seasonal)
            if judged is not None and self._seasonal_helps():
                by_season = Estimate(
                    seasonal + judged.expected,
                    seasonal + judged.lower,
                    seasonal + judged.upper,
                    judged.score,
                )
            self.residual.absorb(value - seasonal, judged)
        if (
            by_value is not None
            and abs(by_value.score) > 1.0
            and index is not None
            and self.profile.seen_near(
                index, value, SEASONAL_JITTER_BINS, by_value.expected, SEASONAL_REACH
            )
        ):
            by_value = Estimate(by_value.expected, by_value.lower, by_value.upper, 0.0)
        self.value.absorb(value, by_value)
        self.level.absorb(mean, by_level)
        if by_season is not None:
            self.profile.absorb(index, clip_to_band(value, by_season))
        else:
            self.profile.absorb(index, value)
        candidates = [e for e in (by_season, by_value, by_level) if e is not None]
        if not candidates:
            return None
        # The seasonal band, when in use, is the tighter description of "expected".
        return max(candidates, key=lambda e: abs(e.score))

    def _level(self, mean: float) -> Estimate | None:
        """The short mean against the level band, or against the band an excursion began in.

        The band habituates (a recurring excursion is soon no news), but an ongoing one is
        still judged by the band as it was when it began, for up to ``max_hold`` points.
        """
        judged = self.level.judge(mean)
        held = self.excursion
        if held is not None and self.hold > 0:
            self.hold -= 1
            score = band_score(mean, held.expected, held.lower, held.upper)
            if abs(score) > 1.0:
                if judged is None or abs(judged.score) < abs(score):
                    return Estimate(held.expected, held.lower, held.upper, score)
                return judged
        self.excursion = None
        self.hold = 0
        if judged is not None and abs(judged.score) > 1.0:
            self.excursion = judged
            self.hold = self.max_hold
        return judged

    def to_state(self) -> dict[str, Any]:
        return {
            "value": self.value.window.values(),
            "level": self.level.window.values(),
            "residual": self.residual.window.values(),
            "recent": list(self.recent),
            "profile": self.profile.to_state(),
            "steps": self.steps,
            "seasonal": self.seasonal,
            "excursion": None if self.excursion is None else list(self.excursion[:4]),
            "hold": self.hold,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        bands = ((self.value, "value"), (self.level, "level"), (self.residual, "residual"))
        for band, key in bands:
            band.window = SortedWindow(band.window.size, state[key])
        self.recent = deque((float(x) for x in state["recent"]), maxlen=SHORT_MEAN_POINTS)
        self.profile.load_state(state["profile"])
        self.steps = int(state["steps"])
        self.seasonal = bool(state["seasonal"])
        excursion = state.get("excursion")
        if excursion is None:
            self.excursion = None
        else:
            expected, lower, upper, score = (float(x) for x in excursion)
            self.excursion = Estimate(expected, lower, upper, score)
        self.hold = int(state.get("hold", 0))
