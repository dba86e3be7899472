"""The clients against the simulator, over real HTTP on 127.0.0.1.

Jobs run on the simulator's injected ManualClock, so polling waits cost no real time.
The server counts its rate limit in real seconds, so the clients here get a limiter on
real time too (as production does); only the rate-limit test fires enough requests
for that to take a few seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from agent.clock import ManualClock, SystemClock
from agent.collect import (
    ApiUnavailable,
    AuthenticationFailed,
    BadRequest,
    Clients,
    ContentstackError,
    InvalidApiKey,
    JobFailed,
    JobTimeout,
    MalformedResponse,
    NotFound,
    PermissionDenied,
    RateLimited,
    RateLimiter,
    ServerError,
    TriggerInactive,
    ValidationFailed,
    build_clients,
)
from agent.collect.models import AnalyticsQuery, Metric
from agent.config import ContentstackSettings
from agent.simulator import Fault, Scenario, Simulator

from .conftest import MaxRandom

pytestmark = pytest.mark.timeout(60)

AUTHTOKEN = "blt-sim-authtoken-7f3a9c"
CLIENT_ID = "stackwatch-m2m"
CLIENT_SECRET = "sim-client-secret-0b1d"
TRIGGER_KEY = "purge-secret"
ORG = "org1"
NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
WEEK = (date(2024, 6, 8), date(2024, 6, 14))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def job_duration() -> float:
    # short jobs (in ManualClock seconds) keep each fetch at three requests, so the tests
    # stay within the real-time budget of 10 requests per second; polling has its own test
    return 0.4


@pytest.fixture
def sim(clock: ManualClock, job_duration: float) -> Iterator[Simulator]:
    with Simulator(
        Scenario(),
        clock=clock,
        authtoken=AUTHTOKEN,
        organization_uid=ORG,
        oauth_clients={CLIENT_ID: CLIENT_SECRET},
        oauth_token_ttl=3600.0,
        job_duration=job_duration,
        rate_limit=10,
        page_size=20,
    ) as simulator:
        yield simulator


def settings_for(sim: Simulator, **overrides: Any) -> ContentstackSettings:
    values: dict[str, Any] = {
        "organization_uid": ORG,
        "authtoken": SecretStr(AUTHTOKEN),
        "analytics_base_url": sim.url,
        "automations_base_url": sim.url,
        "oauth_token_url": f"{sim.url}/token",
        "max_retries": 3,
        "request_timeout": 2,
        "job_timeout": 60,
    }
    values.update(overrides)
    return ContentstackSettings(**values)


@pytest.fixture
def connect(sim: Simulator, clock: ManualClock) -> Iterator[Callable[..., Clients]]:
    built: list[Clients] = []

    def factory(*, real_time_limiter: bool = True, **overrides: Any) -> Clients:
        # a limiter on the ManualClock suits tests of a few requests: its pauses cost nothing
        limiter_clock = SystemClock() if real_time_limiter else clock
        clients = build_clients(
            settings_for(sim, **overrides),
            clock,
            rng=MaxRandom(),
            limiter=RateLimiter(10, limiter_clock),
        )
        built.append(clients)
        return clients

    yield factory
    for clients in built:
        clients.close()


@pytest.fixture
def clients(connect: Callable[..., Clients]) -> Clients:
    return connect()


def statuses(**overrides: Any) -> AnalyticsQuery:
    values: dict[str, Any] = {
        "metric": Metric.HTTP_STATUSES,
        "start": WEEK[0],
        "end": WEEK[1],
        "duration": "day",
        "services": ("cdn", "cma"),
    }
    values.update(overrides)
    return AnalyticsQuery(**values)


def job_data_requests(sim: Simulator) -> list[Any]:
    return [r for r in sim.requests if r.path.startswith("/analytics/v2/job/")]


# -- Analytics ----------------------------------------------------------------------------------


@pytest.mark.parametrize("job_duration", [2.0])
def test_job_polling(sim: Simulator, clients: Clients, clock: ManualClock) -> None:
    samples = clients.analytics.fetch(statuses(api_key="blt5a1c0d2e3f4a5b6c"))
    assert clock.sleeps == [0.5, 1.0, 2.0]  # the job takes 2 s of the simulator's clock
    submit = sim.requests[0]
    assert submit.path == "/analytics/v2/http-statuses"
    assert submit.query["orgUid"] == [ORG]
    assert submit.query["from"] == ["2024-06-08"] and submit.query["to"] == ["2024-06-14"]
    assert submit.query["services"] == ['["cdn","cma"]']
    assert submit.headers["authtoken"] == AUTHTOKEN
    polls = job_data_requests(sim)
    assert len(polls) == 4
    assert all(r.query["page"] == ["0"] and r.query["orgUid"] == [ORG] for r in polls)
    assert samples
    dated = [s for s in samples if s.values.get("count", 0) > 0]
    assert {s.labels["service"] for s in dated} == {"cdn", "cma"}
    assert {s.labels["stack"] for s in samples} == {"blt5a1c0d2e3f4a5b6c"}
    assert all(s.at is not None and s.at.tzinfo is not None for s in samples)
    assert all(WEEK[0] <= s.at.date() <= WEEK[1] for s in samples if s.at)
    assert "200" in {s.labels.get("status") for s in samples}


@pytest.mark.parametrize("metric", list(Metric))
def test_every_metric_parses(clients: Clients, metric: Metric) -> None:
    query = AnalyticsQuery(
        metric,
        WEEK[0],
        WEEK[1],
        duration="day",
        services=("cdn", "cma"),
        params=(("includeCount", "true"), ("includeTotalCount", "true")),
    )
    samples = clients.analytics.fetch(query)
    assert samples
    assert all(s.metric == metric.value for s in samples)
    assert all(s.values for s in samples)


@pytest.mark.parametrize("fmt", ["iso", "space", "epoch", "epoch_ms"])
def test_subday_date_forms(clock: ManualClock, fmt: str) -> None:
    with Simulator(
        Scenario(), clock=clock, authtoken=AUTHTOKEN, organization_uid=ORG, subday_date_format=fmt
    ) as simulator:
        clients = build_clients(
            settings_for(simulator), clock, limiter=RateLimiter(10, SystemClock())
        )
        with clients:
            query = statuses(start=date(2024, 6, 15), end=date(2024, 6, 15), duration="hour")
            samples = clients.analytics.fetch(query)
    hours = {s.at for s in samples}
    assert datetime(2024, 6, 15, 11, tzinfo=UTC) in hours
    assert all(h is not None and h.utcoffset() == timedelta(0) for h in hours)


def test_pagination(sim: Simulator, clients: Clients) -> None:
    query = AnalyticsQuery(
        Metric.DEVICES, WEEK[0], WEEK[1], duration="day", services=("cdn", "cma")
    )
    samples = clients.analytics.fetch(query)
    pages = [r.query["page"][0] for r in job_data_requests(sim)]
    assert pages[-3:] == ["0", "1", "2"] and set(pages) == {"0", "1", "2"}
    assert 40 < len(samples) <= 60  # 3 pages of at most 20
    keys = [(s.at, tuple(sorted(s.labels.items()))) for s in samples if s.values["count"] > 0]
    assert len(keys) == len(set(keys))


def test_ninety_day_split(sim: Simulator, clients: Clients) -> None:
    query = AnalyticsQuery(Metric.USAGE, date(2024, 1, 1), date(2024, 6, 14), duration="day")
    samples = clients.analytics.fetch(query)  # 166 days: one job would fail
    submits = [r for r in sim.requests if r.path == "/analytics/v2/usage"]
    ranges = [(r.query["from"][0], r.query["to"][0]) for r in submits]
    assert ranges == [("2024-01-01", "2024-03-30"), ("2024-03-31", "2024-06-14")]
    days = {s.at.date() for s in samples if s.at}
    assert min(days) == date(2024, 1, 1) and max(days) == date(2024, 6, 14)


def test_job_failed(sim: Simulator, clients: Clients, clock: ManualClock) -> None:
    sim.add_fault(Fault("job_failed", path_prefix="/analytics/v2/job/"))
    with pytest.raises(JobFailed, match="Job Failed"):
        clients.analytics.fetch(statuses())
    assert len(job_data_requests(sim)) == 1  # a failed job is not retried


def test_job_timeout(sim: Simulator, connect: Callable[..., Clients], clock: ManualClock) -> None:
    clients = connect(job_timeout=20)
    sim.add_fault(Fault("job_never_finishes", path_prefix="/analytics/v2/http-statuses"))
    with pytest.raises(JobTimeout):
        clients.analytics.fetch(statuses())
    assert sum(clock.sleeps) == pytest.approx(20.0)
    assert len(job_data_requests(sim)) == 7  # at 0, 0.5, 1.5, 3.5, 7.5, 15.5 and 20 s


def test_oauth_token_fetched_once_and_refreshed(
    sim: Simulator, connect: Callable[..., Clients], clock: ManualClock
) -> None:
    clients = connect(
        authtoken=None, oauth_client_id=CLIENT_ID, oauth_client_secret=SecretStr(CLIENT_SECRET)
    )
    query = statuses(start=WEEK[1])
    clients.analytics.fetch(query)
    clients.analytics.fetch(query)
    tokens = [r for r in sim.requests if r.path == "/token"]
    assert len(tokens) == 1
    analytics = [r for r in sim.requests if r.path.startswith("/analytics/")]
    assert all(r.headers["authorization"].startswith("Bearer ") for r in analytics)
    assert all("authtoken" not in r.headers for r in analytics)
    clock.advance(3600 - 30)  # inside the refresh margin of a one-hour token
    clients.analytics.fetch(query)
    assert len([r for r in sim.requests if r.path == "/token"]) == 2
    assert all(r.status == 200 for r in sim.requests)


# -- errors and retries -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 412, 422])
def test_documented_client_errors_are_typed_and_not_retried(
    sim: Simulator, clients: Clients, status: int
) -> None:
    expected = {
        400: BadRequest,
        401: AuthenticationFailed,
        403: PermissionDenied,
        404: NotFound,
        412: InvalidApiKey,
        422: ValidationFailed,
    }[status]
    sim.add_fault(Fault("http_status", path_prefix="/v1/projects", status=status))
    with pytest.raises(expected) as caught:
        clients.automations.list_projects()
    assert caught.value.status == status
    assert caught.value.endpoint == "GET /v1/projects"
    assert isinstance(caught.value.error_code, int) and caught.value.error_code != status
    assert len(sim.requests) == 1


def test_real_error_answers(sim: Simulator, connect: Callable[..., Clients]) -> None:
    clients = connect()
    with pytest.raises(InvalidApiKey):
        clients.analytics.fetch(statuses(api_key="blt-unknown"))
    with pytest.raises(ValidationFailed):
        clients.analytics.fetch(statuses(start=date(2024, 7, 1), end=date(2024, 7, 2)))
    with pytest.raises(BadRequest):
        clients.analytics.fetch(statuses(params=(("httpStatusCode", "abc"),)))
    with pytest.raises(NotFound):
        clients.automations.get_project("0" * 32)
    with pytest.raises(PermissionDenied):
        connect(organization_uid="someone-else").automations.list_projects()
    with pytest.raises(AuthenticationFailed):
        connect(authtoken=SecretStr("blt-wrong-token")).analytics.fetch(statuses())
    assert len(sim.requests) == 6  # none of them retried


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_retried_then_raised(
    sim: Simulator, clients: Clients, clock: ManualClock, status: int
) -> None:
    sim.add_fault(Fault("http_status", path_prefix="/v1/projects", status=status))
    with pytest.raises(ServerError) as caught:
        clients.automations.list_projects()
    assert caught.value.status == status
    assert len(sim.requests) == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_server_error_recovers(sim: Simulator, clients: Clients) -> None:
    sim.add_fault(Fault("http_status", path_prefix="/v1/projects", status=502, times=2))
    assert clients.automations.list_projects()
    assert [r.status for r in sim.requests] == [502, 502, 200]


def test_429_with_retry_after(
    sim: Simulator, connect: Callable[..., Clients], clock: ManualClock
) -> None:
    clients = connect(real_time_limiter=False)
    sim.add_fault(
        Fault("http_status", path_prefix="/v1/projects", status=429, retry_after=3, times=2)
    )
    assert clients.automations.list_projects()
    assert clock.sleeps == [3.0, 3.0]
    assert [r.status for r in sim.requests] == [429, 429, 200]


def test_429_until_retries_run_out(
    sim: Simulator, connect: Callable[..., Clients], clock: ManualClock
) -> None:
    clients = connect(max_retries=2, real_time_limiter=False)
    sim.add_fault(Fault("http_status", path_prefix="/v1/projects", status=429, retry_after=1))
    with pytest.raises(RateLimited):
        clients.automations.list_projects()
    assert clock.sleeps == [1.0, 1.0]


def test_disconnects_and_timeouts(
    sim: Simulator, connect: Callable[..., Clients], clock: ManualClock
) -> None:
    clients = connect(request_timeout=0.3)
    sim.add_fault(Fault("disconnect", path_prefix="/v1/projects", times=1))
    sim.add_fault(Fault("timeout", path_prefix="/v1/projects", times=1, delay=0.5))
    assert clients.automations.list_projects()
    assert clock.sleeps == [0.5, 1.0]
    sim.add_fault(Fault("disconnect", path_prefix="/v1/projects"))
    with pytest.raises(ApiUnavailable):
        clients.automations.list_projects()


def test_slow_answer_within_the_timeout(sim: Simulator, connect: Callable[..., Clients]) -> None:
    clients = connect(request_timeout=2)
    sim.add_fault(Fault("slow", path_prefix="/v1/projects", times=1, delay=0.2))
    assert clients.automations.list_projects()


def test_malformed_json(sim: Simulator, clients: Clients) -> None:
    sim.add_fault(Fault("malformed_json", path_prefix="/v1/projects"))
    with pytest.raises(MalformedResponse):
        clients.automations.list_projects()
    assert len(sim.requests) == 1


# -- Automations and triggers -------------------------------------------------------------------


def test_automations_round_trip(sim: Simulator, clients: Clients, clock: ManualClock) -> None:
    api = clients.automations
    (project,) = api.list_projects()
    assert api.get_project(project.id).title == project.title
    automations = {a.title: a for a in api.list_automations(project.id)}
    notify = automations["Notify on publish"]
    detailed = api.get_automation(project.id, notify.id)
    assert detailed.id == notify.id
    assert api.disable(project.id, notify.id)  # the API's message
    assert not api.get_automation(project.id, notify.id).active
    api.enable(project.id, notify.id)
    assert api.get_automation(project.id, notify.id).active
    with pytest.raises(ValidationFailed):
        api.enable(project.id, automations["Draft workflow"].id)
    assert len(api.audit_logs(project.id)) >= 2
    executions = api.list_executions(project.id, limit=5)
    assert len(executions) == 5
    assert api.get_execution(project.id, executions[0].id).id == executions[0].id
    since = NOW - timedelta(hours=1)
    samples = api.execution_samples(project.id, since)
    assert samples and all(s.at is not None and s.at >= since for s in samples)
    assert {s.labels["automation"] for s in samples} == {notify.id}
    assert all(s.values["count"] == 1 and "duration" in s.values for s in samples)
    management = [r for r in sim.requests if r.path.startswith("/v1/")]
    assert all(r.headers["organization_uid"] == ORG for r in management)
    assert all(r.headers["authtoken"] == AUTHTOKEN for r in management)
    patches = [r for r in management if r.method == "PATCH"]
    assert [p.body for p in patches] == [
        b'{"active":false}',
        b'{"active":true}',
        b'{"active":true}',
    ]


def test_triggers(sim: Simulator, clients: Clients) -> None:
    result = clients.trigger.call(
        "purge-cache", body={"why": "test"}, secret=SecretStr(TRIGGER_KEY)
    )
    assert result.status == 200
    with pytest.raises(AuthenticationFailed):
        clients.trigger.call("purge-cache")
    clients.trigger.call("notify-publish", method="GET")
    with pytest.raises(TriggerInactive):
        clients.trigger.call("draft-workflow")
    with pytest.raises(NotFound):
        clients.trigger.call("no-such-trigger")
    triggers = [r for r in sim.requests if r.path.startswith("/automations-api/run/")]
    assert len(triggers) == 5
    assert all(
        "authtoken" not in r.headers and "organization_uid" not in r.headers for r in triggers
    )
    assert triggers[0].headers["ah-http-key"] == TRIGGER_KEY
    assert all("ah-http-key" not in r.headers for r in triggers[1:])
    assert triggers[2].method == "GET"


# -- cross-cutting ------------------------------------------------------------------------------


def test_secrets_never_in_logs_or_errors(
    sim: Simulator, connect: Callable[..., Clients], clock: ManualClock
) -> None:
    errors: list[ContentstackError] = []
    with structlog.testing.capture_logs() as logs:
        oauth = connect(
            authtoken=None, oauth_client_id=CLIENT_ID, oauth_client_secret=SecretStr(CLIENT_SECRET)
        )
        oauth.analytics.fetch(statuses(start=WEEK[1]))
        plain = connect()
        sim.add_fault(Fault("http_status", path_prefix="/v1/", status=503, times=2))
        plain.automations.list_projects()
        for action in (
            lambda: plain.trigger.call("purge-cache", secret=SecretStr("wrong-key-123")),
            lambda: plain.trigger.call("draft-workflow", secret=SecretStr(TRIGGER_KEY)),
            lambda: connect(authtoken=SecretStr(AUTHTOKEN + "x")).automations.list_projects(),
            lambda: oauth.analytics.fetch(statuses(start=date(2030, 1, 1), end=date(2030, 1, 2))),
        ):
            with pytest.raises(ContentstackError) as caught:
                action()
            errors.append(caught.value)
        sim.add_fault(Fault("http_status", path_prefix="/v1/", status=500))
        with pytest.raises(ServerError) as caught:
            plain.automations.list_projects()
        errors.append(caught.value)
    bearer_tokens = {
        r.headers["authorization"].split(" ", 1)[1]
        for r in sim.requests
        if r.headers.get("authorization", "").startswith("Bearer ")
    }
    assert bearer_tokens
    secrets = {AUTHTOKEN, CLIENT_SECRET, TRIGGER_KEY, "wrong-key-123", *bearer_tokens}
    assert logs
    texts = [repr(entry) for entry in logs] + [str(e) for e in errors] + [repr(e) for e in errors]
    leaks = [(secret, text) for text in texts for secret in secrets if secret in text]
    assert leaks == []


def test_rate_limit_never_above_ten_per_second() -> None:
    with Simulator(Scenario(), authtoken=AUTHTOKEN, organization_uid=ORG, rate_limit=10) as sim:
        # two sets of clients of one organization, as two collectors of the daemon would be
        clients = [build_clients(settings_for(sim), SystemClock()) for _ in range(2)]
        shared = clients[0].http.limiter
        assert all(c.http.limiter is shared for c in clients)  # one limiter per organization
        failures: list[BaseException] = []

        def worker(index: int) -> None:
            api = clients[index % 2]
            try:
                for n in range(7):
                    if n % 2:
                        api.automations.list_projects()
                    else:
                        api.trigger.call("notify-publish", method="GET")
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        for c in clients:
            c.close()
        requests = sim.requests
    assert failures == []
    assert len(requests) == 42
    assert all(r.status == 200 for r in requests)  # never a 429
    times = sorted(r.received_at for r in requests)
    for i, start in enumerate(times):
        in_window = sum(1 for t in times[i:] if t <= start + 1.0)
        assert in_window <= 10, f"{in_window} requests within 1 s from {start}"


@pytest.mark.parametrize("job_duration", [2.0])
def test_a_batch_is_submitted_first_then_polled_at_the_observed_latency(
    sim: Simulator, clients: Clients, clock: ManualClock
) -> None:
    clients.analytics.fetch(statuses(api_key="blt5a1c0d2e3f4a5b6c"))  # learns: jobs take ~2 s
    sim.clear_requests()
    queries = [statuses(duration="hour", start=WEEK[1] - timedelta(days=d)) for d in range(4)]
    noon = datetime.combine(WEEK[1], datetime.min.time(), UTC) + timedelta(hours=12)
    results = clients.analytics.fetch_many(
        [*queries, statuses(api_key="blt-unknown")], newer_than={queries[0]: noon}
    )
    paths = [r.path for r in sim.requests]
    assert all(p.startswith("/analytics/v2/http-statuses") for p in paths[:5])
    assert len(paths) == 5 + len(queries)  # every job answered on its first retrieve
    assert isinstance(results[statuses(api_key="blt-unknown")], InvalidApiKey)
    held_back = results[queries[0]]
    assert isinstance(held_back, list) and held_back
    assert all(s.at is not None and s.at >= noon for s in held_back)
    whole_day = clients.analytics.fetch(queries[0])
    assert any(s.at is not None and s.at < noon for s in whole_day)
