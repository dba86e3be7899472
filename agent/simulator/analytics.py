"""Analytics API v2: parameter validation and the rows each metric endpoint returns."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

from agent.collect.models import GRANULARITIES, SERVICES
from agent.simulator.buckets import SUBDAY, Bucket, epoch, make_buckets
from agent.simulator.errors import ApiError, ErrorCode, invalid
from agent.simulator.scenario import CDN_SERVICES, Quirks, hex_id
from agent.simulator.traffic import INT32_MAX, Agg, TrafficModel, cumulative, split

SDK_LIMIT_MAX = 900
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STATUS = re.compile(r"^[1-5](\d\d|xx)$", re.IGNORECASE)
_BOOLEAN = {"true": True, "false": False}


@dataclass(frozen=True)
class EndpointSpec:
    required: tuple[str, ...] = ()
    paginated: bool = False


ENDPOINTS: dict[str, EndpointSpec] = {
    "http-statuses": EndpointSpec(required=("duration", "services")),
    "hit-miss-ratio": EndpointSpec(required=("duration", "services")),
    "usage": EndpointSpec(),
    "devices": EndpointSpec(paginated=True),
    "sdk": EndpointSpec(required=("services", "duration", "includeCount"), paginated=True),
    "url": EndpointSpec(required=("includeTotalCount",), paginated=True),
    "subscription": EndpointSpec(),
}

#: Labels of the device and SDK mixes: (label, share) per kind of service.
_CDN_DEVICES = (
    ("sdk contentstack-javascript/3.19.0; platform web; os macOS;", 0.34),
    ("sdk contentstack-javascript/3.19.0; platform web; os Windows;", 0.26),
    ("sdk contentstack-swift/1.5.1; platform ios; os iOS 17.4;", 0.15),
    ("sdk contentstack-android/3.14.0; platform android; os Android 14;", 0.15),
    ("sdk unknown; platform server; os Linux;", 0.10),
)
_API_DEVICES = (
    ("sdk contentstack-management-javascript/1.15.0; platform node; os Linux;", 0.5),
    ("sdk @contentstack/cli/1.17.0; platform node; os macOS;", 0.2),
    ("sdk unknown; platform web; os macOS;", 0.3),
)
_CDN_SDKS = (
    ("cda-collection/v9.31.0", 0.4),
    ("contentstack-javascript/3.19.0", 0.3),
    ("contentstack-swift/1.5.1", 0.1),
    ("contentstack-android/3.14.0", 0.1),
    ("contentstack-python/1.9.0", 0.1),
)
_API_SDKS = (
    ("contentstack-management-javascript/1.15.0", 0.5),
    ("@contentstack/cli/1.17.0", 0.3),
    ("contentstack-management-python/1.2.0", 0.2),
)
_CONTENT_TYPES = ("blog_post", "page", "product", "author", "landing_page")
_URL_COUNT = 40


@dataclass(frozen=True)
class AnalyticsRequest:
    metric: str
    first: date
    last: date
    duration: str
    services: tuple[str, ...]
    api_key: str | None
    status_filter: tuple[str, ...] = ()
    cache_filter: str = "all"
    order_by: int | None = None
    limit: int | None = None
    skip: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def buckets(self) -> int:
        """How many time buckets the answer may have (bounded by the range, not by now)."""
        if self.duration in SUBDAY:
            return self.days * 86400 // SUBDAY[self.duration]
        return self.days

    @property
    def paginated(self) -> bool:
        return ENDPOINTS[self.metric].paginated


def _single(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _date(query: Mapping[str, Sequence[str]], name: str) -> date:
    raw = _single(query, name)
    if raw is None or raw == "":
        raise invalid(name, "is required")
    if not _DATE.match(raw):
        raise invalid(name, "must be a date formatted YYYY-MM-DD")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise invalid(name, "is not a valid calendar date") from None


def _boolean(raw: str, name: str) -> bool:
    value = _BOOLEAN.get(raw.lower())
    if value is None:
        raise invalid(name, "must be true or false")
    return value


def _integer(raw: str, name: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name, "must be an integer") from None
    if value < minimum:
        raise invalid(name, f"must be at least {minimum}")
    return value


def _services(raw: str) -> tuple[str, ...]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise invalid("services", 'must be a JSON array such as ["cdn","cma"]') from None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise invalid("services", "must be a non-empty JSON array of service names")
    unknown = [v for v in value if v not in SERVICES]
    if unknown:
        raise invalid("services", f"unknown services {unknown}; known: {list(SERVICES)}")
    return tuple(dict.fromkeys(value))


def validate(
    metric: str,
    query: Mapping[str, Sequence[str]],
    *,
    today: date,
    api_keys: set[str],
    quirks: Quirks,
) -> AnalyticsRequest:
    """Check one metric request the way the real API does; raise ApiError on the first fault."""
    spec = ENDPOINTS[metric]
    api_key = _single(query, "apiKey")
    if api_key is not None and api_key not in api_keys:
        raise ApiError(
            412,
            "The api_key provided is not valid.",
            error_code=ErrorCode.INVALID_API_KEY,
            errors={"apiKey": ["is not valid"]},
        )
    for name in spec.required:
        if not _single(query, name):
            raise invalid(name, "is required")
    first = _date(query, "from")
    last = _date(query, "to")
    if first > today:
        raise invalid("from", "must not be in the future", status=422)
    if last < first:
        raise invalid("to", "must not be before 'from'", status=422)

    duration = _single(query, "duration") or "day"
    if duration not in GRANULARITIES:
        raise invalid("duration", f"must be one of {list(GRANULARITIES)}")
    raw_services = _single(query, "services")
    services = _services(raw_services) if raw_services is not None else SERVICES

    statuses: tuple[str, ...] = ()
    raw_status = _single(query, "httpStatusCode")
    if raw_status:
        statuses = tuple(s.strip().lower() for s in raw_status.split(","))
        if not all(_STATUS.match(s) for s in statuses):
            raise invalid("httpStatusCode", "must be HTTP status codes such as 500 or 5xx")
    cache = (_single(query, "cache") or "all").upper()
    if cache not in ("HIT", "MISS", "ALL"):
        raise invalid("cache", "must be HIT, MISS or all")
    order_by = None
    raw_order = _single(query, "orderBy")
    if raw_order is not None:
        if raw_order not in ("1", "-1"):
            raise invalid("orderBy", "must be 1 (ascending) or -1 (descending)")
        order_by = int(raw_order)
    limit = None
    raw_limit = _single(query, "limit")
    if raw_limit is not None:
        limit = _integer(raw_limit, "limit", 1)
        if metric == "sdk" and limit > SDK_LIMIT_MAX:
            raise invalid("limit", f"must not exceed {SDK_LIMIT_MAX}", status=422)
    raw_skip = _single(query, "skip")
    skip = _integer(raw_skip, "skip", 0) if raw_skip is not None else 0

    meta: dict[str, Any] = {name: _single(query, name) for name in query if name != "page"}
    if raw_services is not None:
        meta["services"] = list(services)
    for flag in ("includeCount", "includeTotalCount"):
        raw = _single(query, flag)
        if raw is not None:
            value = _boolean(raw, flag)
            meta[flag] = str(value).lower() if quirks.include_count_as_string else value
    return AnalyticsRequest(
        metric=metric,
        first=first,
        last=last,
        duration=duration,
        services=services,
        api_key=api_key,
        status_filter=statuses,
        cache_filter=cache,
        order_by=order_by,
        limit=limit,
        skip=skip,
        meta=meta,
    )


# --------------------------------------------------------------------------- result rows


@dataclass
class Result:
    rows: list[dict[str, Any]]
    #: extra top-level keys of the Retrieve Data answer (``urlDataSource``).
    extra: dict[str, Any] = field(default_factory=dict)


def _clamp(value: int) -> int:
    return min(value, INT32_MAX)


class _RowMaker:
    """Shared plumbing for the bucketed metrics: buckets, series, quirks."""

    def __init__(
        self,
        model: TrafficModel,
        request: AnalyticsRequest,
        now: datetime,
        subday_format: str,
        quirks: Quirks,
    ) -> None:
        self.model = model
        self.request = request
        self.quirks = quirks
        self.now = now
        self.now_s = epoch(now)
        self.subday_format = subday_format
        self.keys = [request.api_key] if request.api_key else list(model.stacks)
        self.services = [s for s in request.services if s in model.scenario.services]

    @cached_property
    def buckets(self) -> list[Bucket]:
        # Lazy: Top URLs and subscription totals ignore ``duration``.
        request = self.request
        return make_buckets(
            request.duration, request.first, request.last, self.now, self.subday_format
        )

    def series(self, service: str) -> list[Agg]:
        return self.model.series(
            self.keys, service, self.request.duration, self.buckets, self.now_s
        )

    def whole_range(self, service: str) -> Agg:
        bucket = make_buckets("historic", self.request.first, self.request.last, self.now, "iso")
        if not bucket:
            return (0,) * self.model.width
        return self.model.series(self.keys, service, "historic", bucket, self.now_s)[0]

    def finish(self, rows: list[dict[str, Any]]) -> None:
        """Clamp counts to int32 and apply the row quirks (string counts, an extra field)."""
        strings, extra = self.quirks.string_counts, self.quirks.extra_fields
        for n, row in enumerate(rows):
            count = row.get("count")
            if count is None:
                continue
            if count > INT32_MAX:
                row["count"] = count = INT32_MAX
            if strings and n % 3 == 0:
                row["count"] = str(count)
            if extra:
                row["_src"] = "edge"

    def counted_rows(
        self,
        services: list[str],
        field: str,
        counts: Callable[[str, int], Iterable[tuple[str, int]]],
    ) -> Result:
        """Rows ``{count, type, <field>, date}`` for each bucket and service, from
        ``counts(service, bucket index)``: (name, count) pairs. Zero counts make no row
        (the bucket may get a date-only row instead)."""
        rows: list[dict[str, Any]] = []
        for b, bucket in enumerate(self.buckets):
            zero_seen = False
            label = bucket.label
            for service in services:
                for name, count in counts(service, b):
                    if count > 0:
                        rows.append({"count": count, "type": service, field: name, "date": label})
                    else:
                        zero_seen = True
            self.date_only(rows, bucket, zero_seen)
        self.finish(rows)
        return Result(rows)

    def date_only(self, rows: list[dict[str, Any]], bucket: Bucket, zero_seen: bool) -> None:
        """The documented quirk: some buckets carry a bare ``{"date": ...}`` (count 0) row."""
        if (
            zero_seen
            and self.quirks.date_only_rows
            and self.model.uniform_for("date-only", bucket.start)[0] < 0.3
        ):
            rows.append({"date": bucket.label})


def _status_wanted(code: str, filters: tuple[str, ...]) -> bool:
    if not filters:
        return True
    return any(f == code or (f.endswith("xx") and code[0] == f[0]) for f in filters)


def _statuses(m: _RowMaker) -> Result:
    codes = [
        (i, c) for i, c in enumerate(m.model.codes) if _status_wanted(c, m.request.status_filter)
    ]
    everything = len(codes) == len(m.model.codes)
    names = [code for _, code in codes]
    series = {s: m.series(s) for s in m.services}

    def counts(service: str, b: int) -> Iterable[tuple[str, int]]:
        agg = series[service][b]
        wanted = agg[1 : 1 + len(names)] if everything else [agg[1 + i] for i, _ in codes]
        return zip(names, wanted, strict=True)

    return m.counted_rows(m.services, "status", counts)


def _cache(m: _RowMaker) -> Result:
    wanted = ("HIT", "MISS") if m.request.cache_filter == "ALL" else (m.request.cache_filter,)
    services = [s for s in m.services if m.model.cacheable(s)]
    series = {s: m.series(s) for s in services}

    def counts(service: str, b: int) -> Iterable[tuple[str, int]]:
        agg = series[service][b]
        hits = agg[-2]
        values = {"HIT": hits, "MISS": agg[0] - hits}
        return [(status, values[status]) for status in wanted]

    return m.counted_rows(services, "status", counts)


def _usage(m: _RowMaker) -> Result:
    series = {s: m.series(s) for s in m.services}
    rows: list[dict[str, Any]] = []
    for b, bucket in enumerate(m.buckets):
        api_count = api_bytes = cdn_count = cdn_bytes = 0
        for service in m.services:
            agg = series[service][b]
            if service in CDN_SERVICES:
                cdn_count += agg[0]
                cdn_bytes += agg[-1]
            else:
                api_count += agg[0]
                api_bytes += agg[-1]
        if not (api_count or cdn_count):
            continue
        row: dict[str, Any] = {
            "total_api_bandwidth": _clamp(api_bytes),
            "total_api_count": _clamp(api_count),
            "total_cdn_bandwidth": _clamp(cdn_bytes),
            "total_cdn_count": _clamp(cdn_count),
            "date": bucket.label,
        }
        if m.quirks.extra_fields:
            row["_src"] = "edge"
        rows.append(row)
    return Result(rows)


def _mix_rows(
    m: _RowMaker, label: str, mixes: Callable[[str], tuple[tuple[str, float], ...]]
) -> Result:
    series = {s: m.series(s) for s in m.services}

    def counts(service: str, b: int) -> Iterable[tuple[str, int]]:
        mix = mixes(service)
        total = series[service][b][0]
        u = m.model.uniform_for(label, service, m.buckets[b].start)[0]
        parts = split(total, cumulative(share for _, share in mix), u)
        return zip((name for name, _ in mix), parts, strict=True)

    return m.counted_rows(m.services, label, counts)


def _devices(m: _RowMaker) -> Result:
    return _mix_rows(m, "device", lambda s: _CDN_DEVICES if s in CDN_SERVICES else _API_DEVICES)


def _sdk(m: _RowMaker) -> Result:
    return _mix_rows(m, "sdk", lambda s: _CDN_SDKS if s in CDN_SERVICES else _API_SDKS)


def _urls_for(model: TrafficModel, service: str) -> list[str]:
    urls = []
    for k in range(_URL_COUNT):
        u1, _u2, _ = model.uniform_for("url", service, k)
        content_type = _CONTENT_TYPES[int(u1 * len(_CONTENT_TYPES))]
        uid = "blt" + hex_id(service, str(k))[:16]
        if service in CDN_SERVICES:
            urls.append(f"/v3/content_types/{content_type}/entries/{uid}?environment=production")
        else:
            urls.append(f"/v3/content_types/{content_type}/entries/{uid}")
    return urls


def _top_urls(m: _RowMaker) -> Result:
    rows: list[dict[str, Any]] = []
    zipf = [1.0 / (k + 1) ** 1.1 for k in range(_URL_COUNT)]
    for service in m.services:
        total = m.whole_range(service)[0]
        u = m.model.uniform_for("url-split", service, m.request.first.toordinal())[0]
        parts = split(total, cumulative(zipf), u)
        for url, count in zip(_urls_for(m.model, service), parts, strict=True):
            if count > 0:
                # Top URLs send their count as a string: documented, not a quirk.
                rows.append({"url": url, "type": service, "count": str(_clamp(count))})
    rows.sort(key=lambda r: -int(r["count"]))
    return Result(rows, {"urlDataSource": "cdn-logs"})


def _subscription(m: _RowMaker) -> Result:
    # The row shape is undocumented: Launch totals over the range.
    launch = m.whole_range("launch") if "launch" in m.model.scenario.services else None
    requests = launch[0] if launch else 0
    size = launch[-1] if launch else 0
    row = {
        "plan": "launch",
        "total_requests": _clamp(requests),
        "total_bandwidth": _clamp(size),
        "total_build_minutes": 37 * m.request.days,
        "from": m.request.first.isoformat(),
        "to": m.request.last.isoformat(),
    }
    return Result([row])


_BUILDERS: dict[str, Callable[[_RowMaker], Result]] = {
    "http-statuses": _statuses,
    "hit-miss-ratio": _cache,
    "usage": _usage,
    "devices": _devices,
    "sdk": _sdk,
    "url": _top_urls,
    "subscription": _subscription,
}


def _count_of(row: Mapping[str, Any]) -> int:
    return int(row.get("count", 0))


def compute(
    model: TrafficModel,
    request: AnalyticsRequest,
    now: datetime,
    *,
    subday_format: str,
    quirks: Quirks,
) -> Result:
    """All rows of a finished job, ordered and sliced (``orderBy``, ``skip``, ``limit``)."""
    maker = _RowMaker(model, request, now, subday_format, quirks)
    result = _BUILDERS[request.metric](maker)
    if request.order_by is not None and request.metric != "subscription":
        result.rows.sort(key=_count_of, reverse=request.order_by < 0)
    if request.skip or request.limit is not None:
        end = None if request.limit is None else request.skip + request.limit
        result.rows = result.rows[request.skip : end]
    return result
