"""Automations Management API and the HTTP Request trigger."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

from agent.simulator import AutomationSpec, Incident, ProjectSpec, Simulator
from tests.simulator.helpers import NOW, Api, make_scenario

PROJECT = "a" * 32
OTHER_PROJECT = "b" * 32
SECURE = "1" * 32
OPEN = "2" * 32
INACTIVE = "3" * 32
BARE = "4" * 32
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def _projects() -> list[ProjectSpec]:
    return [
        ProjectSpec(
            PROJECT,
            "Ops",
            (
                AutomationSpec(SECURE, "Secure", trigger_id="t-secure", secure_key="s3cret"),
                AutomationSpec(OPEN, "Open", trigger_id="t-open", execution_interval_minutes=10),
                AutomationSpec(INACTIVE, "Inactive", active=False, trigger_id="t-inactive"),
                AutomationSpec(BARE, "Bare", active=False, has_trigger_and_action=False),
            ),
        ),
        ProjectSpec(OTHER_PROJECT, "Empty"),
    ]


@pytest.fixture
def auto(make_sim, make_api) -> Api:
    failures = Incident(
        "automation_failures", NOW - timedelta(hours=2), NOW - timedelta(hours=1), automation=OPEN
    )
    return make_api(make_sim(make_scenario(projects=_projects(), incidents=[failures])))


def _trigger(api: Api, trigger_id: str, method: str = "POST", **kwargs) -> httpx.Response:
    return api.http.request(method, f"/automations-api/run/{trigger_id}", **kwargs)


def test_projects(auto: Api) -> None:
    body = auto.automations("GET", "/projects").json()
    assert [p["id"] for p in body["projects"]] == [PROJECT, OTHER_PROJECT]
    assert body["projects"][0]["org_id"] == "org1"
    one = auto.automations("GET", f"/projects/{PROJECT}").json()
    assert one["title"] == "Ops"
    assert auto.automations("GET", f"/projects/{'f' * 32}").status_code == 404


def test_automation_list_uses_the_rules_key(auto: Api) -> None:
    rules = auto.automations("GET", f"/projects/{PROJECT}/automations").json()["rules"]
    assert len(rules) == 4
    for rule in rules:
        assert HEX32.match(rule["id"])
        assert {"id", "title", "active", "project_id", "throttle"} <= set(rule)
        assert "steps" not in rule
    assert {r["id"]: r["active"] for r in rules}[INACTIVE] is False
    assert auto.automations("GET", f"/projects/{OTHER_PROJECT}/automations").json() == {"rules": []}


def test_one_automation_with_steps(auto: Api) -> None:
    path = f"/projects/{PROJECT}/automations/{SECURE}"
    plain = auto.automations("GET", path).json()
    assert plain["id"] == SECURE and "steps" not in plain
    steps = auto.automations("GET", path, params={"show_steps": "true"}).json()["steps"]
    assert [s["type"] for s in steps] == ["trigger", "action"]
    assert auto.automations("GET", f"/projects/{PROJECT}/automations/{'9' * 32}").status_code == 404
    assert (
        auto.automations("GET", f"/projects/{OTHER_PROJECT}/automations/{SECURE}").status_code
        == 404
    )


def test_list_parameters(auto: Api) -> None:
    path = f"/projects/{PROJECT}/automations"
    assert auto.automations("GET", path, params={"limit": "101"}).status_code == 422
    assert auto.automations("GET", path, params={"limit": "0"}).status_code == 422
    assert auto.automations("GET", path, params={"skip": "x"}).status_code == 422
    assert auto.automations("GET", path, params={"asc": "colour"}).status_code == 422
    by_title = auto.automations("GET", path, params={"asc": "title"}).json()["rules"]
    assert [r["title"] for r in by_title] == ["Bare", "Inactive", "Open", "Secure"]
    desc = auto.automations("GET", path, params={"desc": "title", "limit": "2", "skip": "1"})
    assert [r["title"] for r in desc.json()["rules"]] == ["Open", "Inactive"]
    counted = auto.automations("GET", path, params={"include_count": "true", "limit": "1"}).json()
    assert counted["count"] == 4 and len(counted["rules"]) == 1


def test_patch_active_and_audit_log(auto: Api) -> None:
    path = f"/projects/{PROJECT}/automations/{INACTIVE}"
    response = auto.automations("PATCH", path, json={"active": True})
    assert response.status_code == 200
    assert set(response.json()) == {"message"}
    assert auto.automations("GET", path).json()["active"] is True
    logs = auto.automations("GET", f"/projects/{PROJECT}/audit-logs").json()["logs"]
    newest = logs[0]  # newest first
    assert newest["rule_id"] == INACTIVE
    assert newest["changes"] == {"active": {"from": False, "to": True}}


def test_patch_errors(auto: Api) -> None:
    base = f"/projects/{PROJECT}/automations"
    assert auto.automations("PATCH", f"{base}/{BARE}", json={"active": True}).status_code == 422
    assert auto.automations("PATCH", f"{base}/{OPEN}", json={"active": "yes"}).status_code == 422
    assert auto.automations("PATCH", f"{base}/{OPEN}", json={}).status_code == 422
    assert auto.automations("PATCH", f"{base}/{OPEN}", content=b"{oops").status_code == 400
    assert auto.automations("PATCH", f"{base}/{'9' * 32}", json={"active": True}).status_code == 404
    assert auto.automations("DELETE", f"{base}/{OPEN}").status_code == 405


def test_scheduled_executions_and_failures(auto: Api) -> None:
    body = auto.automations(
        "GET", f"/projects/{PROJECT}/executions", params={"limit": "100", "include_count": "true"}
    ).json()
    executions = body["executions"]
    assert body["count"] == 24 * 6 + 1  # every 10 minutes over the day of history, until now
    first = executions[0]
    assert {"id", "rule_id", "status", "created_at", "duration", "details"} <= set(first)
    assert first["rule_id"] == OPEN
    assert first["created_at"] == "2024-02-05T12:00:00.000Z"  # newest first
    failed = [e for e in executions if e["status"] == "failed"]
    assert {e["created_at"][11:16] for e in failed} == {
        "10:00",
        "10:10",
        "10:20",
        "10:30",
        "10:40",
        "10:50",
    }
    assert {e["status"] for e in executions} == {"success", "failed"}
    detail = auto.automations("GET", f"/projects/{PROJECT}/executions/{first['id']}").json()
    assert detail == {"executions": [first]}
    assert auto.automations("GET", f"/projects/{PROJECT}/executions/nope").status_code == 404


def test_deactivation_stops_scheduled_executions(auto: Api) -> None:
    path = f"/projects/{PROJECT}/executions"
    before = auto.automations("GET", path, params={"include_count": "true"}).json()["count"]
    auto.automations("PATCH", f"/projects/{PROJECT}/automations/{OPEN}", json={"active": False})
    auto.clock.advance(timedelta(hours=1))
    after = auto.automations("GET", path, params={"include_count": "true"}).json()["count"]
    assert after == before


def test_secure_trigger(auto: Api) -> None:
    assert _trigger(auto, "t-secure").status_code == 401
    assert _trigger(auto, "t-secure", headers={"ah-http-key": "wrong"}).status_code == 401
    ok = _trigger(auto, "t-secure", headers={"ah-http-key": "s3cret"}, json={"entry": "x"})
    assert ok.status_code == 200
    assert ok.json()["trigger_id"] == "t-secure"
    executions = auto.automations(
        "GET", f"/projects/{PROJECT}/executions", params={"rule_id": SECURE}
    ).json()["executions"]
    assert len(executions) == 1
    assert executions[0]["id"] == ok.json()["execution_id"]
    assert executions[0]["status"] == "success"


def test_inactive_trigger(auto: Api) -> None:
    for method in ("GET", "POST"):
        response = _trigger(auto, "t-inactive", method)
        assert response.status_code == 200
        assert response.json() == {
            "result": "The rule is currently being tested or not activated",
            "trigger_id": "t-inactive",
        }


def test_open_trigger_and_unknown_trigger(auto: Api) -> None:
    assert _trigger(auto, "t-open", "GET").status_code == 200
    assert _trigger(auto, "t-nope").status_code == 404
    assert _trigger(auto, "t-open", "PUT").status_code == 405


def test_trigger_during_automation_failures_fails(make_sim, make_api) -> None:
    failing = Incident("automation_failures", NOW, NOW + timedelta(hours=1), automation=PROJECT)
    api = make_api(make_sim(make_scenario(projects=_projects(), incidents=[failing])))
    execution_id = _trigger(api, "t-open").json()["execution_id"]
    detail = api.automations("GET", f"/projects/{PROJECT}/executions/{execution_id}").json()
    assert detail["executions"][0]["status"] == "failed"


def test_default_scenario_has_a_project(sim: Simulator) -> None:
    response = httpx.get(
        f"{sim.url}/v1/projects", headers={"authtoken": "tok", "organization_uid": "org1"}
    )
    assert response.json()["projects"]


def test_not_activated_fault_answers_as_test_mode_and_starts_nothing(make_sim, make_api) -> None:
    from agent.simulator import Fault

    sim = make_sim(make_scenario(projects=_projects()))
    api = make_api(sim)
    sim.add_fault(Fault("not_activated", path_prefix="/automations-api/run/t-open", times=1))
    answer = _trigger(api, "t-open").json()
    assert answer["result"] == "The rule is currently being tested or not activated"
    assert "execution_id" not in answer
    assert "execution_id" in _trigger(api, "t-open").json()  # used up: runs again


def test_a_fault_may_apply_to_one_method_only(make_sim, make_api) -> None:
    from agent.simulator import Fault

    sim = make_sim(make_scenario(projects=_projects()))
    api = make_api(sim)
    path = f"/v1/projects/{PROJECT}/automations/{OPEN}"
    sim.add_fault(Fault("http_status", path_prefix=path, status=503, method="PATCH"))
    assert api.automations("GET", f"/projects/{PROJECT}/automations/{OPEN}").status_code == 200
    patched = api.automations(
        "PATCH", f"/projects/{PROJECT}/automations/{OPEN}", json={"active": False}
    )
    assert patched.status_code == 503
