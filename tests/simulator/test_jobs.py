"""Analytics job lifecycle, the 90-day rule and pagination."""

from __future__ import annotations

from tests.simulator.helpers import JOB_DURATION, NOW, ORG, TODAY, Api, day_before


def test_job_is_active_until_job_duration_then_done(api: Api) -> None:
    submitted = api.submit("usage", duration="hour", services=["cdn"])
    assert submitted.status_code == 200
    body = submitted.json()
    assert set(body) == {"jobId", "paginated"}
    assert body["paginated"] is False

    active = api.retrieve(body["jobId"])
    assert active.status_code == 200
    assert "data" not in active.json()

    api.clock.advance(JOB_DURATION - 0.5)
    assert "data" not in api.retrieve(body["jobId"]).json()

    api.clock.advance(0.5)
    done = api.retrieve(body["jobId"]).json()
    assert done["uid"] == body["jobId"]
    assert done["data"]
    assert done["meta"]["orgUid"] == ORG
    assert done["meta"]["from"] == TODAY
    assert done["meta"]["duration"] == "hour"
    assert done["meta"]["services"] == ["cdn"]
    assert "totalDocs" not in done


def test_job_answers_are_a_snapshot_of_submission_time(api: Api) -> None:
    job_id = api.submit("usage", duration="hour").json()["jobId"]
    api.clock.advance(3 * 3600)
    rows = api.retrieve(job_id).json()["data"]
    # Submitted at 12:00: hours 00..12 have started, 13+ had not.
    assert len(rows) == NOW.hour + 1


def test_unknown_job_is_404(api: Api) -> None:
    response = api.retrieve("0123456789abcdef")
    assert response.status_code == 404
    assert response.json()["error_message"]


def test_job_page_must_be_a_number(api: Api) -> None:
    job_id = api.submit("devices").json()["jobId"]
    api.clock.advance(JOB_DURATION)
    assert api.retrieve(job_id, page="x").status_code == 400  # type: ignore[arg-type]


def test_range_over_90_days_fails_the_job(api: Api) -> None:
    too_long = api.submit("usage", **{"from": day_before(90), "to": TODAY})  # 91 days
    assert too_long.status_code == 200  # accepted; only the job fails
    job_id = too_long.json()["jobId"]
    assert "data" not in api.retrieve(job_id).json()
    api.clock.advance(JOB_DURATION)
    failed = api.retrieve(job_id)
    assert failed.status_code == 500
    assert failed.json()["error_message"] == "Job Failed"
    assert failed.json()["error_code"] != 500

    ninety = api.job("usage", **{"from": day_before(89), "to": TODAY})  # 90 days
    assert len(ninety["data"]) == 90


def test_paginated_endpoint_pages_and_total_docs(make_sim, make_api) -> None:
    api = make_api(make_sim(page_size=7))
    submitted = api.submit("devices", duration="hour", services=["cdn", "cma"]).json()
    assert submitted["paginated"] is True
    api.clock.advance(JOB_DURATION)
    first = api.retrieve(submitted["jobId"], page=0).json()
    total = first["totalDocs"]
    assert total > 14 and len(first["data"]) == 7
    rows = []
    for page in range(-(-total // 7)):
        rows += api.retrieve(submitted["jobId"], page=page).json()["data"]
    assert len(rows) == total
    assert api.retrieve(submitted["jobId"], page=total).json()["data"] == []
    # Page 0 is also the default.
    assert api.retrieve(submitted["jobId"]).json()["data"] == first["data"]


def test_non_paginated_endpoint_has_everything_on_page_zero(api: Api) -> None:
    job_id = api.submit("http-statuses", duration="minute", services=["cdn"]).json()["jobId"]
    api.clock.advance(JOB_DURATION)
    assert len(api.retrieve(job_id, page=0).json()["data"]) > 100
    assert api.retrieve(job_id, page=1).json()["data"] == []
