"""Judge one alert instance's rows at one moment: a value and a verdict.

Pure functions (the anomaly tracker is the only state, passed in by the caller).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
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
from agent.evaluate.values import SharedValues, Window

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


#: what a rule's ``Bounds`` depend on besides the moment (``bounds_shape``)
BoundsShape = tuple[timedelta, timedelta, timedelta | None, timedelta | None]


def bounds_shape(rule: Rule) -> BoundsShape:
    """Rules of one shape have the same bounds at a moment: the data lag, the window, a
    nodata condition's span, a change condition's reference."""
    condition = rule.condition
    return (
        data_lag(rule),
        rule.query.window,
        condition.duration if isinstance(condition, NoDataCondition) else None,
        condition.reference if isinstance(condition, ChangeCondition) else None,
    )


def bounds(rule: Rule, now: datetime, shape: BoundsShape | None = None) -> Bounds:
    """The rule's windows at ``now`` (``shape``: its ``bounds_shape``, if known)."""
    lag, window, nodata_span, reference = shape or bounds_shape(rule)
    until = now - lag
    after = until - window
    if nodata_span is not None:
        return Bounds(now, after, until, (until - nodata_span, until))
    if reference is not None:
        reference_until = until - reference
        return Bounds(now, after, until, (reference_until - window, reference_until))
    return Bounds(now, after, until)


class Judged(NamedTuple):
    """The judgements of one rule's instances, as columns (one entry per window)."""

    verdicts: Sequence[Verdict]
    #: (may be shared with other rules reading the same values: read only)
    values: Sequence[float | None]
    #: the rule's threshold (the same for all of its instances)
    threshold: float | None
    #: an instance's extra annotations by its index, worked out when asked (only an
    #: instance that steps needs them); None when no instance has any
    details: Callable[[int], Mapping[str, str]] | None = None

    def judgement(self, index: int) -> Judgement:
        details = self.details(index) if self.details is not None else _NO_DETAILS
        return Judgement(self.verdicts[index], self.values[index], self.threshold, details)


def judge_all(
    rule: Rule,
    windows: Sequence[Window],
    at: Bounds,
    trackers: Sequence[AnomalyTracker | None],
    shared: SharedValues,
    spec_key: str,
) -> Judged:
    """Judge every window of one rule at one moment (``trackers`` aligned with them);
    values come from ``shared``, so rules reading the same value compute it once."""
    condition = rule.condition
    if isinstance(condition, NoDataCondition):
        assert at.reference is not None
        counts = [float(count or 0) for count in shared.rows(windows, *at.reference)]
        return Judged(
            [Verdict.CLEARED if count else Verdict.BREACHED for count in counts], counts, 0.0
        )
    values = shared.values(rule.value, spec_key, windows, at.after, at.until)
    if rule.query.metric == "executions" and rule.value.function != "ratio":
        # The execution log records events: no events in the window is zero, not missing data.
        values = [0.0 if value is None else value for value in values]
    if isinstance(condition, ThresholdCondition):
        return Judged(
            threshold_verdicts(values, condition.op, condition.value, rule.clear),
            values,
            condition.value,
        )
    if isinstance(condition, ChangeCondition):
        assert at.reference is not None
        references = shared.values(rule.value, spec_key, windows, *at.reference)
        changes = [
            _judge_change(condition, rule.clear, current, reference)
            for current, reference in zip(values, references, strict=True)
        ]
        return Judged(
            [verdict for verdict, _ in changes],
            [value for _, value in changes],
            condition.value,
            lambda index: _change_details(condition, values[index], references[index]),
        )
    if isinstance(condition, AnomalyCondition):
        judged = [
            _judge_anomaly(rule, tracker, at.now, value)
            for tracker, value in zip(trackers, values, strict=True)
        ]
        return Judged(
            [j.verdict for j in judged],
            [j.value for j in judged],
            None,
            lambda index: judged[index].details,
        )
    raise TypeError(f"unknown condition {type(condition).__name__}")


def judge(
    rule: Rule, window: Window, at: Bounds, tracker: AnomalyTracker | None = None
) -> Judgement:
    """One window's judgement (``judge_all`` of one)."""
    return judge_all(rule, [window], at, [tracker], SharedValues(), "").judgement(0)


def _judge_anomaly(
    rule: Rule, tracker: AnomalyTracker | None, at: datetime, value: float | None
) -> Judgement:
    if value is None:
        return Judgement(Verdict.NODATA, None)
    if tracker is None:
        raise ValueError(f"rule {rule.name}: an anomaly condition needs a tracker")
    return judge_anomaly(tracker, at, value)


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


def threshold_verdicts(
    values: Sequence[float | None], op: str, threshold: float, clear: ClearCondition | None
) -> list[Verdict]:
    """``threshold_verdict`` of each value (NODATA for None)."""
    nodata = Verdict.NODATA
    return [
        nodata if value is None else threshold_verdict(value, op, threshold, clear)
        for value in values
    ]


def threshold_verdict(
    value: float, op: str, threshold: float, clear: ClearCondition | None
) -> Verdict:
    if COMPARE[op](value, threshold):
        return Verdict.BREACHED
    if clear is None or COMPARE[clear.op](value, clear.value):
        return Verdict.CLEARED
    return Verdict.BETWEEN


def _judge_change(
    condition: ChangeCondition,
    clear: ClearCondition | None,
    current: float | None,
    reference: float | None,
) -> tuple[Verdict, float | None]:
    """The verdict and value (the change, or the current value when there is none)."""
    if current is None or reference is None:
        return Verdict.NODATA, current
    if reference < condition.min_reference:
        return Verdict.CLEARED, current
    if condition.mode == "absolute":
        change = current - reference
    elif reference == 0:
        change = math.inf if current > 0 else 0.0
    else:
        change = (current - reference) / reference * 100.0
    return threshold_verdict(change, condition.op, condition.value, clear), change


def _change_details(
    condition: ChangeCondition, current: float | None, reference: float | None
) -> Mapping[str, str]:
    if current is None or reference is None:
        return _NO_DETAILS
    if reference < condition.min_reference:
        return {"reference": _short(reference)}
    return {"current": _short(current), "reference": _short(reference)}


def _short(number: float) -> str:
    return f"{number:.6g}"
