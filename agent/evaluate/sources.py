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


class MemorySource:
    """Rows held in memory, answered like the APIs would (rule tests, backtests, ``once``)."""

    def __init__(self, samples: Iterable[Sample]) -> None:
        by_metric: dict[str, list[Sample]] = defaultdict(list)
        for sample in samples:
            by_metric[sample.metric].append(sample)
        self._rows = {m: sorted(rows, key=_sort_key) for m, rows in by_metric.items()}
        self._keys = {m: [_sort_key(s) for s in rows] for m, rows in self._rows.items()}
        self._undated = {m: [s for s in rows if s.at is None] for m, rows in self._rows.items()}

    def fetch(self, request: DataRequest) -> list[Sample]:
        if isinstance(request, SeriesRequest):
            return list(self._rows.get("series", []))
        if isinstance(request, ExecutionsRequest):
            rows = self._between("executions", request.since, None)
            if request.project_id == "*":
                return rows
            return [s for s in rows if s.labels.get("project") == request.project_id]
        start = datetime.combine(request.start, time(), UTC)
        end = datetime.combine(request.end, time(), UTC) + timedelta(days=1)
        services = set(request.services)
        return [
            s
            for s in self._between(request.metric.value, start, end)
            if (request.api_key is None or s.labels.get("stack") == request.api_key)
            and (
                not services or s.labels.get("service", "") in services or "service" not in s.labels
            )
        ]

    def _between(self, metric: str, start: datetime, end: datetime | None) -> list[Sample]:
        rows = self._rows.get(metric, [])
        keys = self._keys.get(metric, [])
        low = bisect.bisect_left(keys, start.timestamp())
        high = len(keys) if end is None else bisect.bisect_left(keys, end.timestamp())
        return self._undated.get(metric, []) + rows[low:high]


def _sort_key(sample: Sample) -> float:
    return sample.at.timestamp() if sample.at else float("-inf")
