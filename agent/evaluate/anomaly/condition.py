"""The ``[rule.condition]`` table of an anomaly rule."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.durations import strict_duration

Method = Literal["auto", "mad", "ewma", "seasonal", "cusum", "evt", "extremes"]
Direction = Literal["above", "below", "both"]


class AnomalyCondition(BaseModel):
    """Alert when a series leaves the band its own history predicts.

    Every point is scored against a baseline built from earlier points only, then absorbed
    into it. A point outside the band (and past the direction and minimum-deviation filters)
    is *anomalous*; the condition *holds* once enough points in ``trigger_window`` are
    anomalous, and it *clears* once ``recovery_window`` is (almost) free of them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["anomaly"]
    method: Method = Field(
        "extremes",
        description=(
            "auto: novelty of the value, of its short-term mean (level shifts) and, when the "
            "series shows a daily cycle or `season` is set, of its deviation from the same "
            "time in earlier seasons. mad: rolling median ± MAD. ewma: exponentially weighted "
            "mean ± standard deviation. seasonal: median of the same time in recent seasons "
            "± robust spread of the residuals. cusum: cumulative sum of standardised "
            "deviations from a rolling median (slow level shifts). evt: extreme-value "
            "(peaks-over-threshold) bands on the jump from the recent median, on the "
            "24-point median and, when the series has a daily cycle, on the deviation from "
            "recent days; never inside the largest deviation of `history` plus one noise "
            "IQR, so what the series already did is not news. extremes (recommended): the "
            "value, its jump from the recent median, its 12-point mean, the median step "
            "between those 12 points (volatility) and (with a daily cycle) its deviation "
            "from recent days, each against its own `history`: one point "
            "must pass everything seen plus one noise IQR, two of three points in a row need "
            "only pass all but the 6 most extreme values, by 25 % of their distance from the "
            "median."
        ),
    )
    sensitivity: float = Field(
        1.0,
        gt=0.0,
        le=10.0,
        description=(
            "One knob, higher = more alerts. The band's margin is divided by it: 2 halves "
            "the margin, 0.5 doubles it. At 1, mad/ewma/seasonal bands are ±4.5 robust "
            "standard deviations, cusum alarms at 8, auto's band reaches 25 % beyond "
            "the most extreme values seen more than a few times in `history`, and evt's "
            "band reaches one noise IQR beyond the largest deviation in `history` (its "
            "tail fit risks 0.001 per point at 1); extremes divides its margin and its noise IQR."
        ),
    )
    direction: Direction = Field("both", description="Which side of the band counts.")
    min_deviation: float = Field(
        0.0,
        ge=0.0,
        description=(
            "Absolute |observed - expected| needed to count as anomalous (observed: the value, "
            "or the statistic of recent points the band is for)."
        ),
    )
    min_relative_deviation: float = Field(
        0.0, ge=0.0, description="|observed - expected| / |expected| needed to count."
    )
    trigger_window: timedelta = Field(
        timedelta(0),
        description="Span of recent points judged to fire; '0s' = the latest point alone.",
    )
    trigger_fraction: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="Fraction of the points in trigger_window that must be anomalous to fire.",
    )
    recovery_window: timedelta = Field(
        timedelta(hours=1),
        description="Span of recent points judged to clear (also the minimum firing time).",
    )
    recovery_fraction: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Clear once at most this fraction of recovery_window is anomalous.",
    )
    season: timedelta | None = Field(
        None,
        description=(
            "Seasonal period, e.g. '1d' or '7d'. None: auto checks for a daily cycle; "
            "method seasonal assumes '1d'."
        ),
    )
    history: int = Field(
        4032,
        ge=50,
        le=20000,
        description=(
            "Points a baseline remembers (auto's novelty memory, mad's window). The default "
            "is two weeks of 5-minute points: what a series does once a week has been seen "
            "twice when it comes back, so it is no longer news."
        ),
    )
    warmup: int = Field(
        150,
        ge=10,
        description="Points observed before any can be anomalous.",
    )

    _durations = field_validator("trigger_window", "recovery_window", "season", mode="before")(
        strict_duration
    )

    @model_validator(mode="after")
    def _check(self) -> AnomalyCondition:
        if self.trigger_window < timedelta(0) or self.recovery_window < timedelta(0):
            raise ValueError("trigger_window and recovery_window cannot be negative")
        if self.season is not None and self.season < timedelta(minutes=1):
            raise ValueError("season must be at least 1m")
        return self
