"""AnalyticsClient: params, job polling, JobFailed/JobTimeout, pagination, 90-day split."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import respx

from agent.clock import ManualClock
from agent.collect import (
    Clients,
    JobFailed,
    JobTimeout,
    MalformedResponse,
    NotFound,
    ResultTooLarge,
    split_range,
)
from agent.collect.analytics import jobs as analytics_jobs
from agent.collect.models import AnalyticsQuery, Metric

from .conftest import ANALYTICS, ORG

JOB_DATA = f"{ANALYTICS}/analytics/v2/job/job-1/data"


def submit(router: respx.MockRouter, metric: Metric, paginated: bool = False) -> respx.Route:
    return router.get(f"{ANALYTICS}/analytics/v2/{metric.value}").respond(
        200, json={"jobId": "job-1", "paginated": paginated}
    )


def status_query(**overrides: Any) -> AnalyticsQuery:
    values: dict[str, Any] = {
        "metric": Metric.HTTP_STATUSES,
        "start": date(2024, 3, 1),
        "end": date(2024, 3, 7),
        "duration": "day",
        "services": ("cdn", "cma"),
    }
    values.update(overrides)
    return AnalyticsQuery(**values)


def test_params_dates_services_and_org(router: respx.MockRouter, clients: Clients) -> None:
    route = submit(router, Metric.HTTP_STATUSES)
    router.get(JOB_DATA).respond(200, json={"data": []})
    query = status_query(api_key="blt-stack-key", params=(("httpStatusCode", "500"),))
    clients.analytics.fetch(query)
    request = route.calls.last.request
    params = request.url.params
    assert params["orgUid"] == ORG
    assert params["from"] == "2024-03-01"
    assert params["to"] == "2024-03-07"
    assert params["duration"] == "day"
    assert params["services"] == '["cdn","cma"]'
    assert json.loads(params["services"]) == ["cdn", "cma"]
    assert params["apiKey"] == "blt-stack-key"
    assert params["httpStatusCode"] == "500"
    # the JSON array is percent-encoded in the raw query string
    raw_query = request.url.query.decode()
    assert "services=%5B%22cdn%22%2C%22cma%22%5D" in raw_query


def test_extras_cannot_override_core_params(router: respx.MockRouter, clients: Clients) -> None:
    route = submit(router, Metric.USAGE)
    router.get(JOB_DATA).respond(200, json={"data": []})
    query = AnalyticsQuery(
        Metric.USAGE, date(2024, 3, 1), date(2024, 3, 1), params=(("orgUid", "evil"),)
    )
    clients.analytics.fetch(query)
    assert route.calls.last.request.url.params["orgUid"] == ORG


def test_job_polled_with_doubling_backoff(
    router: respx.MockRouter, clients: Clients, clock: ManualClock
) -> None:
    submit(router, Metric.HTTP_STATUSES)
    running = httpx.Response(200, json={"status": "Job active"})
    done = httpx.Response(
        200,
        json={
            "data": [{"count": 63, "type": "cma", "status": "200", "date": "2024-03-05"}],
            "meta": {"from": "2024-03-01", "includeCount": "true"},
            "uid": "u1",
        },
    )
    poll = router.get(JOB_DATA)
    poll.side_effect = [running] * 6 + [done]
    samples = clients.analytics.fetch(status_query())
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert poll.call_count == 7
    for call in poll.calls:
        assert call.request.url.params["orgUid"] == ORG
        assert call.request.url.params["page"] == "0"
    assert len(samples) == 1
    sample = samples[0]
    assert sample.metric == "http-statuses"
    assert sample.at == datetime(2024, 3, 5, tzinfo=UTC)
    assert sample.labels == {"service": "cma", "status": "200"}
    assert sample.values == {"count": 63.0}


def test_job_timeout(
    router: respx.MockRouter, make_clients: Callable[..., Clients], clock: ManualClock
) -> None:
    clients = make_clients(job_timeout=20)
    submit(router, Metric.HTTP_STATUSES)
    router.get(JOB_DATA).respond(200, json={"message": "Job active"})
    with pytest.raises(JobTimeout, match="not finished after 20s") as caught:
        clients.analytics.fetch(status_query())
    assert sum(clock.sleeps) == pytest.approx(20.0)
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 4.5]
    assert caught.value.endpoint == "GET /analytics/v2/job/job-1/data"


def test_job_failed_is_not_retried(
    router: respx.MockRouter, clients: Clients, clock: ManualClock
) -> None:
    submit(router, Metric.HTTP_STATUSES)
    poll = router.get(JOB_DATA).respond(
        500, json={"error_message": "Job Failed", "error_code": 500}
    )
    with pytest.raises(JobFailed, match="Job Failed") as caught:
        clients.analytics.fetch(status_query())
    assert poll.call_count == 1
    assert clock.sleeps == []
    assert caught.value.status == 500
    assert "job-1" in str(caught.value)


def test_a_plain_500_while_polling_is_retried_not_a_verdict(
    router: respx.MockRouter, clients: Clients, clock: ManualClock
) -> None:
    submit(router, Metric.USAGE)
    poll = router.get(JOB_DATA)
    poll.side_effect = [
        httpx.Response(500, json={"error_message": "Internal server error", "error_code": 500}),
        httpx.Response(500, text="upstream hiccup"),
        httpx.Response(200, json={"data": [{"date": "2024-03-01", "total_api_count": 3}]}),
    ]
    samples = clients.analytics.fetch(
        AnalyticsQuery(Metric.USAGE, date(2024, 3, 1), date(2024, 3, 1))
    )
    assert poll.call_count == 3
    assert len(clock.sleeps) == 2  # two backoff pauses, no job-poll pause
    assert [s.values.get("total_api_count") for s in samples] == [3.0]


def test_a_result_past_the_page_cap_is_an_error_not_a_partial(
    router: respx.MockRouter, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analytics_jobs, "MAX_PAGES", 3)
    submit(router, Metric.SDK, paginated=True)

    def page(request: httpx.Request) -> httpx.Response:
        number = request.url.params["page"]
        rows = [{"count": 1, "type": "cdn", "sdk": f"sdk-{number}-{i}", "date": "2024-03-01"}
                for i in range(5)]  # fmt: skip
        return httpx.Response(200, json={"data": rows, "totalDocs": 100})

    router.get(JOB_DATA).mock(side_effect=page)
    with pytest.raises(ResultTooLarge, match="more than 3 pages"):
        clients.analytics.fetch(
            AnalyticsQuery(Metric.SDK, date(2024, 3, 1), date(2024, 3, 1), services=("cdn",))
        )


def test_transient_errors_while_polling_are_retried(
    router: respx.MockRouter, clients: Clients, clock: ManualClock
) -> None:
    submit(router, Metric.USAGE)
    poll = router.get(JOB_DATA)
    poll.side_effect = [httpx.Response(502), httpx.Response(200, json={"data": []})]
    query = AnalyticsQuery(Metric.USAGE, date(2024, 3, 1), date(2024, 3, 1))
    assert clients.analytics.fetch(query) == []
    assert clock.sleeps == [0.5]


def test_submit_500_is_a_transient_error(
    router: respx.MockRouter, clients: Clients, clock: ManualClock
) -> None:
    route = router.get(f"{ANALYTICS}/analytics/v2/usage")
    route.side_effect = [httpx.Response(500), httpx.Response(200, json={"jobId": "job-1"})]
    router.get(JOB_DATA).respond(200, json={"data": []})
    clients.analytics.fetch(AnalyticsQuery(Metric.USAGE, date(2024, 3, 1), date(2024, 3, 1)))
    assert route.call_count == 2


def test_unknown_job_is_not_found(router: respx.MockRouter, clients: Clients) -> None:
    submit(router, Metric.USAGE)
    router.get(JOB_DATA).respond(404, json={"error_message": "job not found"})
    with pytest.raises(NotFound):
        clients.analytics.fetch(AnalyticsQuery(Metric.USAGE, date(2024, 3, 1), date(2024, 3, 1)))


@pytest.mark.parametrize(
    "answer",
    [{"paginated": False}, {"jobId": ""}, ["job-1"], "job-1"],
)
def test_submit_without_job_id_is_malformed(
    router: respx.MockRouter, clients: Clients, answer: Any
) -> None:
    router.get(f"{ANALYTICS}/analytics/v2/usage").respond(200, json=answer)
    with pytest.raises(MalformedResponse):
        clients.analytics.fetch(AnalyticsQuery(Metric.USAGE, date(2024, 3, 1), date(2024, 3, 1)))


def test_non_json_answer_is_malformed(router: respx.MockRouter, clients: Clients) -> None:
    submit(router, Metric.USAGE)
    router.get(JOB_DATA).respond(200, text="<html>gateway</html>")
    with pytest.raises(MalformedResponse):
        clients.analytics.fetch(AnalyticsQuery(Metric.USAGE, date(2024, 3, 1), date(2024, 3, 1)))


def sdk_rows(first: int, count: int) -> list[dict[str, Any]]:
    return [
        {"count": n, "type": "cdn", "sdk": f"sdk-{n}", "date": "2024-03-02"}
        for n in range(first, first + count)
    ]


def page_handler(pages: list[list[dict[str, Any]]], total_key: str | None = "totalDocs"):
    total = sum(len(page) for page in pages)

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        body: dict[str, Any] = {"data": pages[page] if page < len(pages) else [], "meta": {}}
        if total_key:
            body[total_key] = total
        return httpx.Response(200, json=body)

    return handler


@pytest.mark.parametrize("total_key", ["totalDocs", "total"])
def test_pagination_until_total(router: respx.MockRouter, clients: Clients, total_key: str) -> None:
    submit(router, Metric.SDK, paginated=True)
    poll = router.get(JOB_DATA).mock(
        side_effect=page_handler([sdk_rows(0, 3), sdk_rows(3, 3), sdk_rows(6, 1)], total_key)
    )
    query = AnalyticsQuery(
        Metric.SDK,
        date(2024, 3, 1),
        date(2024, 3, 3),
        duration="day",
        services=("cdn",),
        params=(("includeCount", "true"),),
    )
    samples = clients.analytics.fetch(query)
    assert [s.labels["sdk"] for s in samples] == [f"sdk-{n}" for n in range(7)]
    assert [c.request.url.params["page"] for c in poll.calls] == ["0", "1", "2"]


def test_pagination_without_total_stops_at_an_empty_page(
    router: respx.MockRouter, clients: Clients
) -> None:
    submit(router, Metric.DEVICES, paginated=True)
    poll = router.get(JOB_DATA).mock(
        side_effect=page_handler([sdk_rows(0, 2), sdk_rows(2, 2)], total_key=None)
    )
    query = AnalyticsQuery(Metric.DEVICES, date(2024, 3, 1), date(2024, 3, 3))
    assert len(clients.analytics.fetch(query)) == 4
    assert [c.request.url.params["page"] for c in poll.calls] == ["0", "1", "2"]


def test_a_server_ignoring_page_does_not_loop(router: respx.MockRouter, clients: Clients) -> None:
    submit(router, Metric.TOP_URLS, paginated=True)
    rows = [{"url": "/a", "type": "cdn", "count": "1"}]
    poll = router.get(JOB_DATA).respond(200, json={"data": rows})
    query = AnalyticsQuery(Metric.TOP_URLS, date(2024, 3, 1), date(2024, 3, 3))
    assert len(clients.analytics.fetch(query)) == 1
    assert poll.call_count == 2


def test_unpaginated_job_reads_page_zero_only(router: respx.MockRouter, clients: Clients) -> None:
    submit(router, Metric.USAGE, paginated=False)
    poll = router.get(JOB_DATA).respond(
        200, json={"data": [{"date": "2024-03-04", "total_api_count": 26}], "totalDocs": 50}
    )
    clients.analytics.fetch(AnalyticsQuery(Metric.USAGE, date(2024, 3, 1), date(2024, 3, 4)))
    assert poll.call_count == 1


def test_ranges_over_90_days_are_split_and_merged(
    router: respx.MockRouter, clients: Clients
) -> None:
    jobs: list[tuple[str, str]] = []

    def submit_handler(request: httpx.Request) -> httpx.Response:
        jobs.append((request.url.params["from"], request.url.params["to"]))
        return httpx.Response(200, json={"jobId": f"job-{len(jobs)}", "paginated": False})

    def data_handler(request: httpx.Request, job: str) -> httpx.Response:
        start, _end = jobs[int(job.split("-")[1]) - 1]
        row = {"count": 1, "type": "cdn", "status": "200", "date": start}
        return httpx.Response(200, json={"data": [row]})

    router.get(f"{ANALYTICS}/analytics/v2/http-statuses").mock(side_effect=submit_handler)
    router.get(url__regex=rf"{ANALYTICS}/analytics/v2/job/(?P<job>[^/]+)/data").mock(
        side_effect=data_handler
    )
    query = status_query(start=date(2024, 1, 1), end=date(2024, 6, 29))  # 181 days
    samples = clients.analytics.fetch(query)
    assert jobs == [
        ("2024-01-01", "2024-03-30"),
        ("2024-03-31", "2024-06-28"),
        ("2024-06-29", "2024-06-29"),
    ]
    assert [s.at.date() for s in samples if s.at] == [
        date(2024, 1, 1),
        date(2024, 3, 31),
        date(2024, 6, 29),
    ]


def test_split_dateless_rows_are_summed(router: respx.MockRouter, clients: Clients) -> None:
    job_ids = iter(["job-1", "job-2"])
    router.get(f"{ANALYTICS}/analytics/v2/url").mock(
        side_effect=lambda request: httpx.Response(
            200, json={"jobId": next(job_ids), "paginated": False}
        )
    )
    rows = [{"url": "/a", "type": "cdn", "count": "2"}, {"url": "/b", "type": "cdn", "count": 1}]
    router.get(url__regex=r".*/job/job-\d/data").respond(200, json={"data": rows})
    query = AnalyticsQuery(Metric.TOP_URLS, date(2024, 1, 1), date(2024, 5, 1))
    samples = clients.analytics.fetch(query)
    assert {s.labels["url"]: s.values["count"] for s in samples} == {"/a": 4.0, "/b": 2.0}


@pytest.mark.parametrize(
    ("start", "end", "jobs"),
    [
        (date(2024, 1, 1), date(2024, 1, 1), 1),
        (date(2024, 1, 1), date(2024, 3, 30), 1),  # exactly 90 days
        (date(2024, 1, 1), date(2024, 3, 31), 2),  # 91 days
        (date(2023, 1, 1), date(2023, 12, 31), 5),  # 365 days
    ],
)
def test_split_range(start: date, end: date, jobs: int) -> None:
    chunks = list(split_range(start, end))
    assert len(chunks) == jobs
    assert chunks[0][0] == start
    assert chunks[-1][1] == end
    for (_, prev_end), (next_start, _) in itertools.pairwise(chunks):
        assert (next_start - prev_end).days == 1
    assert all((chunk_end - chunk_start).days < 90 for chunk_start, chunk_end in chunks)


def test_bad_rows_are_skipped_with_a_warning(
    router: respx.MockRouter, clients: Clients, captured_logs: list[dict[str, Any]]
) -> None:
    submit(router, Metric.HTTP_STATUSES)
    rows = [
        {"count": "many", "type": "cdn", "status": "200", "date": "2024-03-01"},
        {"count": 5, "type": "cdn", "status": "500", "date": "not a date"},
        "junk",
        {"count": "12", "type": "cdn", "status": 404, "date": "2024-03-01"},
    ]
    router.get(JOB_DATA).respond(200, json={"data": rows})
    samples = clients.analytics.fetch(status_query(api_key="blt-key"))
    assert len(samples) == 1
    assert samples[0].values == {"count": 12.0}
    assert samples[0].labels == {"service": "cdn", "status": "404", "stack": "blt-key"}
    warnings = [e for e in captured_logs if e["event"] == "analytics.rows.skipped"]
    assert len(warnings) == 1
    assert warnings[0]["skipped"] == 3
    assert warnings[0]["log_level"] == "warning"
