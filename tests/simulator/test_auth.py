"""Credentials, organizations and stack API keys on both APIs and the OAuth token endpoint."""

from __future__ import annotations

import base64

import httpx
import pytest

from agent.simulator import Simulator
from tests.simulator.helpers import OAUTH_CLIENT, ORG, STACK_A, TODAY, TOKEN, Api


def _token(api: Api, client_id: str = OAUTH_CLIENT[0], secret: str = OAUTH_CLIENT[1]):
    return api.http.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"authtoken": "wrong"}, {"authorization": "Bearer nope"}, {"authorization": "Basic x"}],
)
def test_analytics_rejects_missing_or_wrong_credentials(api: Api, headers) -> None:
    response = api.submit("usage", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["error_message"] and body["error_code"] != 401


def test_analytics_needs_org_uid(api: Api) -> None:
    response = api.submit("usage", orgUid=None)
    assert response.status_code == 400
    assert "orgUid" in response.json()["errors"]


def test_analytics_other_organization_is_forbidden(api: Api) -> None:
    assert api.submit("usage", orgUid="someone-else").status_code == 403


def test_retrieve_data_checks_credentials_and_org(api: Api) -> None:
    job_id = api.submit("usage").json()["jobId"]
    url = f"/analytics/v2/job/{job_id}/data"
    assert api.http.get(url, params={"orgUid": ORG}).status_code == 401
    assert api.http.get(url, headers={"authtoken": TOKEN}).status_code == 400
    assert (
        api.http.get(url, params={"orgUid": "x"}, headers={"authtoken": TOKEN}).status_code == 403
    )


def test_unknown_api_key_is_412(api: Api) -> None:
    response = api.submit("usage", apiKey="blt_not_a_stack")
    assert response.status_code == 412
    assert response.json()["error_code"] != 412
    assert api.submit("usage", apiKey=STACK_A).status_code == 200


def test_oauth_client_credentials_token_works_until_it_expires(make_sim, make_api) -> None:
    sim: Simulator = make_sim(oauth_token_ttl=600)
    api = make_api(sim)
    issued = _token(api)
    assert issued.status_code == 200
    body = issued.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["organization_uid"] == ORG
    bearer = {"authorization": f"Bearer {body['access_token']}"}
    assert api.submit("usage", headers=bearer).status_code == 200

    api.clock.advance(599)
    assert api.submit("usage", headers=bearer).status_code == 200
    api.clock.advance(1)
    expired = api.submit("usage", headers=bearer)
    assert expired.status_code == 401
    assert "expired" in expired.json()["error_message"]


def test_oauth_token_endpoint_errors(api: Api) -> None:
    assert _token(api, secret="wrong").status_code == 401
    assert _token(api, client_id="unknown").json()["error"] == "invalid_client"
    bad_grant = api.http.post("/token", data={"grant_type": "password"})
    assert bad_grant.status_code == 400
    assert bad_grant.json()["error"] == "unsupported_grant_type"
    assert api.http.get("/token").status_code == 405


def test_oauth_token_endpoint_accepts_basic_client_authentication(api: Api) -> None:
    basic = base64.b64encode(":".join(OAUTH_CLIENT).encode()).decode()
    response = api.http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200


def test_bearer_token_is_not_accepted_by_automations(api: Api) -> None:
    token = _token(api).json()["access_token"]
    response = api.http.get(
        "/v1/projects", headers={"authorization": f"Bearer {token}", "organization_uid": ORG}
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authtoken": TOKEN}, 401),
        ({"organization_uid": ORG}, 401),
        ({"authtoken": "wrong", "organization_uid": ORG}, 401),
        ({"authtoken": TOKEN, "organization_uid": "other-org"}, 403),
        ({"authtoken": TOKEN, "organization_uid": ORG}, 200),
    ],
)
def test_automations_need_authtoken_and_organization(
    sim: Simulator, headers: dict[str, str], status: int
) -> None:
    assert httpx.get(f"{sim.url}/v1/projects", headers=headers).status_code == status


def test_unknown_path_is_404(api: Api) -> None:
    assert api.http.get("/v3/stacks", headers={"authtoken": TOKEN}).status_code == 404
    assert (
        api.http.get(
            "/analytics/v2/job/x/data/y",
            params={"orgUid": ORG, "from": TODAY},
            headers={"authtoken": TOKEN},
        ).status_code
        == 404
    )
