"""Data sources for the engine: the live APIs, and rows held in memory (tests, backtests)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Protocol

from agent.collect.models import AnalyticsQuery, Sample
from agent.evaluate.planner import DataRequest, ExecutionsRequest, SeriesRequest


class AnalyticsFetcher(Protocol):
    def fetch(self, query: AnalyticsQuery) -> list[Sample]: ...


class _Project(Protocol):
    @property
    def id(self) -> str: ...


class ExecutionsFetcher(Protocol):
    def list_projects(self) -> Sequence[_Project]: ...

    def execution_samples(self, project_id: str, since: datetime) -> list[Sample]: ...


class LiveSource:
    """Answers planned requests from the Contentstack clients."""

    def __init__(
        self,
        analytics: AnalyticsFetcher,
        executions: ExecutionsFetcher,
        projects: Iterable[str] = (),
    ) -> None:
        self.analytics = analytics
        self.executions = executions
        self.projects = list(projects)

    def fetch(self, request: DataRequest) -> list[Sample]:
        if isinstance(request, AnalyticsQuery):
            return self.analytics.fetch(request)
        if isinstance(request, ExecutionsRequest):
            if request.project_id != "*":
                return self.executions.execution_samples(request.project_id, request.since)
            projects = self.projects or [p.id for p in self.executions.list_projects()]
            rows: list[Sample] = []
            for project in projects:
                rows.extend(self.executions.execution_samples(project, request.since))
            return rows
        raise ValueError("series data exists only in rule tests and CSV backtests")


class TimeIndex:
    """Rows sorted by time for range look-ups; rows without a date match every range."""

    def __init__(self, rows: Iterable[Sample]) -> None:
        undated: list[Sample] = []
        dated: list[Sample] = []
        for row in rows:
            (dated if row.at is not None else undated).append(row)
        dated.sort(key=_timestamp)
        self._undated = undated
        self._dated = dated
        self._keys = [_timestamp(row) for row in dated]

    def between(self, start: datetime | None, end: datetime | None = None) -> list[Sample]:
        """Rows dated in ``[start, end)`` (an open side when None), plus undated rows."""
        low = 0 if start is None else bisect.bisect_left(self._keys, start.timestamp())
        high = len(self._keys) if end is None else bisect.bisect_left(self._keys, end.timestamp())
        return self._undated + self._dated[low:high]


def _timestamp(row: Sample) -> float:
    assert row.at is not None
    return row.at.timestamp()


class MemorySource:
    """Rows held in memory, answered like the APIs would (rule tests, backtests).

    Indexed by metric, stack and service, then by time, so a backtest's thousands of
    cycles each pay for the rows they ask for, not for the whole history.
    """

    ANY = "*"

    def __init__(self, samples: Iterable[Sample]) -> None:
        groups: dict[tuple[str, str, str], list[Sample]] = defaultdict(list)
        for sample in samples:
            stack = sample.labels.get("stack", "")
            service = sample.labels.get("service", "")
            for stack_key in {stack, self.ANY}:
                for service_key in {service, self.ANY}:
                    groups[(sample.metric, stack_key, service_key)].append(sample)
        self._index = {key: TimeIndex(rows) for key, rows in groups.items()}
        self._empty = TimeIndex([])

    def _rows(
        self, metric: str, start: datetime | None, end: datetime | None, stack: str, service: str
    ) -> list[Sample]:
        return self._index.get((metric, stack, service), self._empty).between(start, end)

    def fetch(self, request: DataRequest) -> list[Sample]:
        if isinstance(request, SeriesRequest):
            return self._rows("series", None, None, self.ANY, self.ANY)
        if isinstance(request, ExecutionsRequest):
            rows = self._rows("executions", request.since, None, self.ANY, self.ANY)
            if request.project_id == "*":
                return rows
            return [s for s in rows if s.labels.get("project") == request.project_id]
        start = datetime.combine(request.start, time(), UTC)
        end = datetime.combine(request.end, time(), UTC) + timedelta(days=1)
        stack = request.api_key or self.ANY
        metric = request.metric.value
        if not request.services:
            return self._rows(metric, start, end, stack, self.ANY)
        # rows that carry no service (usage totals) answer any services filter
        rows = self._rows(metric, start, end, stack, "")
        for service in request.services:
            rows.extend(self._rows(metric, start, end, stack, service))
        return rows
