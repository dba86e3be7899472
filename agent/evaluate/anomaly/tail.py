"""Extreme-value bands: how far a deviation must go to be rarer than a given risk.

Peaks over threshold: past a high quantile ``t`` of a series' own deviations, the excesses
follow a generalised Pareto distribution (Pickands–Balkema–de Haan). Fitting it by the
method of moments to the ``k`` largest deviations of a rolling window gives the deviation
exceeded with probability ``risk`` per point, whatever the deviations' distribution — the
same risk yields a narrow band on a quiet series and a wide one on a bursty series.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from operator import mul

from agent.evaluate.anomaly.windows import SortedWindow

#: the fit uses the largest 2 % of the window's deviations on each side...
TAIL_FRACTION = 0.02
#: ...and never fewer than this many.
MIN_PEAKS = 8
#: shape parameter bounds: the method of moments is unbiased only for xi < 1/2, and below
#: -1/2 the fitted distribution ends so close to the largest excess that any value beyond
#: the peaks seen would be anomalous.
XI_MIN, XI_MAX = -0.5, 0.5


def exceedance_level(peaks: list[float], base: float, tail: float) -> float:
    """The excess over ``base`` rarer than ``tail`` (a fraction of the peaks' frequency).

    ``peaks`` are the largest deviations (oriented so that larger is more extreme), all at
    or above ``base``; ``tail`` is ``risk * n / k`` for a window of ``n`` and ``k`` peaks.
    """
    k = len(peaks)
    excesses = [p - base for p in peaks]
    mean = sum(excesses) / k
    if mean <= 0.0:
        return 0.0
    variance = sum(map(mul, excesses, excesses)) / k - mean * mean
    ratio = mean * mean / variance if variance > 0.0 else math.inf
    xi = min(XI_MAX, max(XI_MIN, 0.5 * (1.0 - ratio)))
    # The mean excess of a generalised Pareto distribution is sigma / (1 - xi).
    sigma = mean * (1.0 - xi)
    if abs(xi) < 1e-6:
        return -sigma * math.log(tail)
    return sigma / xi * (tail**-xi - 1.0)


def tail_bounds(window: SortedWindow, risk: float, floor: float) -> tuple[float, float] | None:
    """Lower and upper deviations each exceeded with probability ``risk`` per point.

    Each bound lies beyond the most extreme deviation in the window by at least ``floor``
    and at least the step from that extreme to the next distinct value: what the window
    holds is not news, nor is the next count up on a quantized series.
    ``None`` while the window holds too few values to fit a tail on each side.
    """
    ordered = window._sorted  # read-only access on the hot path
    n = len(ordered)
    k = max(MIN_PEAKS, int(TAIL_FRACTION * n))
    if n < 2 * k + 2:
        return None
    tail = min(1.0, risk * n / k)
    high_base = ordered[n - 1 - k]
    upper = high_base + exceedance_level(ordered[n - k :], high_base, tail)
    low_base = ordered[k]
    lower = low_base - exceedance_level([-x for x in ordered[:k]], -low_base, tail)
    lowest, highest = ordered[0], ordered[-1]
    # The step between the extreme and the next distinct value: one count, for counts.
    above = bisect_right(ordered, lowest)
    low_step = max(floor, ordered[above] - lowest if above < n else 0.0)
    below = bisect_left(ordered, highest)
    high_step = max(floor, highest - ordered[below - 1] if below > 0 else 0.0)
    return min(lower, lowest - low_step), max(upper, highest + high_step)
