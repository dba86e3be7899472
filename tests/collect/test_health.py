"""What the clients know of the APIs' health (the web UI's health page): per endpoint the
last answer and the last success, and the rate limiter's headroom."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import respx

from agent.clock import ManualClock
from agent.collect import ApiUnavailable, Clients

from .conftest import AUTOMATIONS

PROJECT = f"{AUTOMATIONS}/v1/projects/0123456789abcdef01"


def test_last_success_per_endpoint_and_the_servers_budget(
    router: respx.MockRouter, clients: Clients, clock: ManualClock
) -> None:
    router.get(PROJECT).side_effect = [
        httpx.Response(503, json={"error_message": "busy"}),
        httpx.Response(
            200,
            json={"project": {"id": "0123456789abcdef01", "title": "Ops"}},
            headers={"x-ratelimit-limit": "10", "x-ratelimit-remaining": "7"},
        ),
    ]
    assert clients.http.health.endpoints() == []
    clients.automations.get_project("0123456789abcdef01")
    (entry,) = clients.http.health.endpoints()
    assert entry.endpoint == "GET /v1/projects/{id}"  # one entry for every project
    assert (entry.attempts, entry.failures, entry.last_status) == (2, 1, 200)
    assert entry.last_ok == entry.last_attempt == clock.now()
    headroom = clients.http.limiter.headroom()
    assert (headroom.server_limit, headroom.server_remaining) == (10, 7)
    assert (headroom.capacity, headroom.free, headroom.paused_for) == (10, 8, 0.0)
    clock.advance(timedelta(seconds=1))
    assert clients.http.limiter.headroom().free == 10  # both requests left the window


def test_a_failing_endpoint_keeps_its_last_success(
    router: respx.MockRouter, clients: Clients, clock: ManualClock
) -> None:
    route = router.get(PROJECT)
    route.return_value = httpx.Response(
        200, json={"project": {"id": "0123456789abcdef01", "title": "Ops"}}
    )
    clients.automations.get_project("0123456789abcdef01")
    worked = clock.now()
    clock.advance(timedelta(minutes=5))
    route.side_effect = httpx.ConnectError("refused")
    with pytest.raises(ApiUnavailable):
        clients.automations.get_project("0123456789abcdef01")
    (entry,) = clients.http.health.endpoints()
    # the first attempt and max_retries more, all unanswered
    assert (entry.attempts, entry.failures, entry.last_status) == (5, 4, 0)
    assert entry.last_ok == worked
    assert entry.last_attempt is not None and entry.last_attempt > worked
