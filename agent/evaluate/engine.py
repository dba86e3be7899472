"""One evaluation cycle: plan the queries, fetch each once, judge every instance, step its state.

The engine keeps the alert instances in memory; the daemon persists them and feeds
them back through ``restore``. Time is always passed in, never read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from agent.collect.errors import AuthenticationFailed
from agent.collect.models import AnalyticsQuery, Sample
from agent.evaluate.alerts import AlertState, Transition, fingerprint
from agent.evaluate.annotate import render
from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker
from agent.evaluate.conditions import Judgement, judge, lookback
from agent.evaluate.history import QueryHistory, Series, SeriesWindow
from agent.evaluate.planner import (
    DataRequest,
    DataSource,
    merge_key,
    plan,
    rows_for_rule,
    rule_requests,
)
from agent.evaluate.rules import Rule
from agent.evaluate.sources import fetch_all
from agent.evaluate.state import InstanceState, Verdict, step
from agent.evaluate.values import InstanceKey, SampleWindow, Window, split_instances
from agent.redact import redact

log = structlog.get_logger(__name__)

SOURCE_DOWN = "ContentstackSourceDown"
#: the smallest step of a datetime: how far a late judgement of the source is moved past the last.
_TICK = timedelta(microseconds=1)
#: any moment: which queries a rule reads does not depend on when
_ANY_TIME = datetime(2000, 1, 1, tzinfo=UTC)

#: template variables that only some conditions fill in; None ("n/a") elsewhere
_DETAIL_NAMES = (
    "expected",
    "expected_lower",
    "expected_upper",
    "anomaly_score",
    "current",
    "reference",
)


@dataclass
class Instance:
    rule: str
    key: InstanceKey
    labels: dict[str, str]
    fingerprint: str
    state: InstanceState = field(default_factory=InstanceState)
    tracker: AnomalyTracker | None = None
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class CycleReport:
    at: datetime
    transitions: list[Transition] = field(default_factory=list)
    #: rule name → why it could not be evaluated
    errors: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    failed_requests: int = 0


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
        self.source_state = Instance(
            SOURCE_DOWN,
            (),
            {"alertname": SOURCE_DOWN, "severity": "critical"},
            fingerprint(SOURCE_DOWN, {}),
        )
        # The daemon evaluates groups of rules from several threads at once. Their rule
        # instances are disjoint; the source-down watcher is shared, so it is locked, and it
        # judges the latest outcome of every query family, not just one group's queries
        # (else a group of failing executions queries and a group of healthy analytics
        # queries would flap the meta-alert on every other cycle).
        self.source_lock = threading.Lock()
        self._source_outcomes: dict[tuple[object, ...], tuple[bool, bool, bool]] = {}
        #: the Analytics rows, as columns per query family (see ``history``)
        self.history: dict[tuple[object, ...], QueryHistory] = {}
        self.history_lock = threading.Lock()
        self._retention: dict[tuple[object, ...], timedelta] = {}
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
            self._source_outcomes = {}
        # columns are kept as far back as the rules that read them look
        retention: dict[tuple[object, ...], timedelta] = {}
        for rule in self.rules.values():
            for request in rule_requests(rule, _ANY_TIME):
                key = merge_key(request)
                retention[key] = max(retention.get(key, timedelta(0)), lookback(rule))
        with self.history_lock:
            self._retention = retention
            self.history = {k: h for k, h in self.history.items() if k in retention}

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
            self.instances[instance.rule][instance.key] = instance
        elif instance.rule == SOURCE_DOWN:
            self.source_state = instance

    # -- evaluation -------------------------------------------------------------------------

    def evaluate(self, now: datetime, rules: Iterable[Rule] | None = None) -> CycleReport:
        selected = list(self.rules.values()) if rules is None else list(rules)
        report = CycleReport(at=now)
        the_plan = plan(selected, now)
        with self.history_lock:
            fetched = {request: self._still_needed(request) for request in the_plan.requests}
            held = self._held_until(fetched.values())
        columns: dict[DataRequest, QueryHistory] = {}

        def keep(sent: DataRequest, answer: list[Sample] | Exception) -> list[Sample] | Exception:
            """Rows go into the columns as each query completes; only what the row path
            needs stays (the first rows, so an empty answer still shows as empty)."""
            if isinstance(answer, Exception) or not isinstance(sent, AnalyticsQuery):
                return answer
            with self.history_lock:
                history = self._store(sent, answer, now)
            if history is None:
                return answer
            columns[sent] = history
            return answer[:1]

        answers = fetch_all(self.source, list(dict.fromkeys(fetched.values())), held, keep)
        results = {request: answers[fetched[request]] for request in the_plan.requests}
        stored = {r: columns[sent] for r, sent in fetched.items() if sent in columns}
        report.requests = len(the_plan.requests)
        report.failed_requests = sum(1 for r in results.values() if isinstance(r, Exception))
        # The daemon's groups share queries: the columns are written and read under one lock.
        with self.history_lock:
            unstored = {r: rows for r, rows in results.items() if r not in stored}
            recent = _recent_rows(selected, the_plan.by_rule, unstored, now)
            for rule in selected:
                requests = the_plan.by_rule[rule.name]
                failure = next(
                    (r for q in requests if isinstance(r := results[q], Exception)), None
                )
                if failure is not None:
                    message = redact(str(failure)) or type(failure).__name__
                    report.errors[rule.name] = message
                    self._fail_rule(rule, now, message, report)
                elif all(q in stored for q in requests):
                    windows = _series_windows(rule, [stored[q] for q in requests])
                    self._judge_rule(rule, windows, now, report)
                else:
                    rows = rows_for_rule(rule, [recent[q] for q in requests])
                    groups = split_instances(rows, rule.query.instance_labels)
                    windows = {key: SampleWindow(group) for key, group in groups.items()}
                    self._judge_rule(rule, windows, now, report)
                self.next_due[rule.name] = now + self.interval(rule)
        if self.watch_source and the_plan.requests:
            with self.source_lock:
                self._watch_source(results, now, report)
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

    def _store(
        self, sent: AnalyticsQuery, rows: list[Sample], now: datetime
    ) -> QueryHistory | None:
        """Merge one Analytics answer into its columns; rows without a date (top URLs)
        are not series and stay on the row path (None)."""
        key = merge_key(sent)
        if any(row.at is None for row in rows):
            self.history.pop(key, None)
            return None
        history = self.history.get(key)
        if history is None:
            history = self.history[key] = QueryHistory()
        history.merge(rows, sent.start, sent.end, now)
        retention = self._retention.get(key)
        if retention is not None:
            history.forget_before((now - retention).date())
        return history

    def _judge_rule(
        self, rule: Rule, windows: dict[InstanceKey, Window], now: datetime, report: CycleReport
    ) -> None:
        labels = rule.query.instance_labels
        known = self.instances[rule.name]
        expected: set[InstanceKey] = set()
        if labels == ("stack",):
            expected = {(("stack", stack),) for stack in rule.query.stacks}
        elif not labels:
            expected = {()}
        empty = SampleWindow([])
        for key in sorted(set(windows) | set(known) | expected):
            instance = known.get(key) or self._new_instance(rule, key)
            known[key] = instance
            judgement = judge(rule, windows.get(key, empty), now, instance.tracker)
            self._advance(rule, instance, judgement, now, report)

    def _fail_rule(self, rule: Rule, now: datetime, message: str, report: CycleReport) -> None:
        known = self.instances[rule.name]
        if not known:
            keys = [(("stack", s),) for s in rule.query.stacks] if rule.query.stacks else [()]
            for key in keys:
                known[key] = self._new_instance(rule, key)
        if rule.on_error == "keep":
            return
        for instance in known.values():
            self._advance(rule, instance, Judgement(Verdict.ERROR, None), now, report, message)

    def _advance(
        self,
        rule: Rule,
        instance: Instance,
        judgement: Judgement,
        now: datetime,
        report: CycleReport,
        error: str | None = None,
    ) -> None:
        verdict = judgement.verdict
        if verdict is Verdict.NODATA:
            if rule.on_nodata == "keep":
                return
            verdict = {"ok": Verdict.CLEARED, "alerting": Verdict.BREACHED}.get(
                rule.on_nodata, Verdict.NODATA
            )
        previous = instance.state
        instance.state = step(
            previous,
            verdict,
            now,
            value=judgement.value,
            for_=rule.for_,
            clear_for=rule.clear_for,
            error=error,
        )
        if instance.state.state != previous.state:
            instance.annotations = self._annotations(rule, instance, judgement, error)
            report.transitions.append(self._transition(rule, instance, previous.state, judgement))
        elif (
            instance.state.state in (AlertState.PENDING, AlertState.FIRING)
            and judgement.value is not None
            and instance.state.unavailable_since is None
        ):
            # the summary tells today's value, not the one of the moment it fired
            instance.annotations = self._annotations(rule, instance, judgement, error)
        elif instance.state.unavailable_since != previous.unavailable_since:
            # still firing, not re-announced: the blind spot shows on the instance only
            blind = instance.state.unavailable_since
            instance.annotations = {
                k: v for k, v in instance.annotations.items() if k != "data_unavailable"
            }
            if blind is not None:
                instance.annotations["data_unavailable"] = (
                    f"data unavailable since {blind.isoformat()}" + (f": {error}" if error else "")
                )

    def _new_instance(self, rule: Rule, key: InstanceKey) -> Instance:
        labels = {**rule.labels, **{k: v for k, v in key if v}}
        if labels.get("stack") in self.stack_names:
            labels["stack_name"] = self.stack_names[labels["stack"]]
        labels["alertname"] = rule.name
        labels["severity"] = rule.severity
        tracker = (
            AnomalyTracker(rule.condition) if isinstance(rule.condition, AnomalyCondition) else None
        )
        return Instance(rule.name, key, labels, fingerprint(rule.name, labels), tracker=tracker)

    def _annotations(
        self, rule: Rule, instance: Instance, judgement: Judgement, error: str | None
    ) -> dict[str, str]:
        state = instance.state
        context: dict[str, Any] = {
            "rule": rule.name,
            "state": state.state.value,
            "value": judgement.value,
            "threshold": judgement.threshold,
            "labels": instance.labels,
            "stack": instance.labels.get("stack", ""),
            "service": instance.labels.get("service", ""),
            "window": rule.query.window,
            "severity": rule.severity,
            "link": rule.link or self.link or "",
            "runbook": rule.runbook or "",
            "error": error or "",
            **dict.fromkeys(_DETAIL_NAMES),
            **judgement.details,
        }
        annotations = {
            "summary": render(rule.summary, context),
            "description": render(rule.description, context),
            **judgement.details,
        }
        if context["link"]:
            annotations["link"] = context["link"]
        if rule.runbook:
            annotations["runbook"] = rule.runbook
        if error:
            annotations["error"] = error
        return {k: v for k, v in annotations.items() if v}

    def _transition(
        self, rule: Rule, instance: Instance, previous: AlertState, judgement: Judgement
    ) -> Transition:
        state = instance.state
        return Transition(
            rule=rule.name,
            fingerprint=instance.fingerprint,
            labels=dict(instance.labels),
            previous=previous,
            state=state.state,
            at=state.evaluated_at or state.since or datetime.min,
            value=judgement.value,
            threshold=judgement.threshold,
            annotations=dict(instance.annotations),
            firing_since=state.firing_since,
            routes=rule.routes,
            actions=rule.actions,
        )

    def _watch_source(
        self,
        results: dict[DataRequest, list[Sample] | Exception],
        now: datetime,
        report: CycleReport,
    ) -> None:
        """One meta-alert when the data source itself is down, instead of a storm of errors."""
        failures = [r for r in results.values() if isinstance(r, Exception)]
        for request, result in results.items():
            # (failed, is analytics, empty): the latest outcome of each query family
            self._source_outcomes[merge_key(request)] = (
                isinstance(result, Exception),
                isinstance(request, AnalyticsQuery),
                isinstance(result, list) and not result,
            )
        outcomes = list(self._source_outcomes.values())
        failed = sum(1 for f, _, _ in outcomes if f)
        analytics = [empty for f, is_analytics, empty in outcomes if is_analytics]
        # An empty execution log is normal; an organization with no traffic rows at all is not.
        empty = bool(analytics) and all(analytics)
        # A rejected credential fails every query sooner or later: down at the first one.
        refused = [f for f in failures if isinstance(f, AuthenticationFailed)]
        down = bool(refused) or (failed > 0 and failed == len(outcomes)) or (failed == 0 and empty)
        if down and failures:
            first = (refused or failures)[0]
            reason = redact(str(first)) or type(first).__name__
        else:
            reason = "no data for the whole organization"
        instance = self.source_state
        previous = instance.state
        # Groups run at once and a slow cycle may finish after one that began later, so its
        # own ``now`` can lie before the watcher's last judgement. Stamped that early, a
        # "back" would be dropped by notify as older than the "down" it follows (a resolve
        # lost for good), and two judgements committed in reverse order would leave notify
        # on the older one. Each judgement is therefore stamped strictly after the last:
        # notify keeps the latest decision whatever order the cycles commit in.
        last = previous.evaluated_at
        if last is not None and now <= last:
            now = last + _TICK
        instance.state = step(previous, Verdict.BREACHED if down else Verdict.CLEARED, now)
        if instance.state.state != previous.state:
            summary = (
                f"Contentstack data source down: {reason}"
                if down
                else "Contentstack data source is back"
            )
            instance.annotations = {"summary": summary}
            report.transitions.append(
                Transition(
                    rule=SOURCE_DOWN,
                    fingerprint=instance.fingerprint,
                    labels=dict(instance.labels),
                    previous=previous.state,
                    state=instance.state.state,
                    at=now,
                    value=float(len(failures)),
                    annotations=dict(instance.annotations),
                    firing_since=instance.state.firing_since,
                )
            )


def _series_windows(rule: Rule, histories: list[QueryHistory]) -> dict[InstanceKey, Window]:
    """Per alert instance, its series in each of the rule's queries."""
    parts: dict[InstanceKey, list[tuple[QueryHistory, list[Series]]]] = {}
    for history in histories:
        split = history.split(rule.query.instance_labels, tuple(sorted(rule.query.services)))
        for key, series in split.items():
            parts.setdefault(key, []).append((history, series))
    return {key: SeriesWindow(found) for key, found in parts.items()}


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
