"""Judge one alert instance's rows at one moment: a value and a verdict.

Pure functions (the anomaly tracker is the only state, passed in by the caller).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple

from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker, Observation
from agent.evaluate.rules import (
    ChangeCondition,
    ClearCondition,
    NoDataCondition,
    Rule,
    ThresholdCondition,
)
from agent.evaluate.state import Verdict
from agent.evaluate.values import Reducer, Window, reduce_window

COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}

#: how long a bucket of each granularity lasts; a bucket counts once it is complete.
GRANULARITY_SECONDS = {
    "sec": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 31 * 86400,
    "year": 366 * 86400,
    "historic": 0,
}


#: the details of a judgement that has none (shared, read only)
_NO_DETAILS: Mapping[str, str] = MappingProxyType({})


class Judgement(NamedTuple):
    """(A tuple: one is made per instance per cycle, and a frozen dataclass costs twice as
    much to build.)"""

    verdict: Verdict
    value: float | None
    threshold: float | None = None
    #: extra annotations, e.g. the anomaly band.
    details: Mapping[str, str] = _NO_DETAILS


def data_lag(rule: Rule) -> timedelta:
    """Rows of the bucket in progress are incomplete; windows end at the last complete one."""
    if rule.query.metric in ("series", "executions"):
        return timedelta(0)
    return timedelta(seconds=GRANULARITY_SECONDS[rule.query.effective_granularity])


def lookback(rule: Rule) -> timedelta:
    """How far back from now a rule needs rows."""
    condition = rule.condition
    span = rule.query.window + data_lag(rule)
    if isinstance(condition, ChangeCondition):
        span += condition.reference
    if isinstance(condition, NoDataCondition):
        span = max(span, condition.duration + data_lag(rule))
    return span


@dataclass(frozen=True)
class Bounds:
    """A rule's windows at one moment, worked out once for all of its instances (the
    columns look a window up by these very objects)."""

    now: datetime
    after: datetime
    until: datetime
    #: a change condition's reference window, or the span a nodata condition looks at
    reference: tuple[datetime, datetime] | None = None


def bounds(rule: Rule, now: datetime) -> Bounds:
    condition = rule.condition
    until = now - data_lag(rule)
    after = until - rule.query.window
    if isinstance(condition, NoDataCondition):
        return Bounds(now, after, until, (until - condition.duration, until))
    if isinstance(condition, ChangeCondition):
        reference_until = until - condition.reference
        return Bounds(now, after, until, (reference_until - rule.query.window, reference_until))
    return Bounds(now, after, until)


def judge(
    rule: Rule,
    window: Window,
    at: Bounds,
    tracker: AnomalyTracker | None = None,
    reduce: Reducer = reduce_window,
) -> Judgement:
    condition = rule.condition
    if isinstance(condition, NoDataCondition):
        assert at.reference is not None
        count = window.rows(*at.reference)
        return Judgement(Verdict.BREACHED if not count else Verdict.CLEARED, float(count), 0.0)

    value = reduce(rule.value, window, at.after, at.until)
    if value is None and rule.query.metric == "executions" and rule.value.function != "ratio":
        # The execution log records events: no events in the window is zero, not missing data.
        value = 0.0
    if isinstance(condition, ThresholdCondition):
        if value is None:
            return Judgement(Verdict.NODATA, None, condition.value)
        return Judgement(
            threshold_verdict(value, condition.op, condition.value, rule.clear),
            value,
            condition.value,
        )
    if isinstance(condition, ChangeCondition):
        assert at.reference is not None
        reference = reduce(rule.value, window, *at.reference)
        return _judge_change(rule, condition, value, reference)
    if isinstance(condition, AnomalyCondition):
        if value is None:
            return Judgement(Verdict.NODATA, None)
        if tracker is None:
            raise ValueError(f"rule {rule.name}: an anomaly condition needs a tracker")
        return judge_anomaly(tracker, at.now, value)
    raise TypeError(f"unknown condition {type(condition).__name__}")


def anomaly_verdict(observation: Observation) -> Verdict:
    if observation.breached:
        return Verdict.BREACHED
    if observation.recovered:
        return Verdict.CLEARED
    return Verdict.BETWEEN


def judge_anomaly(tracker: AnomalyTracker, at: datetime, value: float) -> Judgement:
    observation = tracker.observe(at, value)
    return Judgement(
        anomaly_verdict(observation),
        value,
        None,
        {
            "expected": _short(observation.expected),
            "expected_lower": _short(observation.lower),
            "expected_upper": _short(observation.upper),
            "anomaly_score": f"{observation.score:.2f}",
            "anomaly_statistic": observation.statistic,
            "observed": _short(observation.observed),
        },
    )


def threshold_verdict(
    value: float, op: str, threshold: float, clear: ClearCondition | None
) -> Verdict:
    if COMPARE[op](value, threshold):
        return Verdict.BREACHED
    if clear is None or COMPARE[clear.op](value, clear.value):
        return Verdict.CLEARED
    return Verdict.BETWEEN


def _judge_change(
    rule: Rule, condition: ChangeCondition, current: float | None, reference: float | None
) -> Judgement:
    if current is None or reference is None:
        return Judgement(Verdict.NODATA, current, condition.value)
    if reference < condition.min_reference:
        return Judgement(
            Verdict.CLEARED, current, condition.value, {"reference": _short(reference)}
        )
    if condition.mode == "absolute":
        change = current - reference
    elif reference == 0:
        change = math.inf if current > 0 else 0.0
    else:
        change = (current - reference) / reference * 100.0
    verdict = threshold_verdict(change, condition.op, condition.value, rule.clear)
    return Judgement(
        verdict,
        change,
        condition.value,
        {"current": _short(current), "reference": _short(reference)},
    )


def _short(number: float) -> str:
    return f"{number:.6g}"
