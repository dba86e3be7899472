"""The shared HTTP layer: error mapping, retries, Retry-After, auth headers, no secret leaks."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx

from agent.clock import ManualClock
from agent.collect import (
    ApiUnavailable,
    AuthenticationFailed,
    BadRequest,
    Clients,
    ContentstackError,
    InvalidApiKey,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    ValidationFailed,
)
from agent.collect.http import parse_retry_after

from .conftest import ANALYTICS, AUTHTOKEN, AUTOMATIONS, ORG

PROJECTS = f"{AUTOMATIONS}/v1/projects"

STATUS_TYPES = [
    (400, BadRequest),
    (401, AuthenticationFailed),
    (403, PermissionDenied),
    (404, NotFound),
    (412, InvalidApiKey),
    (422, ValidationFailed),
    (429, RateLimited),
    (500, ServerError),
    (502, ServerError),
    (503, ServerError),
    (504, ServerError),
]


def error_body(message: str, code: int = 141) -> dict[str, object]:
    return {"error_message": message, "error_code": code, "errors": {}}


@pytest.mark.parametrize(("status", "error_type"), STATUS_TYPES)
def test_every_documented_status_maps_to_its_type(
    router: respx.MockRouter, clients: Clients, status: int, error_type: type, clock: ManualClock
) -> None:
    router.get(PROJECTS).respond(status, json=error_body(f"failure {status}"))
    with pytest.raises(error_type) as caught:
        clients.automations.list_projects()
    error = caught.value
    assert isinstance(error, ContentstackError)
    assert error.status == status
    assert error.endpoint == "GET /v1/projects"
    assert error.error_code == 141
    assert f"failure {status}" in str(error)
    assert "limit" not in error.endpoint  # no query string


@pytest.mark.parametrize("status", [400, 401, 403, 404, 412, 422])
def test_no_retry_on_client_errors(
    router: respx.MockRouter, clients: Clients, clock: ManualClock, status: int
) -> None:
    route = router.get(PROJECTS).respond(status, json=error_body("nope"))
    with pytest.raises(ContentstackError):
        clients.automations.list_projects()
    assert route.call_count == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_are_retried_with_exponential_backoff(
    router: respx.MockRouter, clients: Clients, clock: ManualClock, status: int
) -> None:
    route = router.get(PROJECTS)
    route.side_effect = [
        httpx.Response(status, json=error_body("busy")),
        httpx.Response(status, json=error_body("busy")),
        httpx.Response(200, json={"projects": [{"id": "p1", "title": "One"}]}),
    ]
    projects = clients.automations.list_projects()
    assert [p.id for p in projects] == ["p1"]
    assert route.call_count == 3
    if status == 429:  # a 429 without Retry-After waits at least for the window to roll
        assert clock.sleeps == [1.0, 1.0]
    else:  # MaxRandom draws the ceiling of the full-jitter interval: 0.5, 1.0, ...
        assert clock.sleeps == [0.5, 1.0]


def test_retries_are_bounded_by_max_retries(
    router: respx.MockRouter, make_clients: Callable[..., Clients], clock: ManualClock
) -> None:
    clients = make_clients(max_retries=2)
    route = router.get(PROJECTS).respond(503, json=error_body("down"))
    with pytest.raises(ServerError) as caught:
        clients.automations.list_projects()
    assert route.call_count == 3
    assert clock.sleeps == [0.5, 1.0]
    assert caught.value.status == 503


def test_rate_limited_after_all_retries(
    router: respx.MockRouter, make_clients: Callable[..., Clients], clock: ManualClock
) -> None:
    clients = make_clients(max_retries=1)
    router.get(PROJECTS).respond(429, headers={"retry-after": "2"}, json=error_body("slow"))
    with pytest.raises(RateLimited):
        clients.automations.list_projects()
    assert clock.sleeps == [2.0]


def test_full_jitter_stays_within_the_exponential_ceiling(
    router: respx.MockRouter, make_clients: Callable[..., Clients], clock: ManualClock
) -> None:
    clients = make_clients(max_retries=6, rng=random.Random(7))
    router.get(PROJECTS).respond(502)
    with pytest.raises(ServerError):
        clients.automations.list_projects()
    ceilings = [0.5 * 2**n for n in range(6)]
    assert len(clock.sleeps) == 6
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(clock.sleeps, ceilings, strict=True))
    assert len(set(clock.sleeps)) > 1


def test_retry_after_seconds_is_honoured(
    router: respx.MockRouter, clients: Clients, clock: ManualClock
) -> None:
    route = router.get(PROJECTS)
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "7"}, json=error_body("slow down")),
        httpx.Response(503, headers={"Retry-After": "3"}, json=error_body("maintenance")),
        httpx.Response(200, json={"projects": []}),
    ]
    assert clients.automations.list_projects() == []
    assert clock.sleeps == [7.0, 3.0]


def test_retry_after_http_date_is_honoured(
    router: respx.MockRouter, clients: Clients, clock: ManualClock
) -> None:
    when = format_datetime(clock.now() + timedelta(seconds=12), usegmt=True)
    route = router.get(PROJECTS)
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": when}),
        httpx.Response(200, json={"projects": []}),
    ]
    clients.automations.list_projects()
    assert clock.sleeps == [12.0]


def test_retry_after_beyond_the_cap_fails_fast(
    router: respx.MockRouter, clients: Clients, clock: ManualClock
) -> None:
    route = router.get(PROJECTS).respond(429, headers={"Retry-After": "3600"})
    with pytest.raises(RateLimited, match="retry after 3600s"):
        clients.automations.list_projects()
    assert route.call_count == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [("5", 5.0), (" 1.5 ", 1.5), ("-3", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, ManualClock()) == expected


def test_past_http_date_means_no_wait() -> None:
    clock = ManualClock()
    past = format_datetime(clock.now() - timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(past, clock) == 0.0


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow connect"),
        httpx.ReadTimeout("slow read"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
def test_timeouts_and_connection_errors_are_retried(
    router: respx.MockRouter, clients: Clients, clock: ManualClock, failure: Exception
) -> None:
    route = router.get(PROJECTS)
    route.side_effect = [failure, failure, httpx.Response(200, json={"projects": []})]
    assert clients.automations.list_projects() == []
    assert route.call_count == 3
    assert clock.sleeps == [0.5, 1.0]


def test_persistent_timeouts_raise_api_unavailable(
    router: respx.MockRouter, clients: Clients, clock: ManualClock
) -> None:
    route = router.get(PROJECTS).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(ApiUnavailable, match="timed out after 4 attempt") as caught:
        clients.automations.list_projects()
    assert route.call_count == 4
    assert caught.value.status is None
    assert caught.value.endpoint == "GET /v1/projects"


def test_headers_for_both_apis(router: respx.MockRouter, clients: Clients) -> None:
    projects = router.get(PROJECTS).respond(200, json={"projects": []})
    job = router.get(f"{ANALYTICS}/analytics/v2/usage").respond(
        200, json={"jobId": "j1", "paginated": False}
    )
    router.get(f"{ANALYTICS}/analytics/v2/job/j1/data").respond(200, json={"data": []})
    clients.automations.list_projects()
    from datetime import date

    from agent.collect.models import AnalyticsQuery, Metric

    clients.analytics.fetch(AnalyticsQuery(Metric.USAGE, date(2024, 3, 1), date(2024, 3, 2)))
    automations_headers = projects.calls.last.request.headers
    assert automations_headers["authtoken"] == AUTHTOKEN
    assert automations_headers["organization_uid"] == ORG
    analytics_request = job.calls.last.request
    assert analytics_request.headers["authtoken"] == AUTHTOKEN
    assert "organization_uid" not in analytics_request.headers
    assert analytics_request.url.params["orgUid"] == ORG
    assert "authorization" not in analytics_request.headers


def test_non_json_error_body_still_gives_a_typed_error(
    router: respx.MockRouter, clients: Clients
) -> None:
    router.get(PROJECTS).respond(403, text="<html>Forbidden</html>")
    with pytest.raises(PermissionDenied, match="Forbidden") as caught:
        clients.automations.list_projects()
    assert caught.value.error_code is None


def test_server_echoing_the_token_never_leaks_it(
    router: respx.MockRouter, clients: Clients, captured_logs: list[dict[str, object]]
) -> None:
    router.get(PROJECTS).respond(
        401, json=error_body(f"authtoken {AUTHTOKEN} is not valid", code=105)
    )
    with pytest.raises(AuthenticationFailed) as caught:
        clients.automations.list_projects()
    assert AUTHTOKEN not in str(caught.value)
    assert AUTHTOKEN not in repr(caught.value)
    assert caught.value.error_code == 105
    assert captured_logs
    assert all(AUTHTOKEN not in repr(entry) for entry in captured_logs)


def test_clients_without_credentials_refuse_to_start(clock: ManualClock) -> None:
    from agent.collect import build_clients

    from .conftest import make_settings

    with pytest.raises(ValueError, match="no credentials"):
        build_clients(make_settings(authtoken=None), clock)


def test_errors_survive_pickling_without_secrets() -> None:
    import pickle

    error = ServerError(f"boom {AUTHTOKEN}", status=502, endpoint="GET /v1/projects", error_code=9)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ServerError
    assert (copy.status, copy.endpoint, copy.error_code) == (502, "GET /v1/projects", 9)
    assert AUTHTOKEN not in str(copy) and AUTHTOKEN not in repr(copy)


def test_a_client_built_in_the_background_raises_its_failure_where_it_is_used(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    # without a transport the httpx client (its CA bundle) is built on a thread
    from agent.collect import http
    from agent.collect.http import HttpClient

    from .conftest import make_settings

    def no_ca_bundle(**_options: object) -> httpx.Client:
        raise FileNotFoundError("no CA bundle")

    monkeypatch.setattr(http.httpx, "Client", no_ca_bundle)
    client = HttpClient(make_settings(), clock)
    with pytest.raises(FileNotFoundError, match="no CA bundle"):
        client.get_json("GET", f"{ANALYTICS}/v2/usage")
    client.close()  # nothing was built, nothing to close
