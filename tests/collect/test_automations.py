"""AutomationsClient: endpoints, headers, pagination, tolerant parsing, execution samples."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from agent.collect import Clients, Execution, MalformedResponse, NotFound
from agent.collect.models import ExecutionsQuery

from .conftest import AUTHTOKEN, AUTOMATIONS, ORG

P = "0123456789abcdef0123456789abcdef"
A = "fedcba9876543210fedcba9876543210"
BASE = f"{AUTOMATIONS}/v1/projects/{P}"


def paged(key: str, items: list[dict[str, Any]]):
    def handler(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params.get("limit", "100"))
        skip = int(request.url.params.get("skip", "0"))
        return httpx.Response(200, json={key: items[skip : skip + limit]})

    return handler


def test_list_projects_and_headers(router: respx.MockRouter, clients: Clients) -> None:
    route = router.get(f"{AUTOMATIONS}/v1/projects").respond(
        200, json={"projects": [{"id": P, "title": "Main", "org_id": ORG, "extra": [1]}]}
    )
    projects = clients.automations.list_projects()
    assert [(p.id, p.title, p.org_id) for p in projects] == [(P, "Main", ORG)]
    assert projects[0].raw["extra"] == [1]
    headers = route.calls.last.request.headers
    assert headers["authtoken"] == AUTHTOKEN
    assert headers["organization_uid"] == ORG


def test_get_project_plain_or_wrapped(router: respx.MockRouter, clients: Clients) -> None:
    route = router.get(BASE)
    route.side_effect = [
        httpx.Response(200, json={"id": P, "title": "Plain"}),
        httpx.Response(200, json={"project": {"id": P, "title": "Wrapped"}}),
    ]
    assert clients.automations.get_project(P).title == "Plain"
    assert clients.automations.get_project(P).title == "Wrapped"


def test_list_automations_follows_pages(router: respx.MockRouter, clients: Clients) -> None:
    rules = [
        {"id": f"{n:032x}", "title": f"rule {n}", "active": n % 2 == 0, "project_id": P}
        for n in range(250)
    ]
    route = router.get(f"{BASE}/automations").mock(side_effect=paged("rules", rules))
    automations = clients.automations.list_automations(P)
    assert len(automations) == 250
    assert automations[0].active is True and automations[1].active is False
    assert [c.request.url.params["skip"] for c in route.calls] == ["0", "100", "200"]
    assert {c.request.url.params["limit"] for c in route.calls} == {"100"}


def test_a_server_ignoring_skip_does_not_loop(router: respx.MockRouter, clients: Clients) -> None:
    rules = [{"id": f"{n:032x}", "title": "r"} for n in range(100)]
    route = router.get(f"{BASE}/automations").respond(200, json={"rules": rules})
    assert len(clients.automations.list_automations(P)) == 100
    assert route.call_count == 2


def test_list_without_the_key_is_malformed(router: respx.MockRouter, clients: Clients) -> None:
    router.get(f"{BASE}/automations").respond(200, json={"rules": "none"})
    with pytest.raises(MalformedResponse):
        clients.automations.list_automations(P)


def test_items_without_id_are_skipped(router: respx.MockRouter, clients: Clients) -> None:
    router.get(f"{BASE}/automations").respond(
        200, json={"rules": [{"title": "no id"}, {"id": A, "title": "ok", "active": "true"}]}
    )
    automations = clients.automations.list_automations(P)
    assert [(a.id, a.active) for a in automations] == [(A, True)]


def test_get_automation_with_steps(router: respx.MockRouter, clients: Clients) -> None:
    route = router.get(f"{BASE}/automations/{A}").respond(
        200, json={"id": A, "title": "Notify", "active": True, "steps": [{"type": "trigger"}]}
    )
    automation = clients.automations.get_automation(P, A)
    assert automation.steps == [{"type": "trigger"}]
    assert route.calls.last.request.url.params["show_steps"] == "true"
    clients.automations.get_automation(P, A, show_steps=False)
    assert "show_steps" not in route.calls.last.request.url.params


@pytest.mark.parametrize("active", [True, False])
def test_set_active(router: respx.MockRouter, clients: Clients, active: bool) -> None:
    route = router.patch(f"{BASE}/automations/{A}").respond(
        200, json={"message": "Automation updated"}
    )
    assert clients.automations.set_active(P, A, active) == "Automation updated"
    request = route.calls.last.request
    assert json.loads(request.content) == {"active": active}
    assert request.headers["organization_uid"] == ORG
    assert request.headers["authtoken"] == AUTHTOKEN


def test_enable_disable(router: respx.MockRouter, clients: Clients) -> None:
    route = router.patch(f"{BASE}/automations/{A}").respond(200, json={"message": "ok"})
    clients.automations.enable(P, A)
    clients.automations.disable(P, A)
    assert [json.loads(c.request.content) for c in route.calls] == [
        {"active": True},
        {"active": False},
    ]


def execution(n: int, when: str, status: str = "success", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"e{n}",
        "rule_id": A,
        "status": status,
        "created_at": when,
        "duration": 1200,
        "details": [],
        **extra,
    }


def test_executions_and_unknown_status(router: respx.MockRouter, clients: Clients) -> None:
    route = router.get(f"{BASE}/executions").respond(
        200,
        json={
            "executions": [
                execution(1, "2024-03-10T10:00:00.000Z"),
                execution(2, "2024-03-10T09:00:00Z", status="Throttled", surprise=True),
            ]
        },
    )
    executions = clients.automations.list_executions(P, limit=50, skip=10)
    params = route.calls.last.request.url.params
    assert params["limit"] == "50" and params["skip"] == "10"
    assert executions[0] == Execution(
        id="e1",
        automation_id=A,
        status="success",
        created_at=datetime(2024, 3, 10, 10, tzinfo=UTC),
        duration=1200.0,
    )
    assert executions[0].succeeded
    assert executions[1].status == "throttled"
    assert not executions[1].succeeded


def test_get_execution(router: respx.MockRouter, clients: Clients) -> None:
    router.get(f"{BASE}/executions/e1").respond(200, json=execution(1, "2024-03-10"))
    assert clients.automations.get_execution(P, "e1").id == "e1"
    router.get(f"{BASE}/executions/e3").respond(
        200, json={"executions": [execution(3, "2024-03-10")]}
    )
    assert clients.automations.get_execution(P, "e3").id == "e3"
    router.get(f"{BASE}/executions/e2").respond(404, json={"error_message": "not found"})
    with pytest.raises(NotFound):
        clients.automations.get_execution(P, "e2")


def test_audit_logs(router: respx.MockRouter, clients: Clients) -> None:
    router.get(f"{BASE}/audit-logs").respond(200, json={"logs": [{"action": "update"}]})
    assert clients.automations.audit_logs(P) == [{"action": "update"}]


def test_execution_samples(router: respx.MockRouter, clients: Clients) -> None:
    newest_first = [
        execution(n, f"2024-03-10T{23 - n // 10:02d}:{59 - n % 60:02d}:00Z") for n in range(230)
    ]
    route = router.get(f"{BASE}/executions").mock(side_effect=paged("executions", newest_first))
    since = datetime(2024, 3, 10, 16, 0, tzinfo=UTC)
    samples = clients.automations.execution_samples(P, since)
    expected = [e for e in newest_first if e["created_at"] >= "2024-03-10T16:00:00Z"]
    assert len(samples) == len(expected) > 0
    assert route.call_count == 1  # the first page already reaches past ``since``
    sample = samples[0]
    assert sample.metric == "executions"
    assert sample.labels == {"project": P, "automation": A, "status": "success"}
    assert sample.values == {"count": 1.0, "duration": 1200.0}
    assert all(s.at is not None and s.at >= since for s in samples)


def test_execution_samples_read_every_page_when_order_is_unknown(
    router: respx.MockRouter, clients: Clients
) -> None:
    oldest_first = [execution(n, f"2024-03-{1 + n // 10:02d}T00:00:00Z") for n in range(150)]
    route = router.get(f"{BASE}/executions").mock(side_effect=paged("executions", oldest_first))
    samples = clients.automations.execution_samples(P, datetime(2024, 3, 15, tzinfo=UTC))
    assert route.call_count == 2
    assert len(samples) == 10


def test_fetch_reads_the_newest_executions(router: respx.MockRouter, clients: Clients) -> None:
    items = [execution(n, f"2024-03-10T10:{59 - n % 60:02d}:00Z") for n in range(130)]
    items.append({"id": "no-date", "rule_id": A, "status": "success"})
    route = router.get(f"{BASE}/executions").mock(side_effect=paged("executions", items))
    samples = clients.automations.fetch(ExecutionsQuery(P, limit=120))
    assert len(samples) == 120
    assert [(c.request.url.params["limit"], c.request.url.params["skip"]) for c in route.calls] == [
        ("100", "0"),
        ("20", "100"),
    ]
    assert all(s.metric == "executions" and s.labels["project"] == P for s in samples)
