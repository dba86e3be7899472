"""One evaluation cycle: plan the queries, fetch each once, judge every instance, step its state.

The engine keeps the alert instances in memory; the daemon persists them and feeds
them back through ``restore``. Time is always passed in, never read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import cast

import structlog

from agent.collect.block import SampleBlock, samples_of
from agent.collect.models import AnalyticsQuery, Sample
from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker
from agent.evaluate.conditions import (
    Bounds,
    BoundsShape,
    Judgement,
    bounds,
    bounds_shape,
    judge_all,
    lookback,
)
from agent.evaluate.history import QueryHistory
from agent.evaluate.instances import (
    CycleReport,
    Instance,
    RuleLabels,
    advance,
    advance_all,
    new_instance,
)
from agent.evaluate.planner import (
    DataRequest,
    DataSource,
    Planner,
    Retention,
    covers,
    merge_key,
    query_keys,
    retentions,
    rows_for_rule,
)
from agent.evaluate.rules import Rule
from agent.evaluate.shapes import ShapeWindows
from agent.evaluate.source_watch import SOURCE_DOWN, SourceWatch, source_instance
from agent.evaluate.sources import fetch_all
from agent.evaluate.state import Verdict
from agent.evaluate.values import (
    InstanceKey,
    SampleWindow,
    SharedValues,
    Window,
    split_instances,
)
from agent.redact import redact

__all__ = ["SOURCE_DOWN", "CycleReport", "Engine", "Instance"]

log = structlog.get_logger(__name__)

#: the window of an instance without rows
_NO_ROWS = SampleWindow(())
#: what ``Engine._roster`` keeps per rule
_Roster = tuple[
    dict[InstanceKey, "Window"], dict[InstanceKey, Instance], int, list[Instance], list["Window"]
]


class Engine:
    def __init__(
        self,
        rules: Sequence[Rule],
        source: DataSource,
        *,
        default_interval: timedelta = timedelta(minutes=1),
        link: str | None = None,
        watch_source: bool = True,
        stack_names: dict[str, str] | None = None,
    ) -> None:
        self.source = source
        self.stack_names = stack_names or {}
        self.default_interval = default_interval
        self.link = link
        self.watch_source = watch_source
        self.rules: dict[str, Rule] = {}
        self.instances: dict[str, dict[InstanceKey, Instance]] = {}
        self.next_due: dict[str, datetime] = {}
        self.source_state = source_instance()
        # The daemon evaluates groups of rules from several threads at once. Their rule
        # instances are disjoint; the source-down watcher is shared, so it is locked.
        self.source_lock = threading.Lock()
        self._source_watch = SourceWatch()
        self._planner = Planner()
        #: windows per query shape, shared by the rules of that shape and kept across cycles
        self._windows = ShapeWindows()
        self._values = SharedValues()
        #: rule name → (its windows, its instances, how many, the roster ``_roster`` made)
        self._rosters: dict[str, _Roster] = {}
        #: rule name → its value spec in canonical form (rules reading one value share it)
        self._spec_keys: dict[str, str] = {}
        #: rule name → what its bounds depend on; whether it judges anomalies (with trackers)
        self._bounds_shapes: dict[str, BoundsShape] = {}
        self._anomaly: dict[str, bool] = {}
        #: (moment, bounds shape) → the bounds, for this cycle
        self._bounds: dict[tuple[datetime, BoundsShape], Bounds] = {}
        #: the Analytics rows, as columns per query family (see ``history``)
        self.history: dict[tuple[object, ...], QueryHistory] = {}
        self.history_lock = threading.Lock()
        self._retention: dict[tuple[object, ...], Retention] = {}
        self.set_rules(rules)

    # -- rule set ---------------------------------------------------------------------------

    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Swap the rule set. A rule keeps its alert state unless what the state is about
        changed (``Rule.state_identity``); an anomaly baseline survives only an
        unchanged condition."""
        kept: dict[str, dict[InstanceKey, Instance]] = {}
        for rule in rules:
            previous = self.rules.get(rule.name)
            if previous is None or rule.name not in self.instances:
                continue
            if previous.state_identity() != rule.state_identity():
                continue
            kept[rule.name] = self.instances[rule.name]
            if previous.condition != rule.condition and isinstance(
                rule.condition, AnomalyCondition
            ):
                for instance in kept[rule.name].values():
                    instance.tracker = AnomalyTracker(rule.condition)
        self.rules = {rule.name: rule for rule in rules if rule.enabled}
        self.instances = {name: kept.get(name, {}) for name in self.rules}
        self.next_due = {name: when for name, when in self.next_due.items() if name in kept}
        with self.source_lock:  # queries of removed rules must not keep judging the source
            self._source_watch = SourceWatch()
        self._planner = Planner()
        self._windows = ShapeWindows()
        self._rosters = {}
        #: rule name → the labels its new instances build theirs from
        self._labels = {r.name: RuleLabels(r, self.stack_names) for r in self.rules.values()}
        self._spec_keys = {rule.name: rule.value.model_dump_json() for rule in self.rules.values()}
        self._bounds_shapes = {rule.name: bounds_shape(rule) for rule in self.rules.values()}
        self._anomaly = {
            rule.name: isinstance(rule.condition, AnomalyCondition) for rule in self.rules.values()
        }
        #: rule name → the merge keys of what it reads (the daemon groups rules by them);
        #: a thousand rules share a few dozen keys: each is kept once
        known: dict[tuple[object, ...], tuple[object, ...]] = {}
        self.query_keys = {
            rule.name: [known.setdefault(key, key) for key in query_keys(rule)]
            for rule in self.rules.values()
        }
        retention = retentions(self.rules.values(), self.query_keys)
        with self.history_lock:
            # columns trimmed to a shorter look-back than the new rules' are fetched anew
            was = self._retention
            self._retention = retention
            self.history = {
                k: h
                for k, h in self.history.items()
                if k in retention and covers(was.get(k, retention[k]), retention[k])
            }

    def take_over(self, previous: Engine) -> None:
        """Adopt the alert state of the engine this one replaces (a reload): kept exactly
        as ``previous.set_rules(<this engine's rules>)`` would keep it."""
        rules = list(self.rules.values())
        self.rules, self.instances = previous.rules, previous.instances
        self.next_due = previous.next_due
        self.source_state = previous.source_state
        self.set_rules(rules)

    def interval(self, rule: Rule) -> timedelta:
        return rule.interval or self.default_interval

    def due(self, now: datetime) -> list[Rule]:
        return [r for r in self.rules.values() if self.next_due.get(r.name, now) <= now]

    def all_instances(self) -> list[Instance]:
        return [i for group in self.instances.values() for i in group.values()]

    def restore(self, instance: Instance) -> None:
        """Put back an instance read from the state store (ignored if its rule is gone)."""
        if instance.rule in self.instances:
            instance.share_labels(self._labels[instance.rule])
            self.instances[instance.rule][instance.key] = instance
            self._rosters.pop(instance.rule, None)
        elif instance.rule == SOURCE_DOWN:
            self.source_state = instance

    # -- evaluation -------------------------------------------------------------------------

    def evaluate(self, now: datetime, rules: Iterable[Rule] | None = None) -> CycleReport:
        selected = list(self.rules.values()) if rules is None else list(rules)
        report = CycleReport(at=now)
        the_plan = self._planner.plan(selected, now)
        with self.history_lock:
            fetched = {request: self._still_needed(request) for request in the_plan.requests}
            held = self._held_until(fetched.values())
        columns: dict[DataRequest, QueryHistory] = {}

        def keep(
            sent: DataRequest, answer: Sequence[Sample] | Exception
        ) -> list[Sample] | Exception:
            """Rows go into the columns as each query completes; only what the row path
            needs stays (the first rows, so an empty answer still shows as empty)."""
            if isinstance(answer, Exception):
                return answer
            if not isinstance(sent, AnalyticsQuery):
                return samples_of(answer)
            block = SampleBlock.of(answer, sent.metric.value)
            with self.history_lock:
                history = self._store(sent, block, now)
            if history is None:
                return samples_of(answer)
            columns[sent] = history
            return block[:1]

        answers = fetch_all(self.source, list(dict.fromkeys(fetched.values())), held, keep)
        results = {request: answers[fetched[request]] for request in the_plan.requests}
        stored = {r: columns[sent] for r, sent in fetched.items() if sent in columns}
        report.requests = len(the_plan.requests)
        report.failed_requests = sum(1 for r in results.values() if isinstance(r, Exception))
        # The daemon's groups share queries: the columns are written and read under one lock.
        with self.history_lock:
            self._values.clear()
            self._bounds.clear()
            unstored = {r: rows for r, rows in results.items() if r not in stored}
            recent = _recent_rows(selected, the_plan.by_rule, unstored, now) if unstored else {}
            # (by identity: a plan's rules share its request objects, and hashing a query
            # for each of a thousand rules costs more than judging them)
            failures = {id(q): r for q, r in results.items() if isinstance(r, Exception)}
            columns_of = {id(q): history for q, history in stored.items()}
            self._windows.begin_cycle((the_plan, *((q, h, h.layout) for q, h in stored.items())))
            for rule in selected:
                windows = self._windows.kept(rule)
                if windows is not None:  # it reads the same queries and columns as before
                    self._judge_rule(rule, windows, now, report)
                    self.next_due[rule.name] = now + self.interval(rule)
                    continue
                requests = the_plan.by_rule[rule.name]
                failure = None
                if failures:
                    failure = next((failures[id(q)] for q in requests if id(q) in failures), None)
                histories = [columns_of.get(id(q)) for q in requests]
                if failure is not None:
                    message = redact(str(failure)) or type(failure).__name__
                    report.errors[rule.name] = message
                    self._fail_rule(rule, now, message, report)
                elif None not in histories:  # every query's rows are in columns
                    stored_all = cast(list[QueryHistory], histories)
                    windows = self._windows.of(rule, stored_all)
                    self._judge_rule(rule, windows, now, report)
                else:
                    rows = rows_for_rule(rule, [recent[q] for q in requests])
                    groups = split_instances(rows, rule.query.instance_labels)
                    windows = {key: SampleWindow(group) for key, group in groups.items()}
                    self._judge_rule(rule, windows, now, report)
                self.next_due[rule.name] = now + self.interval(rule)
            self._windows.end_cycle()
        if self.watch_source and the_plan.requests:
            with self.source_lock:
                change = self._source_watch.observe(self.source_state, results, now)
            if change is not None:
                report.transitions.append(change)
        return report

    def _still_needed(self, request: DataRequest) -> DataRequest:
        """The part of an Analytics query not already held: days that were final when
        fetched are not asked for again, so a cycle fetches today only."""
        if not isinstance(request, AnalyticsQuery):
            return request
        history = self.history.get(merge_key(request))
        if history is None or history.final_through is None or history.covered_from is None:
            return request
        if request.start < history.covered_from or history.final_through < request.start:
            return request
        start = min(history.final_through + timedelta(days=1), request.end)
        return replace(request, start=start)

    def _held_until(self, requests: Iterable[DataRequest]) -> dict[AnalyticsQuery, datetime]:
        """Per query merged into existing columns, the last bucket held: older rows of
        the answer would be ignored, so they need not even be parsed."""
        held: dict[AnalyticsQuery, datetime] = {}
        for request in requests:
            if not isinstance(request, AnalyticsQuery):
                continue
            history = self.history.get(merge_key(request))
            if history is None or not history.times or history.covered_from is None:
                continue
            if request.start >= history.covered_from:
                held[request] = datetime.fromtimestamp(history.times[-1], UTC)
        return held

    def _store(self, sent: AnalyticsQuery, rows: SampleBlock, now: datetime) -> QueryHistory | None:
        """Merge one Analytics answer into its columns; rows without a date (top URLs)
        are not series and stay on the row path (None)."""
        key = merge_key(sent)
        if rows.undated:
            self.history.pop(key, None)
            return None
        history = self.history.get(key)
        if history is None:
            history = self.history[key] = QueryHistory()
        history.merge(rows, sent.start, sent.end, now)
        retention = self._retention.get(key)
        if retention is not None:
            reach, by_service = retention
            history.forget_before(now - reach, {s: now - r for s, r in by_service.items()})
        return history

    def _judge_rule(
        self, rule: Rule, windows: dict[InstanceKey, Window], now: datetime, report: CycleReport
    ) -> None:
        instances, in_order = self._roster(rule, windows)
        shape = self._bounds_shapes.get(rule.name) or bounds_shape(rule)
        at = self._bounds.get((now, shape))
        if at is None:  # (rules of one shape share them, in a cycle)
            at = self._bounds[(now, shape)] = bounds(rule, now, shape)
        trackers = [i.tracker for i in instances] if self._anomaly.get(rule.name) else []
        spec_key = self._spec_keys.get(rule.name) or rule.value.model_dump_json()
        judged = judge_all(rule, in_order, at, trackers, self._values, spec_key)
        advance_all(rule, instances, judged, now, report, link=self.link)

    def _roster(
        self, rule: Rule, windows: dict[InstanceKey, Window]
    ) -> tuple[list[Instance], list[Window]]:
        """The rule's instances in key order and each one's window: those with rows, those
        known before, those its stacks promise. Kept while the windows and the instances
        are the same (instances change only here, in ``_fail_rule``, which adds some, and
        in ``restore``, which drops the roster)."""
        known = self.instances[rule.name]
        kept = self._rosters.get(rule.name)
        if kept is not None and kept[0] is windows and kept[1] is known and kept[2] == len(known):
            return kept[3], kept[4]
        labels = rule.query.instance_labels
        expected: set[InstanceKey] = set()
        if labels == ("stack",):
            expected = {(("stack", stack),) for stack in rule.query.stacks}
        elif not labels:
            expected = {()}
        instances, in_order = [], []
        for key in sorted(set(windows) | set(known) | expected):
            instance = known.get(key)
            if instance is None:
                instance = known[key] = new_instance(rule, key, self._labels[rule.name])
            instances.append(instance)
            in_order.append(windows.get(key, _NO_ROWS))
        self._rosters[rule.name] = (windows, known, len(known), instances, in_order)
        return instances, in_order

    def _fail_rule(self, rule: Rule, now: datetime, message: str, report: CycleReport) -> None:
        known = self.instances[rule.name]
        if not known:
            keys = [(("stack", s),) for s in rule.query.stacks] if rule.query.stacks else [()]
            for key in keys:
                known[key] = new_instance(rule, key, self._labels[rule.name])
        if rule.on_error == "keep":
            return
        error = Judgement(Verdict.ERROR, None)
        for instance in known.values():
            advance(rule, instance, error, now, report, link=self.link, error=message)


def _recent_rows(
    rules: Sequence[Rule],
    by_rule: dict[str, list[DataRequest]],
    results: Mapping[DataRequest, list[Sample] | Exception],
    now: datetime,
) -> dict[DataRequest, list[Sample]]:
    """Queries return whole days: keep, per query, only what its rules look back to.

    One pass per query, so many rules over the same query do not each scan its days.
    """
    earliest: dict[DataRequest, datetime] = {}
    for rule in rules:
        since = now - lookback(rule)
        for request in by_rule[rule.name]:
            earliest[request] = min(earliest.get(request, since), since)
    recent: dict[DataRequest, list[Sample]] = {}
    for request, rows in results.items():
        if isinstance(rows, list) and request in earliest:
            cutoff = earliest[request]
            # (rows after now exist only in backtests, which replay a fetched history)
            recent[request] = [s for s in rows if s.at is None or cutoff < s.at <= now]
    return recent
