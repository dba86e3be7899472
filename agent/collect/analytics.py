"""Analytics API v2 client: submit a job, poll Retrieve Data, page, parse rows into Samples.

Every metric endpoint is asynchronous: ``GET /analytics/v2/<metric>`` answers
``{"jobId", "paginated"}`` and the rows come from
``GET /analytics/v2/job/{jobId}/data?orgUid=..&page=N`` once the job is done.
"""

from __future__ import annotations

import heapq
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.clock import Clock
from agent.collect.errors import (
    ContentstackError,
    JobFailed,
    JobTimeout,
    MalformedResponse,
    ResultTooLarge,
    ServerError,
)
from agent.collect.http import HttpClient
from agent.collect.models import PAGINATED_METRICS, AnalyticsQuery, Metric, Sample
from agent.collect.parsing import parse_number, parse_timestamp

log = structlog.get_logger(__name__)

#: longest range (inclusive days) one job may cover; longer ranges fail with "Job Failed".
MAX_RANGE_DAYS = 90
POLL_INITIAL = 0.5
POLL_MAX = 8.0
#: a job found done on its first retrieve shortens the next first wait by this factor
LATENCY_EASING = 0.9
#: threads polling one batch (the caller's among them)
POLL_THREADS = 4
#: hard stop for servers that ignore ``page`` and keep answering.
MAX_PAGES = 1000
#: keys tried, in order, for a row's bucket time (only ``date`` is documented).
_DATE_KEYS = ("date", "datetime", "timestamp", "time")
#: row field → label, per metric; ``type`` → ``service`` applies to all.
_LABEL_FIELDS: dict[Metric, tuple[tuple[str, str], ...]] = {
    Metric.HTTP_STATUSES: (("status", "status"), ("httpStatusCode", "status")),
    Metric.CACHE: (("status", "cache"), ("cache", "cache")),
    Metric.DEVICES: (("device", "device"),),
    Metric.SDK: (("sdk", "sdk"),),
    Metric.TOP_URLS: (("url", "url"),),
}
USAGE_TOTALS = ("total_api_count", "total_cdn_count", "total_api_bandwidth", "total_cdn_bandwidth")


#: receives one query's answer once complete; returns what of it to keep in the results
AnswerHook = Callable[[AnalyticsQuery, "list[Sample] | Exception"], "list[Sample] | Exception"]


class BadRow(ValueError):
    """A row that cannot become a Sample; it is skipped with a warning."""


# -- payloads at the edge -----------------------------------------------------------------------


class _JobAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    job_id: str = Field(alias="jobId", min_length=1)
    paginated: bool | None = None

    @field_validator("job_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("paginated", mode="before")
    @classmethod
    def _lenient_bool(cls, value: Any) -> Any:
        # "true"/"false" strings are seen in meta echoes; anything else unknown means "ask data"
        if isinstance(value, str):
            return {"true": True, "false": False}.get(value.strip().lower())
        return value if isinstance(value, bool) else None


class _DataAnswer(BaseModel):
    """Retrieve Data answer. ``meta`` (an echo of the request) is ignored: its types vary."""

    model_config = ConfigDict(extra="allow")

    data: list[Any]
    total_docs: Any = Field(default=None, alias="totalDocs")
    total: Any = None

    @field_validator("data", mode="before")
    @classmethod
    def _one_object_is_one_row(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    def total_rows(self) -> int | None:
        for candidate in (self.total_docs, self.total):
            try:
                return int(parse_number(candidate))
            except ValueError:
                continue
        return None


# -- the client ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Job:
    id: str
    paginated: bool
    start: date
    end: date
    query: AnalyticsQuery
    #: ``clock.monotonic()`` when it was submitted
    submitted: float


class AnalyticsClient:
    def __init__(self, http: HttpClient, clock: Clock | None = None) -> None:
        self.http = http
        self.clock = clock or http.clock
        self.settings = http.settings
        #: how long after submission jobs have been answering (None: not known yet)
        self._latency: float | None = None

    def fetch(self, query: AnalyticsQuery) -> list[Sample]:
        """Every row of ``query`` as Samples; ranges over 90 days are split and merged."""
        result = self.fetch_many([query])[query]
        if isinstance(result, Exception):
            raise result
        return result

    def fetch_many(
        self,
        queries: Sequence[AnalyticsQuery],
        newer_than: Mapping[AnalyticsQuery, datetime] | None = None,
        on_answer: AnswerHook | None = None,
    ) -> dict[AnalyticsQuery, list[Sample] | Exception]:
        """Every query's rows (or the error that stopped it), fetched as one batch.

        All jobs are submitted first, then polled together, earliest due first: a job
        is first asked for at its submission time plus the job latency observed so
        far, so with enough queries in flight most answer on their first retrieve and
        a query costs two requests. One failing query does not stop the others.
        ``newer_than`` skips a query's rows dated before a time (buckets the caller
        already holds) without parsing them. ``on_answer`` receives each query's
        answer as soon as it is complete and returns what to keep of it (a caller that
        stores rows elsewhere keeps little).
        """
        held = newer_than or {}
        results: dict[AnalyticsQuery, list[Sample] | Exception] = {}

        def finish(query: AnalyticsQuery, answer: list[Sample] | Exception) -> None:
            results[query] = answer
            if on_answer is not None:
                results[query] = on_answer(query, answer)

        chunks: dict[AnalyticsQuery, list[_Job | Exception]] = {}
        for query in dict.fromkeys(queries):
            chunks[query] = []
            for start, end in split_range(query.start, query.end):
                try:
                    chunks[query].append(self._submit(query, start, end))
                except Exception as error:  # reported per query; the batch goes on
                    chunks[query].append(error)
                    break
        # a query's rows are parsed (and handed over) once its last job is read, so a
        # batch never holds every raw answer at once
        waiting = {query: sum(isinstance(j, _Job) for j in jobs) for query, jobs in chunks.items()}
        read: dict[_Job, list[Any] | Exception] = {}

        def job_done(job: _Job, answer: list[Any] | Exception) -> None:
            read[job] = answer
            waiting[job.query] -= 1
            if waiting[job.query] == 0:
                jobs = chunks[job.query]
                answers = [read.pop(j) if isinstance(j, _Job) else j for j in jobs]
                finish(job.query, _assemble(job.query, answers, held))

        for query, jobs in chunks.items():
            if not waiting[query]:  # its first submission failed: nothing to poll
                finish(query, _assemble(query, [j for j in jobs if isinstance(j, Exception)], held))
        self._collect(
            [j for jobs in chunks.values() for j in jobs if isinstance(j, _Job)], job_done
        )
        return results

    # jobs ---------------------------------------------------------------------------------

    def _submit(self, query: AnalyticsQuery, start: date, end: date) -> _Job:
        path = f"/analytics/v2/{query.metric.value}"
        body = self.http.get_json(
            "GET",
            self.settings.analytics_url + path,
            params=build_params(query, start, end, self._org),
        )
        try:
            answer = _JobAnswer.model_validate(body)
        except ValidationError:
            raise MalformedResponse(
                f"GET {path} answered without a jobId", status=200, endpoint=f"GET {path}"
            ) from None
        paginated = answer.paginated
        if paginated is None:
            # no (readable) flag: trust the documentation's list of paginated endpoints
            paginated = query.metric in PAGINATED_METRICS
        job = _Job(answer.job_id, paginated, start, end, query, self.clock.monotonic())
        log.debug(
            "analytics.job.submitted",
            metric=query.metric.value,
            job_id=job.id,
            start=start.isoformat(),
            end=end.isoformat(),
            paginated=paginated,
        )
        return job

    def _collect(
        self, jobs: list[_Job], done: Callable[[_Job, list[Any] | Exception], None]
    ) -> None:
        """Poll submitted jobs as one batch until each has its rows, failed or timed out;
        each outcome goes to ``done`` as soon as it is known.

        A few threads share the batch, earliest due first: while one waits for an answer
        (a big day of rows takes the server a while) or parses it, the others keep
        asking, so the rate limit rather than the answers' latency bounds a cycle.
        """
        timeout = self.settings.job_timeout.total_seconds()
        # until a latency is known, ask at once (a fast server answers the first retrieve)
        first_wait = self._latency or 0.0
        # (when to ask, submission order, job, the pause after a "still running")
        due = [
            (job.submitted + first_wait, order, job, POLL_INITIAL) for order, job in enumerate(jobs)
        ]
        heapq.heapify(due)
        polls: dict[_Job, int] = {}
        state = threading.Condition()
        # outcomes are handed over one at a time, outside ``state`` so that parsing one
        # answer never keeps the other threads from asking for theirs
        handing_over = threading.Lock()
        open_jobs = len(jobs)

        def next_job() -> tuple[float, int, _Job, float] | None:
            with state:
                while not due and open_jobs:
                    state.wait()  # another thread holds the last jobs; one may come back
                return heapq.heappop(due) if due else None

        def settle(job: _Job, outcome: list[Any] | Exception) -> None:
            nonlocal open_jobs
            with handing_over:
                done(job, outcome)
            with state:
                open_jobs -= 1
                state.notify_all()

        def work() -> None:
            while (entry := next_job()) is not None:
                at, order, job, interval = entry
                wait = at - self.clock.monotonic()
                if wait > 0:
                    self.clock.sleep(wait)
                polls[job] = polls.get(job, 0) + 1
                try:
                    first = self._retrieve(job, 0)
                    if first is not None:
                        self._observe_latency(job, polls[job])
                        rows = self._remaining_pages(job, first, job.submitted + timeout)
                except Exception as error:  # this job's verdict; the others go on
                    settle(job, error)
                    continue
                if first is not None:
                    settle(job, rows)
                    continue
                now = self.clock.monotonic()
                deadline = job.submitted + timeout
                if now >= deadline:
                    settle(
                        job,
                        JobTimeout(
                            f"Analytics job {job.id} ({job.query.metric.value} "
                            f"{job.start}..{job.end}) not finished after {timeout:.0f}s "
                            f"({polls[job]} polls)",
                            endpoint=self._data_endpoint(job),
                        ),
                    )
                    continue
                log.debug("analytics.job.waiting", job_id=job.id, wait=interval)
                with state:
                    heapq.heappush(
                        due,
                        (min(now + interval, deadline), order, job, min(interval * 2, POLL_MAX)),
                    )
                    state.notify_all()

        threads = [
            threading.Thread(target=work, name=f"analytics-poll-{n}", daemon=True)
            for n in range(min(POLL_THREADS, len(jobs)) - 1)
        ]
        for thread in threads:
            thread.start()
        work()
        for thread in threads:
            thread.join()

    def _observe_latency(self, job: _Job, polls: int) -> None:
        """Learn how long jobs take: first polls that find the rows done ease the wait
        down, a job that needed more polls sets it to how long that one took."""
        elapsed = self.clock.monotonic() - job.submitted
        if polls > 1 or self._latency is None:
            self._latency = elapsed if polls > 1 else None
        else:
            self._latency = max(POLL_INITIAL, self._latency * LATENCY_EASING)

    def _remaining_pages(self, job: _Job, first: _DataAnswer, deadline: float) -> list[Any]:
        rows = list(first.data)
        if not job.paginated:
            return rows
        total = first.total_rows()
        previous = first.data
        for page in range(1, MAX_PAGES):
            if total is not None and len(rows) >= total:
                break
            if not previous or (total is None and len(previous) < len(first.data)):
                break  # an empty or short page is the last one
            answer_page = self._wait_for_page(job, page, deadline)
            if not answer_page.data:
                break
            if answer_page.data == previous:
                log.warning("analytics.page.repeated", job_id=job.id, page=page)
                break
            rows.extend(answer_page.data)
            previous = answer_page.data
        else:
            raise ResultTooLarge(
                f"Analytics job {job.id} ({job.query.metric.value} {job.start}..{job.end}) has "
                f"more than {MAX_PAGES} pages; narrow the query (fewer days, services or stacks)",
                endpoint="GET /analytics/v2/job/{id}/data",
            )
        return rows

    def _wait_for_page(self, job: _Job, page: int, deadline: float) -> _DataAnswer:
        """Poll one further page until it has a ``data`` key, with doubling pauses."""
        interval = POLL_INITIAL
        polls = 0
        while True:
            polls += 1
            answer = self._retrieve(job, page)
            if answer is not None:
                return answer
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                timeout = self.settings.job_timeout.total_seconds()
                raise JobTimeout(
                    f"Analytics job {job.id} ({job.query.metric.value} {job.start}..{job.end}) "
                    f"not finished after {timeout:.0f}s ({polls} polls)",
                    endpoint=self._data_endpoint(job),
                )
            wait = min(interval, remaining)
            log.debug("analytics.job.waiting", job_id=job.id, page=page, wait=wait)
            self.clock.sleep(wait)
            interval = min(interval * 2, POLL_MAX)

    @staticmethod
    def _data_endpoint(job: _Job) -> str:
        return f"GET /analytics/v2/job/{quote(job.id, safe='')}/data"

    def _retrieve(self, job: _Job, page: int) -> _DataAnswer | None:
        """One Retrieve Data call: the page, or None while the job is still running."""
        endpoint = self._data_endpoint(job)
        try:
            body = self.http.get_json(
                "GET",
                self.settings.analytics_url + endpoint.removeprefix("GET "),
                params={"orgUid": self._org, "page": str(page)},
                final_if=_is_job_failure,
                endpoint=endpoint,
            )
        except ServerError as error:
            if not _is_job_failure(error):
                raise  # a plain 5xx, still there after every retry: transient, not a verdict
            raise JobFailed(
                f"Analytics job {job.id} ({job.query.metric.value} {job.start}..{job.end}) "
                f"failed: {error.message}",
                status=500,
                endpoint=endpoint,
                error_code=error.error_code,
            ) from None
        if not isinstance(body, dict):
            raise MalformedResponse(
                f"{endpoint} answered with a {type(body).__name__}, not an object",
                status=200,
                endpoint=endpoint,
            )
        if body.get("data") is None:
            return None  # a 200 without data: still running (its exact body is undocumented)
        try:
            return _DataAnswer.model_validate(body)
        except ValidationError:
            raise MalformedResponse(
                f"{endpoint} answered a 'data' that is not a list of rows",
                status=200,
                endpoint=endpoint,
            ) from None

    @property
    def _org(self) -> str:
        return self.settings.organization_uid


def _assemble(
    query: AnalyticsQuery,
    answers: list[list[Any] | Exception],
    held: Mapping[AnalyticsQuery, datetime],
) -> list[Sample] | Exception:
    """One query's Samples from the raw rows of its jobs, or the first error among them."""
    samples: list[Sample] = []
    for answer in answers:
        if isinstance(answer, Exception):
            return answer
        samples.extend(parse_rows(query, answer, held.get(query)))
    return _merge_dateless(samples) if len(answers) > 1 else samples


def _is_job_failure(error: ContentstackError) -> bool:
    """The documentation lists a plain 500 and a 500 "Job Failed"; only the latter is final."""
    return error.status == 500 and "job failed" in error.message.lower()


# -- request building ---------------------------------------------------------------------------


def split_range(start: date, end: date) -> Iterator[tuple[date, date]]:
    """Consecutive inclusive ranges of at most ``MAX_RANGE_DAYS`` days covering start..end."""
    step = timedelta(days=MAX_RANGE_DAYS)
    while start <= end:
        chunk_end = min(end, start + step - timedelta(days=1))
        yield start, chunk_end
        start = chunk_end + timedelta(days=1)


#: parameters the documentation marks required but that carry no choice for a monitor:
#: counts are what rules read. A query's own params override them.
_REQUIRED_DEFAULTS: dict[Metric, dict[str, str]] = {
    Metric.SDK: {"includeCount": "true"},
    Metric.TOP_URLS: {"includeTotalCount": "true"},
}


def build_params(query: AnalyticsQuery, start: date, end: date, org_uid: str) -> dict[str, str]:
    params: dict[str, str] = dict(_REQUIRED_DEFAULTS.get(query.metric, {}))
    # endpoint extras first, so they can never override the organization or the range
    params.update(dict(query.params))
    params.update({"orgUid": org_uid, "from": start.isoformat(), "to": end.isoformat()})
    if query.duration:
        params["duration"] = query.duration
    if query.services:
        # a compact JSON array; httpx percent-encodes it in the query string
        params["services"] = json.dumps(list(query.services), separators=(",", ":"))
    if query.api_key:
        params["apiKey"] = query.api_key
    return params


# -- row parsing --------------------------------------------------------------------------------


def parse_rows(
    query: AnalyticsQuery, rows: list[Any], newer_than: datetime | None = None
) -> list[Sample]:
    """Samples from rows (those dated before ``newer_than`` left out); bad rows are
    skipped and reported in one warning."""
    samples: list[Sample] = []
    problems: list[str] = []
    default_service = query.services[0] if len(query.services) == 1 else None
    for row in rows:
        if newer_than is not None and _dated_before(row, newer_than):
            continue
        try:
            samples.append(
                parse_row(query.metric, row, stack=query.api_key, default_service=default_service)
            )
        except BadRow as problem:
            problems.append(str(problem))
    if problems:
        log.warning(
            "analytics.rows.skipped",
            metric=query.metric.value,
            skipped=len(problems),
            examples=problems[:3],
        )
    return samples


def parse_row(
    metric: Metric,
    row: Any,
    *,
    stack: str | None = None,
    default_service: str | None = None,
) -> Sample:
    """One row → one Sample; raises BadRow (never anything else) for junk.

    A row without a count (the documented ``{"date": ...}`` form) becomes a zero
    sample rather than being dropped, so rules can tell "no traffic" from "no data";
    it gets the ``service`` label when the query asked for exactly one service.
    A count that is present but not a finite number (or a boolean) makes the row bad.
    """
    try:
        return _parse_row(metric, row, stack, default_service)
    except BadRow:
        raise
    except Exception as error:  # the last line of defence: junk must not crash collection
        raise BadRow(f"unreadable row ({type(error).__name__})") from None


def _parse_row(metric: Metric, row: Any, stack: str | None, default_service: str | None) -> Sample:
    if not isinstance(row, dict):
        raise BadRow(f"row is a {type(row).__name__}, not an object")
    at = None
    for key in _DATE_KEYS:
        if row.get(key) is not None:
            try:
                at = parse_timestamp(row[key])
            except ValueError as error:
                raise BadRow(str(error)) from None
            break

    labels: dict[str, str] = {}
    service = _label(row.get("type")) or default_service
    if service:
        labels["service"] = service
    for field_name, label in _LABEL_FIELDS.get(metric, ()):
        value = _label(row.get(field_name))
        if value is not None and label not in labels:
            labels[label] = value.upper() if label == "cache" else value
    if stack:
        labels["stack"] = stack

    values: dict[str, float] = {}
    if metric is Metric.USAGE:
        for key in USAGE_TOTALS:
            values[key] = _number(row, key)
        for key in row:
            if isinstance(key, str) and key.startswith("total_") and key not in values:
                values[key] = _number(row, key)
    elif metric is Metric.SUBSCRIPTION:
        # shape undocumented: keep every numeric field, ignore the rest
        for key, raw in row.items():
            if isinstance(key, str) and key not in _DATE_KEYS:
                try:
                    values[key] = parse_number(raw)
                except ValueError:
                    continue
    else:
        values["count"] = _number(row, "count")
    return Sample(metric=metric.value, at=at, labels=labels, values=values)


def _dated_before(row: Any, moment: datetime) -> bool:
    if not isinstance(row, dict):
        return False
    for key in _DATE_KEYS:
        if row.get(key) is not None:
            try:
                return parse_timestamp(row[key]) < moment
            except ValueError:
                return False  # reported as a bad row by the full parse
    return False


def _number(row: dict[str, Any], key: str) -> float:
    raw = row.get(key)
    if raw is None:
        return 0.0
    try:
        return parse_number(raw)
    except ValueError as error:
        raise BadRow(f"{key}: {error}") from None


def _label(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        # a status sent as a number: 200 and 200.0 are both "200"
        return str(int(value)) if float(value).is_integer() else str(value)
    return None


def _merge_dateless(samples: list[Sample]) -> list[Sample]:
    """Sum dateless rows (top URLs) with equal labels: each split job counted its own part."""
    merged: dict[tuple[tuple[str, str], ...], Sample] = {}
    result: list[Sample] = []
    for sample in samples:
        if sample.at is not None:
            result.append(sample)
            continue
        key = tuple(sorted(sample.labels.items()))
        existing = merged.get(key)
        if existing is None:
            merged[key] = Sample(sample.metric, None, dict(sample.labels), dict(sample.values))
            result.append(merged[key])
        else:
            for name, value in sample.values.items():
                existing.values[name] = existing.values.get(name, 0.0) + value
    return result
