"""Query planning: every cycle, fetch each distinct API query once.

Rules that read the same endpoint with the same granularity, stack and extra
parameters share one request: its date range is the union of theirs and its
services the union of theirs, and each rule then keeps the rows it asked for.
100 rules on CDN status codes cost one Analytics job, not 100.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from agent.collect.models import AnalyticsQuery, Metric, Sample
from agent.evaluate.conditions import lookback
from agent.evaluate.rules import Rule


@dataclass(frozen=True)
class ExecutionsRequest:
    """The execution log of one Automations project (``"*"``: every project) since a time."""

    project_id: str
    since: datetime


@dataclass(frozen=True)
class SeriesRequest:
    """Offline series (rule tests and CSV backtests); never sent to an API."""


DataRequest = AnalyticsQuery | ExecutionsRequest | SeriesRequest


class DataSource(Protocol):
    def fetch(self, request: DataRequest) -> list[Sample]: ...


@dataclass
class Plan:
    requests: list[DataRequest] = field(default_factory=list)
    #: rule name → the planned requests whose rows it reads
    by_rule: dict[str, list[DataRequest]] = field(default_factory=dict)


def rule_requests(rule: Rule, now: datetime, extra: timedelta = timedelta(0)) -> list[DataRequest]:
    """What one rule needs at ``now`` (reaching ``extra`` further back), before merging."""
    query = rule.query
    if query.metric == "series":
        return [SeriesRequest()]
    start = now - lookback(rule) - extra
    if query.metric == "executions":
        since = start.replace(second=0, microsecond=0)
        return [ExecutionsRequest(project, since) for project in (query.projects or ("*",))]
    # one query per stack, alike but for the stack (worked out once: 1,000 rules over 20
    # stacks make 20,000 of them, at start-up and whenever a day begins)
    metric, duration = Metric(query.metric), query.effective_granularity
    first, last = start.date(), now.date()
    services, params = tuple(sorted(query.services)), tuple(query.params.items())
    return [
        AnalyticsQuery(metric, first, last, duration, services, stack, params)
        for stack in (query.stacks or (None,))
    ]


#: any moment: which queries a rule reads does not depend on when
_ANY_TIME = datetime(2000, 1, 1, tzinfo=UTC)


def query_keys(rule: Rule) -> list[tuple[object, ...]]:
    """The ``merge_key`` of each request the rule makes: the queries it shares with
    other rules, the same at any time."""
    return [merge_key(request) for request in rule_requests(rule, _ANY_TIME)]


#: how far back a query family's columns are kept: as far as its furthest reader looks,
#: and (service → how far) for the services whose readers all look back less far
Retention = tuple[timedelta, dict[str, timedelta]]


def retentions(
    rules: Iterable[Rule], keys: Mapping[str, Sequence[tuple[object, ...]]]
) -> dict[tuple[object, ...], Retention]:
    """Per merge key (``keys``: each rule's ``query_keys``), what the rules reading it
    look back over. A rule naming no services reads every series of its queries."""
    furthest: dict[tuple[object, ...], timedelta] = {}
    every: dict[tuple[object, ...], timedelta] = {}
    named: dict[tuple[object, ...], dict[str, timedelta]] = defaultdict(dict)
    for rule in rules:
        reach = lookback(rule)
        for key in keys[rule.name]:
            furthest[key] = max(furthest.get(key, reach), reach)
            if not rule.query.services:
                every[key] = max(every.get(key, reach), reach)
            for service in rule.query.services:
                named[key][service] = max(named[key].get(service, reach), reach)
    found: dict[tuple[object, ...], Retention] = {}
    for key, reach in furthest.items():
        shorter = {}
        for service, own in named[key].items():
            own = max(own, every.get(key, own))
            if own < reach:
                shorter[service] = own
        found[key] = (reach, shorter)
    return found


def covers(held: Retention, wanted: Retention) -> bool:
    """Do columns kept for ``held`` hold every bucket ``wanted`` reads?"""
    services = held[1].keys() | wanted[1].keys()
    return wanted[0] <= held[0] and all(
        wanted[1].get(s, wanted[0]) <= held[1].get(s, held[0]) for s in services
    )


_ROWS_WITHOUT_SERVICE = frozenset({Metric.USAGE, Metric.SUBSCRIPTION})


def merge_key(request: DataRequest) -> tuple[object, ...]:
    if isinstance(request, AnalyticsQuery):
        key = ("analytics", request.metric, request.duration, request.api_key, request.params)
        # Usage rows carry no service: merging services would add up different totals.
        if request.metric in _ROWS_WITHOUT_SERVICE:
            return (*key, request.services)
        return key
    if isinstance(request, ExecutionsRequest):
        return ("executions", request.project_id)
    return ("series",)


def _merge(requests: Sequence[DataRequest]) -> DataRequest:
    first = requests[0]
    if isinstance(first, AnalyticsQuery):
        queries = [r for r in requests if isinstance(r, AnalyticsQuery)]
        services = sorted({s for q in queries for s in q.services})
        return AnalyticsQuery(
            metric=first.metric,
            start=min(q.start for q in queries),
            end=max(q.end for q in queries),
            duration=first.duration,
            services=tuple(services),
            api_key=first.api_key,
            params=first.params,
        )
    if isinstance(first, ExecutionsRequest):
        since = min(r.since for r in requests if isinstance(r, ExecutionsRequest))
        return ExecutionsRequest(first.project_id, since)
    return first


def plan(rules: Iterable[Rule], now: datetime, extra: timedelta = timedelta(0)) -> Plan:
    wanted: dict[tuple[object, ...], list[DataRequest]] = defaultdict(list)
    rule_keys: dict[str, list[tuple[object, ...]]] = {}
    for rule in rules:
        keys = []
        for request in rule_requests(rule, now, extra):
            key = merge_key(request)
            wanted[key].append(request)
            keys.append(key)
        rule_keys[rule.name] = keys
    merged = {key: _merge(requests) for key, requests in wanted.items()}
    return Plan(
        requests=list(merged.values()),
        by_rule={name: [merged[key] for key in keys] for name, keys in rule_keys.items()},
    )


class Planner:
    """``plan`` for cycles a minute apart: an Analytics query spans dates, so a rule's
    requests change only when a day begins; while no rule's requests changed, the
    merged plan of the same rules is reused instead of being built again."""

    def __init__(self) -> None:
        #: the rules' names → (the rules, how far each looks back, what their requests
        #: depend on, the plan)
        self._plans: dict[
            tuple[str, ...], tuple[Sequence[Rule], list[timedelta], list[object], Plan]
        ] = {}

    def plan(self, rules: Sequence[Rule], now: datetime) -> Plan:
        names = tuple(rule.name for rule in rules)
        found = self._plans.get(names)
        if found is not None and not all(
            old is new for old, new in zip(found[0], rules, strict=True)
        ):
            found = None  # same names, other rules (a reload)
        spans = found[1] if found is not None else [lookback(rule) for rule in rules]
        depends = [_depends_on(r, now, span) for r, span in zip(rules, spans, strict=True)]
        if found is not None and found[2] == depends:
            return found[3]
        made = plan(rules, now)
        self._plans[names] = (list(rules), spans, depends, made)
        return made


def _depends_on(rule: Rule, now: datetime, span: timedelta) -> object:
    """What ``rule_requests(rule, now)`` depends on besides the rule itself (``span``: its
    ``lookback``)."""
    if rule.query.metric == "series":
        return None
    start = now - span
    if rule.query.metric == "executions":
        return start.replace(second=0, microsecond=0)
    return (start.date(), now.date())


def rows_for_rule(rule: Rule, fetched: Iterable[list[Sample]]) -> list[Sample]:
    """A rule's share of merged results: only the services it asked for."""
    services = set(rule.query.services)
    rows: list[Sample] = []
    for samples in fetched:
        rows.extend(
            s
            for s in samples
            if not services or "service" not in s.labels or s.labels["service"] in services
        )
    return rows
