"""What the collectors produce and what they are asked for.

These plain dataclasses are the contract between ``collect`` (API clients),
``evaluate`` (rules) and the simulator's tests. API payloads are parsed into
``Sample`` at the edge; nothing past the clients sees raw JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class Metric(StrEnum):
    """Analytics API v2 metric endpoints (value = path segment after ``/analytics/v2/``)."""

    HTTP_STATUSES = "http-statuses"
    CACHE = "hit-miss-ratio"
    USAGE = "usage"
    DEVICES = "devices"
    SDK = "sdk"
    TOP_URLS = "url"
    SUBSCRIPTION = "subscription"


#: The execution log of the Automations Management API, as a pseudo-metric for rules.
EXECUTIONS = "executions"

GRANULARITIES = ("sec", "minute", "hour", "day", "week", "month", "year", "historic")
SERVICES = ("cma", "ui", "cdn", "graphql", "images", "assets", "automations", "launch")

#: Endpoints whose job results come in pages.
PAGINATED_METRICS = frozenset({Metric.DEVICES, Metric.SDK, Metric.TOP_URLS})


@dataclass(frozen=True)
class AnalyticsQuery:
    """One Analytics API request, hashable so the planner can fetch each distinct one once.

    ``start``/``end`` are inclusive calendar dates (UTC). ``params`` carries the
    endpoint-specific extras (``httpStatusCode``, ``cache``, ``includeCount``,
    ``orderBy``, ``limit``, ``includeTotalCount``, ``projectUid``, ...) as sorted pairs.
    """

    metric: Metric
    start: date
    end: date
    duration: str | None = None
    services: tuple[str, ...] = ()
    api_key: str | None = None
    params: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"query end {self.end} is before start {self.start}")
        if self.duration is not None and self.duration not in GRANULARITIES:
            raise ValueError(f"unknown granularity {self.duration!r}")
        unknown = [s for s in self.services if s not in SERVICES]
        if unknown:
            raise ValueError(f"unknown services {unknown}")
        object.__setattr__(self, "params", tuple(sorted(self.params)))


@dataclass(frozen=True)
class ExecutionsQuery:
    """Read the execution log of one Automations project."""

    project_id: str
    limit: int = 100


@dataclass(frozen=True)
class Sample:
    """One parsed row.

    ``at`` is the bucket start in UTC (None for rows without a date, e.g. top URLs).
    ``labels`` name the row's dimensions: ``service``, ``status``, ``cache``,
    ``device``, ``sdk``, ``url``, ``stack`` (the query's API key), or for executions
    ``project``, ``automation``, ``status``. ``values`` holds its numbers:
    ``count`` for most metrics; the usage totals (``total_api_count``,
    ``total_cdn_count``, ``total_api_bandwidth``, ``total_cdn_bandwidth``); for
    executions ``count`` (= 1) and ``duration``.
    """

    metric: str
    at: datetime | None
    labels: dict[str, str] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
