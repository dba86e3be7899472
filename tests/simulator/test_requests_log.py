"""What ``Simulator.requests`` records."""

from __future__ import annotations

import time

import httpx

from agent.simulator import RecordedRequest, Simulator
from tests.simulator.helpers import ORG, TOKEN, Api


def test_requests_are_recorded_with_their_answer(api: Api) -> None:
    before = time.monotonic()
    api.submit("usage", duration="hour", services=["cdn"])
    api.automations("PATCH", "/projects/x/automations/y", json={"active": True})
    api.submit("usage", headers={})
    after = time.monotonic()

    first, patch, rejected = api.sim.requests
    assert isinstance(first, RecordedRequest)
    assert first.method == "GET"
    assert first.path == "/analytics/v2/usage"
    assert first.query["orgUid"] == [ORG]
    assert first.query["services"] == ['["cdn"]']
    assert first.headers["authtoken"] == TOKEN
    assert all(name == name.lower() for name in first.headers)
    assert first.status == 200
    assert before <= first.received_at <= patch.received_at <= after
    assert patch.method == "PATCH"
    assert patch.body == b'{"active":true}'
    assert patch.headers["organization_uid"] == ORG
    assert patch.status == 404
    assert rejected.status == 401


def test_requests_is_a_snapshot_and_can_be_cleared(sim: Simulator) -> None:
    httpx.get(f"{sim.url}/nowhere")
    snapshot = sim.requests
    httpx.get(f"{sim.url}/nowhere")
    assert len(snapshot) == 1 and len(sim.requests) == 2
    sim.clear_requests()
    assert sim.requests == []


def test_simulator_as_context_manager(clock) -> None:
    with Simulator(clock=clock) as sim:
        url = sim.url
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/v1/projects").status_code == 401
    try:
        httpx.get(f"{url}/v1/projects", timeout=0.5)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("the server should be stopped")
