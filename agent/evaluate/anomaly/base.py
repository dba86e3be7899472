"""What every online detector shares: the band it returns, its scoring and its interface.

Every detector returns an :class:`Estimate` whose signed ``score`` is the deviation in
units of the band's half-width: ``score > 1`` is above the band, ``score < -1`` below it.
Updates are O(1) or O(log n) per point, and anomalous points are clipped to the band edge
before they are absorbed, so an ongoing anomaly only slowly becomes the new normal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple

from agent.evaluate.anomaly.condition import AnomalyCondition
from agent.evaluate.anomaly.windows import SortedWindow

#: band half-width of the Gaussian-style methods at sensitivity 1, in robust standard
#: deviations: about one false point in 150 000 for Gaussian noise.
BAND_SIGMAS = 4.5
#: 1.4826 × MAD estimates the standard deviation of Gaussian data.
MAD_TO_SIGMA = 1.4826
#: a scale never drops below this fraction of the level (constant series).
RELATIVE_FLOOR = 1e-9
ABSOLUTE_FLOOR = 1e-12


class Estimate(NamedTuple):
    """A detector's band for one point (a tuple: cheap to create on the hot path).

    The band is for the point's value unless ``statistic`` names another quantity judged
    (e.g. the mean of the last few points); ``observed`` is then that quantity's value.
    """

    expected: float
    lower: float
    upper: float
    score: float
    statistic: str = "value"
    observed: float | None = None


def scale_floor(level: float) -> float:
    return max(RELATIVE_FLOOR * abs(level), ABSOLUTE_FLOOR)


def band_score(value: float, expected: float, lower: float, upper: float) -> float:
    """Signed deviation in units of the band's half-width on the value's side."""
    if value >= expected:
        return (value - expected) / max(upper - expected, scale_floor(expected))
    return (value - expected) / max(expected - lower, scale_floor(expected))


def clip_to_band(value: float, estimate: Estimate) -> float:
    return min(max(value, estimate.lower), estimate.upper)


def epoch_seconds(at: datetime) -> float:
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
    return max(spread, scale_floor(centre))


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


def iqr(window: SortedWindow) -> float:
    n = len(window)
    return window.at_rank((3 * n) // 4) - window.at_rank(n // 4)
