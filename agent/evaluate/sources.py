"""Data sources for the engine: the live APIs, and rows held in memory (tests, backtests)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Protocol, runtime_checkable

import structlog

from agent.collect.analytics import AnswerHook as AnalyticsAnswerHook
from agent.collect.block import samples_of
from agent.collect.errors import ContentstackError
from agent.collect.models import AnalyticsQuery, Sample
from agent.evaluate.planner import (
    DataRequest,
    DataSource,
    ExecutionsRequest,
    SeriesRequest,
    merge_key,
)

log = structlog.get_logger(__name__)


class AnalyticsFetcher(Protocol):
    def fetch(self, query: AnalyticsQuery) -> list[Sample]: ...

    def fetch_many(
        self,
        queries: Sequence[AnalyticsQuery],
        newer_than: Mapping[AnalyticsQuery, datetime] | None = None,
        on_answer: AnalyticsAnswerHook | None = None,
    ) -> dict[AnalyticsQuery, list[Sample] | Exception]: ...


class _Named(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def title(self) -> str: ...


class ExecutionsFetcher(Protocol):
    def list_projects(self) -> Sequence[_Named]: ...

    def list_automations(self, project_id: str) -> Sequence[_Named]: ...

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
        #: project id → automation id → title; fetched once, again when an id is new
        self._titles: dict[str, dict[str, str]] = {}

    def fetch_many(
        self,
        requests: Sequence[DataRequest],
        newer_than: Mapping[AnalyticsQuery, datetime] | None = None,
        on_answer: AnswerHook | None = None,
    ) -> dict[DataRequest, list[Sample] | Exception]:
        """A cycle's requests: the Analytics jobs as one batch (submitted together, polled
        together), then the execution logs; an error answers its own request only."""
        queries = [r for r in requests if isinstance(r, AnalyticsQuery)]
        results: dict[DataRequest, list[Sample] | Exception] = {}
        if queries:
            batch = self.analytics.fetch_many(queries, newer_than, on_answer)
            for query, answer in batch.items():
                results[query] = answer
        for request in requests:
            if not isinstance(request, AnalyticsQuery):
                answer = fetch_or_error(self, request)
                results[request] = on_answer(request, answer) if on_answer else answer
        return results

    def fetch(self, request: DataRequest) -> list[Sample]:
        if isinstance(request, AnalyticsQuery):
            return self.analytics.fetch(request)
        if isinstance(request, ExecutionsRequest):
            if request.project_id != "*":
                projects = [request.project_id]
            else:
                projects = self.projects or [p.id for p in self.executions.list_projects()]
            rows: list[Sample] = []
            for project in projects:
                found = self.executions.execution_samples(project, request.since)
                rows.extend(self._with_titles(project, found))
            return rows
        raise ValueError("series data exists only in rule tests and CSV backtests")

    def _with_titles(self, project: str, rows: list[Sample]) -> list[Sample]:
        """Label executions with their automation's title: alerts should say "Purge CDN
        cache", not a 32-hex id. A failure to list titles never fails the query."""
        titles = self._titles.get(project, {})
        if any(row.labels.get("automation") not in titles for row in rows):
            try:
                listed = self.executions.list_automations(project)
            except ContentstackError as error:
                log.warning("automation titles unavailable", project=project, error=str(error))
            else:
                titles = {automation.id: automation.title for automation in listed}
                # ids the list does not know (deleted automations) are not asked for again
                for row in rows:
                    titles.setdefault(row.labels.get("automation", ""), "")
                self._titles[project] = titles
        return [
            replace(row, labels={**row.labels, "automation_title": title})
            if (title := titles.get(row.labels.get("automation", ""), ""))
            else row
            for row in rows
        ]


@runtime_checkable
class BatchSource(Protocol):
    def fetch_many(
        self,
        requests: Sequence[DataRequest],
        newer_than: Mapping[AnalyticsQuery, datetime] | None = None,
        on_answer: AnswerHook | None = None,
    ) -> dict[DataRequest, list[Sample] | Exception]: ...


#: receives each request's answer once complete (an Analytics answer from the live source
#: is a ``SampleBlock``: its rows are built on demand); returns what of it to keep
AnswerHook = Callable[[DataRequest, Sequence[Sample] | Exception], list[Sample] | Exception]


def fetch_or_error(source: DataSource, request: DataRequest) -> list[Sample] | Exception:
    try:
        return source.fetch(request)
    except Exception as error:  # one failing query must not stop the others
        log.warning("fetch failed", request=type(request).__name__, error=str(error))
        return error


def fetch_all(
    source: DataSource,
    requests: Sequence[DataRequest],
    newer_than: Mapping[AnalyticsQuery, datetime] | None = None,
    on_answer: AnswerHook | None = None,
) -> dict[DataRequest, list[Sample] | Exception]:
    """Every request's rows or error, in one batch when the source can batch.
    ``newer_than``: rows the caller holds already, which a source may leave out;
    ``on_answer``: sees each answer as it completes and says what to keep of it."""
    if isinstance(source, BatchSource):
        return source.fetch_many(requests, newer_than, on_answer)
    results: dict[DataRequest, list[Sample] | Exception] = {}
    for request in requests:
        answer = fetch_or_error(source, request)
        results[request] = on_answer(request, answer) if on_answer else answer
    return results


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

    def fetch_many(
        self,
        requests: Sequence[DataRequest],
        newer_than: Mapping[AnalyticsQuery, datetime] | None = None,
        on_answer: AnswerHook | None = None,
    ) -> dict[DataRequest, list[Sample] | Exception]:
        """As the live batch does: an Analytics query's rows dated before ``newer_than``
        (buckets the engine holds already) are left out, so each cycle of a backtest
        merges the new rows only instead of the whole day again."""
        held = newer_than or {}
        results: dict[DataRequest, list[Sample] | Exception] = {}
        for request in requests:
            try:
                answer: list[Sample] | Exception = (
                    self._analytics(request, held.get(request))
                    if isinstance(request, AnalyticsQuery)
                    else self.fetch(request)
                )
            except Exception as error:  # one failing query must not stop the others
                answer = error
            results[request] = on_answer(request, answer) if on_answer else answer
        return results

    def fetch(self, request: DataRequest) -> list[Sample]:
        if isinstance(request, SeriesRequest):
            return self._rows("series", None, None, self.ANY, self.ANY)
        if isinstance(request, ExecutionsRequest):
            rows = self._rows("executions", request.since, None, self.ANY, self.ANY)
            if request.project_id == "*":
                return rows
            return [s for s in rows if s.labels.get("project") == request.project_id]
        return self._analytics(request, None)

    def _analytics(self, request: AnalyticsQuery, newer_than: datetime | None) -> list[Sample]:
        start = datetime.combine(request.start, time(), UTC)
        if newer_than is not None:
            start = max(start, newer_than)
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


class PrefetchedSource:
    """Answers from rows fetched once, up front, over a longer span (``once`` replays the
    last minutes so pending timers are honoured without waiting). A request is answered
    by the prefetched request it merges with; a failed fetch fails it again. The requests
    are fetched as one batch where the source batches (Analytics jobs run together).

    Answers are kept as they come (an Analytics answer is a ``SampleBlock``: a day of
    every stack's rows as ``Sample`` objects would be most of ``once``'s memory), and
    handed to the engine's hook as they are, so its columns read the blocks' arrays."""

    def __init__(self, source: DataSource, requests: Iterable[DataRequest]) -> None:
        self._answers: dict[tuple[object, ...], Sequence[Sample] | Exception] = {}

        def hold(request: DataRequest, answer: Sequence[Sample] | Exception) -> list[Sample]:
            self._answers[merge_key(request)] = answer
            return []  # (kept here, not in the batch's results)

        fetch_all(source, list(requests), on_answer=hold)  # errors are reported per rule

    def fetch_many(
        self,
        requests: Sequence[DataRequest],
        newer_than: Mapping[AnalyticsQuery, datetime] | None = None,
        on_answer: AnswerHook | None = None,
    ) -> dict[DataRequest, list[Sample] | Exception]:
        """Each request's prefetched answer, through ``on_answer`` when given (rows the
        caller holds are not left out: its columns take the overlap as it is)."""
        results: dict[DataRequest, list[Sample] | Exception] = {}
        for request in requests:
            answer = self._answer(request)
            if on_answer is not None:
                results[request] = on_answer(request, answer)
            else:
                results[request] = answer if isinstance(answer, Exception) else samples_of(answer)
        return results

    def fetch(self, request: DataRequest) -> list[Sample]:
        answer = self._answer(request)
        if isinstance(answer, Exception):
            raise answer
        return samples_of(answer)

    def _answer(self, request: DataRequest) -> Sequence[Sample] | Exception:
        answer = self._answers.get(merge_key(request))
        if answer is None:
            return LookupError("request was not prefetched")
        return answer
