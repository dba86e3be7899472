"""OAuth M2M: client-credentials grant, one token reused, refreshed before expiry and on a 401."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from pydantic import SecretStr

from agent.clock import ManualClock
from agent.collect import AuthenticationFailed, Clients, MalformedResponse

from .conftest import AUTOMATIONS, CLIENT_SECRET

TOKEN_URL = "https://auth.test/token"
PROJECTS = f"{AUTOMATIONS}/v1/projects"


@pytest.fixture
def oauth_clients(make_clients: Callable[..., Clients]) -> Clients:
    return make_clients(
        authtoken=None,
        oauth_client_id="client-1",
        oauth_client_secret=SecretStr(CLIENT_SECRET),
        oauth_token_url=TOKEN_URL,
    )


def token_answer(token: str, expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": token, "expires_in": expires_in, "organization_uid": "org1"}
    )


def test_token_fetched_once_and_sent_as_bearer(
    router: respx.MockRouter, oauth_clients: Clients
) -> None:
    token_route = router.post(TOKEN_URL).mock(return_value=token_answer("access-AAA-1"))
    projects = router.get(PROJECTS).respond(200, json={"projects": []})
    for _ in range(3):
        oauth_clients.automations.list_projects()
    assert token_route.call_count == 1
    grant = token_route.calls.last.request
    assert grant.headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(grant.content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["client-1"],
        "client_secret": [CLIENT_SECRET],
    }
    sent = projects.calls.last.request.headers
    assert sent["authorization"] == "Bearer access-AAA-1"
    assert "authtoken" not in sent


def test_token_refreshed_before_it_expires(
    router: respx.MockRouter, oauth_clients: Clients, clock: ManualClock
) -> None:
    token_route = router.post(TOKEN_URL)
    token_route.side_effect = [token_answer("access-AAA-1", 600), token_answer("access-BBB-2")]
    projects = router.get(PROJECTS).respond(200, json={"projects": []})
    oauth_clients.automations.list_projects()
    clock.advance(530)  # still 70 s of life, more than the 60 s margin
    oauth_clients.automations.list_projects()
    assert token_route.call_count == 1
    clock.advance(15)  # 55 s left: inside the refresh margin
    oauth_clients.automations.list_projects()
    assert token_route.call_count == 2
    assert projects.calls.last.request.headers["authorization"] == "Bearer access-BBB-2"


def test_a_401_fetches_a_new_token_once(router: respx.MockRouter, oauth_clients: Clients) -> None:
    token_route = router.post(TOKEN_URL)
    token_route.side_effect = [token_answer("access-AAA-1"), token_answer("access-BBB-2")]
    projects = router.get(PROJECTS)
    projects.side_effect = [
        httpx.Response(401, json={"error_message": "token revoked"}),
        httpx.Response(200, json={"projects": []}),
    ]
    oauth_clients.automations.list_projects()
    assert token_route.call_count == 2
    assert projects.calls.last.request.headers["authorization"] == "Bearer access-BBB-2"


def test_a_second_401_is_authentication_failed(
    router: respx.MockRouter, oauth_clients: Clients, captured_logs: list[dict[str, object]]
) -> None:
    router.post(TOKEN_URL).mock(
        side_effect=[token_answer("access-AAA-1"), token_answer("access-BBB-2")]
    )
    router.get(PROJECTS).respond(401, json={"error_message": "Bearer access-BBB-2 refused"})
    with pytest.raises(AuthenticationFailed) as caught:
        oauth_clients.automations.list_projects()
    for secret in ("access-AAA-1", "access-BBB-2", CLIENT_SECRET):
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value)
        assert all(secret not in repr(entry) for entry in captured_logs)


def test_token_answer_without_access_token_is_malformed(
    router: respx.MockRouter, oauth_clients: Clients
) -> None:
    router.post(TOKEN_URL).respond(200, json={"error": "unsupported_grant_type"})
    with pytest.raises(MalformedResponse):
        oauth_clients.automations.list_projects()


@pytest.mark.parametrize("token", ["tok\x80en", "tok en", "tok\r\nx-evil: 1", ""])
def test_a_token_that_cannot_go_in_a_header_is_malformed(
    router: respx.MockRouter, oauth_clients: Clients, token: str
) -> None:
    router.post(TOKEN_URL).respond(200, json={"access_token": token, "expires_in": 3600})
    with pytest.raises(MalformedResponse, match="no usable access_token"):
        oauth_clients.automations.list_projects()


def test_refused_client_credentials(router: respx.MockRouter, oauth_clients: Clients) -> None:
    route = router.post(TOKEN_URL).respond(
        401, json={"error_message": f"client_secret={CLIENT_SECRET} is wrong"}
    )
    with pytest.raises(AuthenticationFailed) as caught:
        oauth_clients.automations.list_projects()
    assert route.call_count == 1
    assert CLIENT_SECRET not in str(caught.value)
