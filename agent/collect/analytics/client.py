"""Analytics API v2 client: submit jobs, retrieve their data, hand rows over as Samples.

Every metric endpoint is asynchronous: ``GET /analytics/v2/<metric>`` answers
``{"jobId", "paginated"}`` and the rows come from
``GET /analytics/v2/job/{jobId}/data?orgUid=..&page=N`` once the job is done. The
client owns the two endpoints; ``jobs.JobPoller`` polls a batch of jobs and reads their
pages, ``rows`` turns the rows into Samples.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.clock import Clock
from agent.collect.analytics.jobs import Job, JobPoller, Page
from agent.collect.analytics.pages import read_page
from agent.collect.analytics.rows import RowReader, assemble
from agent.collect.block import samples_of
from agent.collect.errors import ContentstackError, JobFailed, MalformedResponse, ServerError
from agent.collect.http import HttpClient
from agent.collect.models import PAGINATED_METRICS, AnalyticsQuery, Metric, Sample

log = structlog.get_logger("agent.collect.analytics")

#: longest range (inclusive days) one job may cover; longer ranges fail with "Job Failed".
MAX_RANGE_DAYS = 90

#: receives one query's answer once complete (a ``SampleBlock``: rows built on demand);
#: returns what of it to keep in the results
AnswerHook = Callable[[AnalyticsQuery, "Sequence[Sample] | Exception"], "list[Sample] | Exception"]


# -- payloads at the edge -----------------------------------------------------------------------


class JobAnswer(BaseModel):
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


# -- the client ---------------------------------------------------------------------------------


class AnalyticsClient:
    def __init__(self, http: HttpClient, clock: Clock | None = None) -> None:
        self.http = http
        self.clock = clock or http.clock
        self.settings = http.settings
        self.poller = JobPoller(self.clock, self._retrieve)

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

        def finish(query: AnalyticsQuery, answer: Sequence[Sample] | Exception) -> None:
            if on_answer is not None:
                results[query] = on_answer(query, answer)
            else:
                results[query] = answer if isinstance(answer, Exception) else samples_of(answer)

        chunks: dict[AnalyticsQuery, list[Job | Exception]] = {}
        for query in dict.fromkeys(queries):
            chunks[query] = []
            for start, end in split_range(query.start, query.end):
                try:
                    chunks[query].append(self._submit(query, start, end, held.get(query)))
                except Exception as error:  # reported per query; the batch goes on
                    chunks[query].append(error)
                    break
        # a query's rows are parsed (and handed over) once its last job is read, so a
        # batch never holds every raw answer at once
        waiting = {query: sum(isinstance(j, Job) for j in jobs) for query, jobs in chunks.items()}
        read: dict[Job, Sequence[Any] | Exception] = {}

        def job_done(job: Job, answer: Sequence[Any] | Exception) -> None:
            read[job] = answer
            waiting[job.query] -= 1
            if waiting[job.query] == 0:
                jobs = chunks[job.query]
                answers = [read.pop(j) if isinstance(j, Job) else j for j in jobs]
                finish(job.query, assemble(job.query, answers, held))

        for query, jobs in chunks.items():
            if not waiting[query]:  # its first submission failed: nothing to poll
                finish(query, assemble(query, [j for j in jobs if isinstance(j, Exception)], held))
        self.poller.collect(
            [j for jobs in chunks.values() for j in jobs if isinstance(j, Job)],
            self.settings.job_timeout.total_seconds(),
            job_done,
        )
        return results

    # jobs ---------------------------------------------------------------------------------

    def _submit(
        self, query: AnalyticsQuery, start: date, end: date, newer_than: datetime | None
    ) -> Job:
        path = f"/analytics/v2/{query.metric.value}"
        body = self.http.get_json(
            "GET",
            self.settings.analytics_url + path,
            params=build_params(query, start, end, self._org),
        )
        try:
            answer = JobAnswer.model_validate(body)
        except ValidationError:
            raise MalformedResponse(
                f"GET {path} answered without a jobId", status=200, endpoint=f"GET {path}"
            ) from None
        paginated = answer.paginated
        if paginated is None:
            # no (readable) flag: trust the documentation's list of paginated endpoints
            paginated = query.metric in PAGINATED_METRICS
        job = Job(answer.job_id, paginated, start, end, query, self.clock.monotonic(), newer_than)
        log.debug(
            "analytics.job.submitted",
            metric=query.metric.value,
            job_id=job.id,
            start=start.isoformat(),
            end=end.isoformat(),
            paginated=paginated,
        )
        return job

    def _retrieve(self, job: Job, page: int) -> Page | None:
        """One Retrieve Data call: the page, or None while the job is still running. The
        rows of a job without pages are parsed as they are read (see ``pages``)."""
        endpoint = job.endpoint
        try:
            response = self.http.request(
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
                f"{job} failed: {error.message}",
                status=500,
                endpoint=endpoint,
                error_code=error.error_code,
            ) from None
        raw: list[Any] = []
        reader = None if job.paginated else RowReader(job.query, job.newer_than)
        try:
            info = read_page(response.content, reader.take if reader else raw.append)
        except ValueError as error:
            raise MalformedResponse(
                f"{endpoint} answered HTTP {response.status_code} with a body that is not "
                f"an object of rows: {error}",
                status=response.status_code,
                endpoint=endpoint,
            ) from None
        if info is None:
            return None  # a 200 without data: still running (its exact body is undocumented)
        return Page(reader.finish() if reader else raw, info.total_rows())

    @property
    def _org(self) -> str:
        return self.settings.organization_uid


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
