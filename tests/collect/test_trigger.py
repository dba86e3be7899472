"""TriggerCaller: URL, methods, the optional ah-http-key secret, TriggerInactive, retries."""

from __future__ import annotations

import json

import httpx
import pytest
import respx
from pydantic import SecretStr

from agent.clock import ManualClock
from agent.collect import ApiUnavailable, Clients, ServerError, TriggerInactive

from .conftest import ANALYTICS

TRIGGER = "trg0123456789"
URL = f"{ANALYTICS}/automations-api/run/{TRIGGER}"
KEY = "ah-secret-key-42"


def test_post_with_secret(
    router: respx.MockRouter, clients: Clients, captured_logs: list[dict[str, object]]
) -> None:
    route = router.post(URL).respond(200, json={"result": "ok"})
    result = clients.trigger.call(TRIGGER, body={"alert": "x"}, secret=SecretStr(KEY))
    assert result.status == 200 and result.body == {"result": "ok"}
    request = route.calls.last.request
    assert request.headers["ah-http-key"] == KEY
    assert "authtoken" not in request.headers
    assert "authorization" not in request.headers
    assert "organization_uid" not in request.headers
    assert json.loads(request.content) == {"alert": "x"}
    assert all(KEY not in repr(entry) and TRIGGER not in repr(entry) for entry in captured_logs)


def test_get_without_secret(router: respx.MockRouter, clients: Clients) -> None:
    route = router.get(URL).respond(200, text="accepted")
    result = clients.trigger.call(TRIGGER, method="GET")
    assert result.body == "accepted"
    assert "ah-http-key" not in route.calls.last.request.headers
    assert route.calls.last.request.content == b""


def test_full_url_is_accepted(router: respx.MockRouter, clients: Clients) -> None:
    route = router.post("https://other.test/automations-api/run/abc").respond(200, json={})
    clients.trigger.call("https://other.test/automations-api/run/abc")
    assert route.call_count == 1


@pytest.mark.parametrize("status", [200, 400])
def test_inactive_automation(router: respx.MockRouter, clients: Clients, status: int) -> None:
    router.post(URL).respond(
        status,
        json={"result": "The rule is currently being tested or not activated", "trigger_id": "t"},
    )
    with pytest.raises(TriggerInactive) as caught:
        clients.trigger.call(TRIGGER, secret=SecretStr(KEY))
    assert caught.value.status == status
    assert TRIGGER not in str(caught.value)
    assert KEY not in repr(caught.value)
    assert caught.value.endpoint == "POST /automations-api/run/{trigger_id}"


def test_rate_limited_trigger_is_retried(
    router: respx.MockRouter, clients: Clients, clock: ManualClock
) -> None:
    route = router.post(URL)
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(200, json={}),
    ]
    clients.trigger.call(TRIGGER)
    assert route.call_count == 2
    assert clock.sleeps == [2.0]


def test_refused_connection_is_retried(
    router: respx.MockRouter, clients: Clients, clock: ManualClock
) -> None:
    route = router.post(URL)
    route.side_effect = [httpx.ConnectError("refused"), httpx.Response(200, json={})]
    clients.trigger.call(TRIGGER)
    assert route.call_count == 2


@pytest.mark.parametrize(
    "failure", [httpx.ReadTimeout("slow"), httpx.Response(500), httpx.Response(502)]
)
def test_a_run_that_may_have_happened_is_not_repeated(
    router: respx.MockRouter, clients: Clients, failure: object
) -> None:
    route = router.post(URL)
    route.side_effect = [failure, httpx.Response(200, json={})]
    with pytest.raises((ApiUnavailable, ServerError)):
        clients.trigger.call(TRIGGER)
    assert route.call_count == 1


def test_idempotent_trigger_is_retried(router: respx.MockRouter, clients: Clients) -> None:
    route = router.post(URL)
    route.side_effect = [httpx.Response(502), httpx.Response(200, json={})]
    clients.trigger.call(TRIGGER, idempotent=True)
    assert route.call_count == 2
