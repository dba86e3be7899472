"""Every documented Analytics validation error."""

from __future__ import annotations

from typing import Any

import pytest

from tests.simulator.helpers import TODAY, Api, day_before

TOMORROW = "2024-02-06"
BASE = {"duration": "day", "services": '["cdn"]'}


@pytest.mark.parametrize(
    ("metric", "params", "status", "field"),
    [
        ("usage", {"from": None}, 400, "from"),
        ("usage", {"to": None}, 400, "to"),
        ("usage", {"from": "05-02-2024"}, 400, "from"),
        ("usage", {"from": "2024-02-30"}, 400, "from"),
        ("usage", {"to": "2024/02/05"}, 400, "to"),
        ("usage", {"from": TOMORROW, "to": TOMORROW}, 422, "from"),
        ("usage", {"from": TODAY, "to": day_before(1)}, 422, "to"),
        ("usage", {"duration": "fortnight"}, 400, "duration"),
        ("usage", {"services": "cdn"}, 400, "services"),
        ("usage", {"services": '["cdn", "ftp"]'}, 400, "services"),
        ("usage", {"services": "[]"}, 400, "services"),
        ("usage", {"services": '{"cdn": 1}'}, 400, "services"),
        ("usage", {"orderBy": "2"}, 400, "orderBy"),
        ("usage", {"includeCount": "yes"}, 400, "includeCount"),
        ("http-statuses", {"duration": None}, 400, "duration"),
        ("http-statuses", {"services": None}, 400, "services"),
        ("http-statuses", {"httpStatusCode": "OK"}, 400, "httpStatusCode"),
        ("hit-miss-ratio", {"duration": None}, 400, "duration"),
        ("hit-miss-ratio", {"services": None}, 400, "services"),
        ("hit-miss-ratio", {"cache": "MAYBE"}, 400, "cache"),
        ("sdk", {}, 400, "includeCount"),
        ("sdk", {"includeCount": "true", "limit": "901"}, 422, "limit"),
        ("sdk", {"includeCount": "true", "limit": "ten"}, 400, "limit"),
        ("sdk", {"includeCount": "true", "skip": "-1"}, 400, "skip"),
        ("url", {}, 400, "includeTotalCount"),
    ],
)
def test_invalid_parameters(
    api: Api, metric: str, params: dict[str, Any], status: int, field: str
) -> None:
    response = api.submit(metric, **{**BASE, **params})
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error_message", "error_code", "errors"}
    assert field in body["errors"]
    assert body["error_code"] != status


@pytest.mark.parametrize(
    ("metric", "params"),
    [
        ("http-statuses", {"httpStatusCode": "5xx"}),
        ("http-statuses", {"httpStatusCode": "500,503"}),
        ("hit-miss-ratio", {"cache": "all"}),
        ("usage", {"services": None, "duration": None}),
        ("sdk", {"includeCount": "false", "limit": "900", "skip": "3"}),
        ("url", {"includeTotalCount": "true", "services": None}),
        ("subscription", {"services": None, "duration": None}),
        ("usage", {"duration": "historic"}),
    ],
)
def test_valid_parameters_are_accepted(api: Api, metric: str, params: dict[str, Any]) -> None:
    assert api.submit(metric, **{**BASE, **params}).status_code == 200


@pytest.mark.parametrize("duration", ["sec", "minute", "hour", "day", "week", "month", "year"])
def test_every_duration_is_accepted(api: Api, duration: str) -> None:
    assert api.submit("usage", duration=duration).status_code == 200


def test_unknown_endpoint_is_404(api: Api) -> None:
    assert api.submit("latency").status_code == 404


def test_metric_endpoints_are_get_only(api: Api) -> None:
    response = api.http.post(
        "/analytics/v2/usage",
        params={"orgUid": "org1", "from": TODAY, "to": TODAY},
        headers={"authtoken": "tok"},
    )
    assert response.status_code == 405
