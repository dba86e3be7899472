"""The user session: login (2FA, SSO-only, wrong password), the 20-token cap, logout."""

from __future__ import annotations

import httpx
import pytest

from agent.simulator import Simulator, User
from agent.simulator.scenario import scenario_from_dict
from agent.simulator.sessions import MAX_TOKENS_PER_USER
from tests.simulator.helpers import ORG, TODAY, make_scenario

SESSION = "/v3/user-session"
ALICE = User("alice@example.com", "alice-pass")
BOB = User("bob@example.com", "bob-pass", tfa_code="123456")
CAROL = User("carol@example.com", "carol-pass", sso=True)
DAVE = User("dave@example.com", "dave-pass", role="member")


@pytest.fixture
def http(make_sim) -> httpx.Client:
    sim: Simulator = make_sim(make_scenario(users=[ALICE, BOB, CAROL, DAVE]))
    with httpx.Client(base_url=sim.url, verify=False) as client:
        client.sim = sim  # type: ignore[attr-defined]
        yield client


def login(http: httpx.Client, user: User, password: str | None = None, **extra: str):
    fields = {"email": user.email, "password": password or user.password, **extra}
    return http.post(SESSION, json={"user": fields})


def analytics(http: httpx.Client, token: str) -> int:
    return http.get(
        "/analytics/v2/usage",
        params={"orgUid": ORG, "from": TODAY, "to": TODAY},
        headers={"authtoken": token},
    ).status_code


def automations(http: httpx.Client, token: str) -> int:
    headers = {"authtoken": token, "organization_uid": ORG}
    return http.get("/v1/projects", headers=headers).status_code


def test_login_answers_as_documented_and_the_token_works_everywhere(http) -> None:
    answer = login(http, ALICE)
    assert answer.status_code == 200
    body = answer.json()
    assert body["notice"] == "Login Successful."
    token = body["user"]["authtoken"]
    assert token.startswith("blt") and body["user"]["org_uid"] == [ORG]
    assert analytics(http, token) == 200 and automations(http, token) == 200


def test_wrong_password_and_unknown_user_are_422_with_the_usual_body(http) -> None:
    for answer in (login(http, ALICE, "nope"), login(http, User("x@example.com", "y"))):
        assert answer.status_code == 422
        body = answer.json()
        assert body["error_message"] and body["error_code"] != 422 and body["errors"]
    assert http.post(SESSION, content=b"{").status_code == 400
    assert http.post(SESSION, json={"user": {"email": ALICE.email}}).status_code == 422
    assert http.get(SESSION).status_code == 405


def test_two_factor_user_needs_the_code(http) -> None:
    asked = login(http, BOB)
    assert asked.status_code == 422 and asked.json()["error_code"] == 294
    assert "tfa_token" in asked.json()["errors"]
    assert login(http, BOB, tfa_token="654321").status_code == 401
    assert login(http, BOB, tfa_token=BOB.tfa_code).status_code == 200


def test_sso_only_user_gets_no_token(http) -> None:
    answer = login(http, CAROL)
    assert answer.status_code == 422
    assert "SSO" in answer.json()["error_message"] and "user" not in answer.json()


def test_member_token_may_not_read_analytics(http) -> None:
    token = login(http, DAVE).json()["user"]["authtoken"]
    assert analytics(http, token) == 403
    assert automations(http, token) == 200


def test_the_21st_login_evicts_the_oldest_token(http) -> None:
    tokens = [login(http, ALICE).json()["user"]["authtoken"] for _ in range(MAX_TOKENS_PER_USER)]
    assert all(analytics(http, t) == 200 for t in (tokens[0], tokens[-1]))

    newest = login(http, ALICE).json()["user"]["authtoken"]

    assert analytics(http, tokens[0]) == 401 and automations(http, tokens[0]) == 401
    assert analytics(http, tokens[1]) == 200 and analytics(http, newest) == 200
    assert http.sim.sessions.live_tokens(ALICE.email) == [*tokens[1:], newest]
    assert http.sim.sessions.issued == MAX_TOKENS_PER_USER + 1
    # another user's tokens are counted apart
    assert analytics(http, login(http, BOB, tfa_token=BOB.tfa_code).json()["user"]["authtoken"])


def test_logout_ends_exactly_that_session(http) -> None:
    first = login(http, ALICE).json()["user"]["authtoken"]
    second = login(http, ALICE).json()["user"]["authtoken"]
    assert http.delete(SESSION, headers={"authtoken": first}).status_code == 200
    assert analytics(http, first) == 401 and automations(http, first) == 401
    assert analytics(http, second) == 200
    assert http.delete(SESSION, headers={"authtoken": first}).status_code == 401
    assert http.delete(SESSION).status_code == 401


def test_users_come_from_the_scenario_file() -> None:
    scenario = scenario_from_dict(
        {
            "users": [
                {"email": "a@example.com", "password": "p", "tfa_code": "1"},
                {"email": "b@example.com", "password": "q", "sso": True, "role": "admin"},
            ]
        }
    )
    assert [(u.email, u.tfa_code, u.sso, u.role) for u in scenario.users] == [
        ("a@example.com", "1", False, "owner"),
        ("b@example.com", None, True, "admin"),
    ]
    with pytest.raises(ValueError, match="role"):
        User("c@example.com", "r", role="guest")
    with pytest.raises(ValueError, match="unique"):
        scenario_from_dict({"users": [{"email": "A@x", "password": "1"}] * 2})
