"""Faults and incidents scripted over HTTP (/__sim/…) and from `stackwatch simulate --fault`."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from agent.simulator import Incident, cli
from tests.simulator.helpers import STACK_A, Api, count, simulate_args, simulate_running


def _five_share_now(api: Api) -> float:
    rows = api.rows("http-statuses", duration="minute", services=["cdn"], apiKey=STACK_A)
    hour = api.clock.now().strftime("%Y-%m-%dT%H:")
    recent = [r for r in rows if "count" in r and str(r["date"]).startswith(hour)]
    total = sum(count(r) for r in recent)
    return sum(count(r) for r in recent if r["status"].startswith("5")) / total


def test_faults_are_added_listed_and_cleared_over_http(api: Api) -> None:
    added = api.http.post(
        "/__sim/faults",
        json={"kind": "http_status", "status": 503, "path_prefix": "/v1/", "times": 2},
    )
    assert added.status_code == 201 and added.json()["fault"]["status"] == 503
    listed = api.http.get("/__sim/faults").json()["faults"]
    assert [(f["kind"], f["times"]) for f in listed] == [("http_status", 2)]
    assert api.automations("GET", "/projects").status_code == 503

    # a fault on every path never blocks the control endpoints themselves
    api.http.post("/__sim/faults", json={"kind": "http_status", "status": 500})
    assert api.http.delete("/__sim/faults").json() == {"cleared": 2}
    assert api.sim.faults == []
    assert api.automations("GET", "/projects").status_code == 200
    # control requests are not API requests: not in the log the rate figures come from
    assert not [r for r in api.sim.requests if r.path.startswith("/__sim/")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "nope"}, "unknown fault kind"),
        ({"kind": "http_status", "colour": "red"}, "unknown fault field"),
        ({"kind": "http_status", "status": "five"}, "status: expected a number"),
        ({"status": 500}, "needs a kind"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_fault_requests_are_400_with_the_reason(api: Api, body: object, message: str) -> None:
    response = api.http.post("/__sim/faults", json=body)
    assert response.status_code == 400
    assert message in response.json()["error_message"]
    assert api.sim.faults == []


def test_unknown_control_path_and_method(api: Api) -> None:
    assert api.http.get("/__sim/nothing").status_code == 404
    assert api.http.put("/__sim/faults", json={}).status_code == 405


def test_an_incident_started_over_http_shows_in_the_data(api: Api) -> None:
    before = _five_share_now(api)
    started = api.http.post(
        "/__sim/incidents",
        json={
            "kind": "5xx_spike",
            "start": "-30m",
            "duration": "1h",
            "stack": STACK_A,
            "service": "cdn",
            "magnitude": 0.4,
        },
    )
    assert started.status_code == 201, started.text
    window = started.json()["incident"]
    assert window["start"] == (api.clock.now() - timedelta(minutes=30)).isoformat()
    assert any(
        i["kind"] == "5xx_spike" for i in api.http.get("/__sim/incidents").json()["incidents"]
    )
    assert before < 0.05 < _five_share_now(api)

    bad = api.http.post("/__sim/incidents", json={"kind": "5xx_spike", "duration": "nope"})
    assert bad.status_code == 400 and "invalid incident" in bad.json()["error_message"]


def test_simulate_starts_with_the_faults_given(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("--port", "0", "--fault", "http_status,status=429,retry_after=2,times=3")
    with simulate_running(capsys, *argv) as (url, output):
        assert "Faults: 1 active" in output
        faults = httpx.get(f"{url}/__sim/faults").json()["faults"]
        assert faults == [
            {
                "kind": "http_status",
                "path_prefix": "/",
                "times": 3,
                "probability": 1.0,
                "status": 429,
                "delay": 0.0,
                "retry_after": 2.0,
                "method": None,
            }
        ]
        refused = httpx.get(f"{url}/v1/projects")
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "2"


def test_simulate_refuses_a_bad_fault_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(simulate_args("--fault", "http_status,status")) == 2
    assert "--fault" in capsys.readouterr().err


def test_an_incident_ended_early_keeps_its_past(api: Api) -> None:
    spike = api.sim.add_incident(
        Incident("5xx_spike", timedelta(minutes=-30), timedelta(hours=2), stack=STACK_A,
                 service="cdn", magnitude=0.4)
    )  # fmt: skip
    during = _five_share_now(api)
    ended = api.sim.end_incident(spike)
    assert ended.window()[1] == api.clock.now() and ended in api.sim.scenario.incidents
    assert _five_share_now(api) == during  # the half hour that happened stays
    api.clock.advance(timedelta(minutes=30).total_seconds())
    rows = api.rows("http-statuses", duration="minute", services=["cdn"], apiKey=STACK_A)
    last = [r for r in rows if "count" in r][-60:]
    later = sum(count(r) for r in last if r["status"].startswith("5")) / sum(count(r) for r in last)
    assert later < 0.05 < during
