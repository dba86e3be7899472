"""Online detectors: each scores a point against its past, then absorbs it. Pure, no I/O.

Every detector returns an :class:`Estimate` whose signed ``score`` is the deviation in
units of the band's half-width: ``score > 1`` is above the band, ``score < -1`` below it.
Updates are O(1) or O(log n) per point, and anomalous points are clipped to the band edge
before they are absorbed, so an ongoing anomaly only slowly becomes the new normal.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple

from agent.evaluate.anomaly.condition import AnomalyCondition
from agent.evaluate.anomaly.tail import tail_bounds
from agent.evaluate.anomaly.windows import SortedWindow

#: band half-width of the Gaussian-style methods at sensitivity 1, in robust standard
#: deviations: about one false point in 150 000 for Gaussian noise.
BAND_SIGMAS = 4.5
#: 1.4826 × MAD estimates the standard deviation of Gaussian data.
MAD_TO_SIGMA = 1.4826
#: CUSUM slack (per point, in standard deviations) and alarm level at sensitivity 1.
CUSUM_DRIFT = 1.0
CUSUM_LEVEL = 8.0
#: standardised deviations are clipped here before CUSUM adds them, so one spike can't alarm.
CUSUM_CLIP = 6.0
#: seasons remembered per phase bin; their median is the seasonal expectation.
SEASONS_KEPT = 5
#: phase bins per season at most (one per 5 minutes of a day).
MAX_BINS = 288
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
#: a scale never drops below this fraction of the level (constant series).
RELATIVE_FLOOR = 1e-9
ABSOLUTE_FLOOR = 1e-12


class Estimate(NamedTuple):
    """A detector's band for one point (a tuple: cheap to create on the hot path)."""

    expected: float
    lower: float
    upper: float
    score: float


def _floor(level: float) -> float:
    return max(RELATIVE_FLOOR * abs(level), ABSOLUTE_FLOOR)


def _score(value: float, expected: float, lower: float, upper: float) -> float:
    """Signed deviation in units of the band's half-width on the value's side."""
    if value >= expected:
        return (value - expected) / max(upper - expected, _floor(expected))
    return (value - expected) / max(expected - lower, _floor(expected))


def _clip(value: float, estimate: Estimate) -> float:
    return min(max(value, estimate.lower), estimate.upper)


def _epoch(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def robust_scale(window: SortedWindow, centre: float) -> float:
    """1.4826 × MAD, falling back to wider quantile spreads for mostly-constant series."""
    scale = MAD_TO_SIGMA * window.mad(centre)
    if scale > 0.0:
        return scale
    n = len(window)
    # 5 %–95 % spans 3.29 standard deviations of Gaussian data; the full range ~6 of them.
    spread = (window.at_rank(n - 1 - n // 20) - window.at_rank(n // 20)) / 3.29
    if spread <= 0.0:
        spread = (window.at_rank(-1) - window.at_rank(0)) / 6.0
    return max(spread, _floor(centre))


class Detector(ABC):
    """Scores a point against the past (``None`` while it has too little), then absorbs it."""

    kind: ClassVar[str]

    def __init__(self, condition: AnomalyCondition) -> None:
        self.width = BAND_SIGMAS / condition.sensitivity

    @abstractmethod
    def step(self, at: datetime, value: float) -> Estimate | None: ...

    @abstractmethod
    def to_state(self) -> dict[str, Any]: ...

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None: ...


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
        score = _score(value, band.expected, band.lower, band.upper)
        self.window.add(_clip(value, band))
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
            half = self.width * max(math.sqrt(self.var), _floor(self.mean))
            lower, upper = self.mean - half, self.mean + half
            estimate = Estimate(self.mean, lower, upper, _score(value, self.mean, lower, upper))
            absorbed = _clip(value, estimate)
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


# --- seasonal ------------------------------------------------------------------------------


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
        epoch = _epoch(at)
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
            _score(value, expected, expected - half, expected + half),
        )
        clipped = _clip(value, estimate)
        self.residuals.add(clipped - seasonal)
        self.profile.absorb(index, clipped)
        return estimate

    def to_state(self) -> dict[str, Any]:
        return {"profile": self.profile.to_state(), "residuals": self.residuals.values()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.profile.load_state(state["profile"])
        self.residuals = SortedWindow(self.residuals.size, state["residuals"])


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
        self.baseline.window.add(_clip(value, band))
        return Estimate(median, min(lower, median), max(upper, median), score)

    def to_state(self) -> dict[str, Any]:
        return {"baseline": self.baseline.to_state(), "high": self.high, "low": self.low}

    def load_state(self, state: dict[str, Any]) -> None:
        self.baseline.load_state(state["baseline"])
        self.high = float(state["high"])
        self.low = float(state["low"])


# --- auto: novelty bands -------------------------------------------------------------------


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
            self.seasonal = _iqr(residuals) < SEASONAL_GAIN * _iqr(values)
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
            self.profile.absorb(index, _clip(value, by_season))
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
            score = _score(mean, held.expected, held.lower, held.upper)
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
            "excursion": None if self.excursion is None else list(self.excursion),
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
        self.excursion = None if excursion is None else Estimate(*map(float, excursion))
        self.hold = int(state.get("hold", 0))


# --- evt: extreme-value bands on three deviations ------------------------------------------

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
        self.seasonal = len(residuals) >= 50 and _iqr(residuals) < SEASONAL_FIT * _iqr(levels)
        for _, band in self._bands():
            # A series without noise (a square wave) steps by its own spread instead.
            spread = noise or (_iqr(band.window) if len(band.window) else 0.0)
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
                score = _score(value, base, lower, upper)
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
            score = _score(level, middle, bounds[0], bounds[1])
            if abs(score) > strongest:
                best, strongest = Estimate(middle, bounds[0], bounds[1], score), abs(score)
        index, seasonal = self.profile.expected(at)
        if seasonal is not None:
            bounds = self.residual.observe(value - seasonal)
            if bounds is not None and self.seasonal:
                lower, upper = seasonal + bounds[0], seasonal + bounds[1]
                score = _score(value, seasonal, lower, upper)
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


def _iqr(window: SortedWindow) -> float:
    n = len(window)
    return window.at_rank((3 * n) // 4) - window.at_rank(n // 4)


DETECTORS: dict[str, type[Detector]] = {
    cls.kind: cls
    for cls in (
        AutoDetector,
        MadDetector,
        EwmaDetector,
        SeasonalDetector,
        CusumDetector,
        EvtDetector,
    )
}


def build_detector(condition: AnomalyCondition) -> Detector:
    return DETECTORS[condition.method](condition)
