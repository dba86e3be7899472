"""Data sources for the engine: the live APIs, and rows held in memory (tests, backtests)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Protocol

from agent.collect.models import AnalyticsQuery, Sample
from agent.evaluate.planner import DataRequest, ExecutionsRequest, SeriesRequest
from agent.evaluate.values import TimeIndex


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
    """Rows held in memory, answered like the APIs would (rule tests, backtests)."""

    def __init__(self, samples: Iterable[Sample]) -> None:
        by_metric: dict[str, list[Sample]] = defaultdict(list)
        for sample in samples:
            by_metric[sample.metric].append(sample)
        self._index = {metric: TimeIndex(rows) for metric, rows in by_metric.items()}
        self._empty = TimeIndex([])

    def fetch(self, request: DataRequest) -> list[Sample]:
        if isinstance(request, SeriesRequest):
            return self._index.get("series", self._empty).between(None)
        if isinstance(request, ExecutionsRequest):
            rows = self._index.get("executions", self._empty).between(request.since)
            if request.project_id == "*":
                return rows
            return [s for s in rows if s.labels.get("project") == request.project_id]
        start = datetime.combine(request.start, time(), UTC)
        end = datetime.combine(request.end, time(), UTC) + timedelta(days=1)
        services = set(request.services)
        return [
            s
            for s in self._index.get(request.metric.value, self._empty).between(start, end)
            if (request.api_key is None or s.labels.get("stack") == request.api_key)
            and (
                not services or s.labels.get("service", "") in services or "service" not in s.labels
            )
        ]
