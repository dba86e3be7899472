"""Replay rules over history: backtests, and ``once``'s short warm-up replay.

Two inputs: a CSV of ``timestamp,value`` rows (NAB's format; rules with
``metric = "series"``), or rows fetched once from the Analytics API and replayed
at each rule's interval through the real engine.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.collect.models import Sample
from agent.evaluate.alerts import AlertState
from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker
from agent.evaluate.conditions import anomaly_verdict, threshold_verdict
from agent.evaluate.engine import CycleReport, Engine
from agent.evaluate.loader import load_rules
from agent.evaluate.planner import DataSource, plan
from agent.evaluate.rules import Rule, ThresholdCondition
from agent.evaluate.sources import MemorySource, PrefetchedSource
from agent.evaluate.state import InstanceState, Verdict, step


class CsvError(ValueError):
    pass


@dataclass(frozen=True)
class Row:
    at: datetime
    text: str
    value: float


def read_csv(path: Path) -> list[Row]:
    """``timestamp,value`` rows (a header line is allowed); bad rows name their line."""
    rows: list[Row] = []
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise CsvError(f"{path}: cannot read: {error.strerror}") from None
    with handle:
        for number, record in enumerate(csv.reader(handle), start=1):
            if not record or (number == 1 and not _is_number(record[-1])):
                continue
            if len(record) < 2:
                raise CsvError(f"{path}:{number}: expected 'timestamp,value'")
            text = record[0].strip()
            try:
                at = datetime.fromisoformat(text)
                value = float(record[1])
            except ValueError:
                raise CsvError(f"{path}:{number}: cannot read {','.join(record)!r}") from None
            rows.append(Row(at, text, value))
    return rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def series_rules(rules: Sequence[Rule]) -> list[Rule]:
    return [rule for rule in rules if rule.query.metric == "series"]


def backtest_csv(rules_path: Path, csv_paths: Sequence[Path]) -> Iterator[dict[str, Any]]:
    """Transitions of every ``series`` rule in ``rules_path`` over each CSV, in row order."""
    rules = series_rules([item.rule for item in load_rules([rules_path])])
    if not rules:
        raise CsvError(f"{rules_path}: no rule with metric = 'series' to replay over a CSV")
    for path in csv_paths:
        rows = read_csv(path)
        for rule in rules:
            yield from replay_series(rule, rows, series=str(path))


def replay_series(rule: Rule, rows: Sequence[Row], *, series: str) -> Iterator[dict[str, Any]]:
    """The hot loop of CSV backtests: the row's value is the rule's value.

    Steps that cannot change anything (quiet and not breached, or firing and still
    breached) are skipped: the replay reports transitions, not per-row values.
    """
    condition = rule.condition
    tracker = AnomalyTracker(condition) if isinstance(condition, AnomalyCondition) else None
    state = InstanceState()
    for_, clear_for = rule.for_, rule.clear_for
    quiet = (AlertState.INACTIVE, AlertState.RESOLVED)
    for row in rows:
        at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
        if tracker is not None:
            verdict = anomaly_verdict(tracker.observe(at, row.value))
        else:
            assert isinstance(condition, ThresholdCondition)
            verdict = threshold_verdict(row.value, condition.op, condition.value, rule.clear)
        current = state.state
        if (verdict is not Verdict.BREACHED and current in quiet) or (
            verdict is Verdict.BREACHED
            and current is AlertState.FIRING
            and state.clearing_since is None
        ):
            continue
        new = step(state, verdict, at, value=row.value, for_=for_, clear_for=clear_for)
        if new.state is not current:
            yield {
                "series": series,
                "rule": rule.name,
                "state": new.state.value,
                "previous": current.value,
                "at": row.at.isoformat(),
                "value": row.value,
            }
        state = new


def backtest_source(
    rules: Sequence[Rule],
    source: DataSource,
    start: datetime,
    end: datetime,
    default_interval: timedelta,
) -> Iterator[dict[str, Any]]:
    """Fetch each planned query once over the whole span, then replay the engine over it."""
    samples: list[Sample] = []
    span_plan = plan(rules, end, extra=end - start)
    for request in span_plan.requests:
        samples.extend(source.fetch(request))
    engine = Engine(rules, MemorySource(samples), default_interval=default_interval)
    now = start
    while now <= end:
        report = engine.evaluate(now, engine.due(now))
        for transition in report.transitions:
            yield {
                "rule": transition.rule,
                "state": transition.state.value,
                "previous": transition.previous.value,
                "at": transition.at.isoformat(),
                "value": transition.value,
                "labels": transition.labels,
                "fingerprint": transition.fingerprint,
            }
        now += _step(rules, default_interval)


def evaluate_once(engine: Engine, now: datetime) -> CycleReport:
    """One evaluation of every rule that honours ``for`` and ``clear_for``.

    Data is fetched once, reaching back over the longest pending and clear period,
    and the rules are replayed up to ``now`` on it, so a breach that began minutes ago
    shows as firing rather than as a pending alert that was just born. The report
    holds every transition of the replay and the errors of the final evaluation.
    """
    rules = list(engine.rules.values())
    warmup = max((rule.for_ + rule.clear_for for rule in rules), default=timedelta(0))
    live = engine.source
    engine.source = PrefetchedSource(live, plan(rules, now, extra=warmup).requests)
    transitions = []
    try:
        step = _step(rules, engine.default_interval)
        moment = now - warmup
        while moment < now:
            transitions += engine.evaluate(moment, engine.due(moment)).transitions
            moment += step
        report = engine.evaluate(now)
    finally:
        engine.source = live
    report.transitions = transitions + report.transitions
    return report


def _step(rules: Sequence[Rule], default_interval: timedelta) -> timedelta:
    return min((rule.interval or default_interval for rule in rules), default=default_interval)
