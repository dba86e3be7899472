"""The per-organization rate limit and its headers."""

from __future__ import annotations

from agent.simulator.ratelimit import RateLimiter
from tests.simulator.helpers import ORG, TOKEN, Api


def test_every_response_carries_rate_limit_headers(make_sim, make_api) -> None:
    api: Api = make_api(make_sim(rate_limit=10))
    ok = api.submit("usage")
    assert ok.headers["X-RateLimit-Limit"] == "10"
    assert ok.headers["X-RateLimit-Remaining"] == "9"
    error = api.submit("usage", headers={})
    assert error.status_code == 401
    assert error.headers["X-RateLimit-Remaining"] == "8"


def test_excess_requests_get_429_with_retry_after(make_sim, make_api) -> None:
    api: Api = make_api(make_sim(rate_limit=10))
    statuses = []
    for _ in range(6):
        statuses.append(api.submit("usage").status_code)
        statuses.append(api.automations("GET", "/projects").status_code)  # shares the budget
    assert statuses[:10] == [200] * 10
    assert statuses[10:] == [429, 429]
    limited = api.submit("usage")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    body = limited.json()
    assert body["error_message"] and body["error_code"] != 429
    assert [r.status for r in api.sim.requests][-3:] == [429, 429, 429]


def test_rate_limit_is_per_organization(make_sim, make_api) -> None:
    api: Api = make_api(make_sim(rate_limit=2))
    assert api.submit("usage").status_code == 200
    assert api.submit("usage").status_code == 200
    assert api.submit("usage").status_code == 429
    # Another organization has its own budget (and is then refused for its org).
    assert api.submit("usage", orgUid="other").status_code == 403
    other = api.http.get("/v1/projects", headers={"authtoken": TOKEN, "organization_uid": "x"})
    assert other.status_code == 403
    assert api.automations("GET", "/projects", headers={"organization_uid": ORG}).status_code == 429


def test_sliding_window() -> None:
    now = [100.0]
    limiter = RateLimiter(3, now=lambda: now[0])
    assert [limiter.acquire("org")[0] for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5
    assert limiter.acquire("org") == (False, 0)
    now[0] += 0.5  # the first three leave the window
    assert limiter.acquire("org") == (True, 2)
    assert limiter.remaining("org") == 2
    assert limiter.acquire("other") == (True, 2)
