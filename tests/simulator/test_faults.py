"""Every fault kind, path matching, probability and consumption."""

from __future__ import annotations

import json

import httpx
import pytest

from agent.simulator import Fault, Simulator
from tests.simulator.helpers import JOB_DURATION, Api

PROJECTS = "/v1/projects"


def _projects(api: Api, timeout: float = 5.0) -> httpx.Response:
    return api.automations("GET", "/projects", timeout=timeout)


def test_http_status_fault_is_consumed_by_times(api: Api) -> None:
    api.sim.add_fault(Fault("http_status", path_prefix=PROJECTS, status=503, times=2))
    first, second, third = _projects(api), _projects(api), _projects(api)
    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert first.json()["error_code"] != 503
    assert "X-RateLimit-Limit" in first.headers
    assert api.sim.faults == []


@pytest.mark.parametrize("status", [500, 502, 504])
def test_http_status_fault_statuses(api: Api, status: int) -> None:
    api.sim.add_fault(Fault("http_status", status=status, times=1))
    assert api.submit("usage").status_code == status


def test_http_status_429_with_and_without_retry_after(api: Api) -> None:
    api.sim.add_fault(Fault("http_status", status=429, retry_after=3, times=1))
    api.sim.add_fault(Fault("http_status", status=429, times=1))
    with_header, without = api.submit("usage"), api.submit("usage")
    assert with_header.status_code == without.status_code == 429
    assert with_header.headers["Retry-After"] == "3"
    assert "Retry-After" not in without.headers


def test_fault_matches_by_path_prefix(api: Api) -> None:
    api.sim.add_fault(Fault("http_status", path_prefix="/analytics/v2/job/", status=502))
    assert api.submit("usage").status_code == 200
    assert _projects(api).status_code == 200
    assert api.retrieve("anything").status_code == 502


def test_probability_zero_never_applies_and_clear_faults(api: Api) -> None:
    api.sim.add_fault(Fault("http_status", probability=0.0, status=500))
    assert all(_projects(api).status_code == 200 for _ in range(5))
    api.sim.add_fault(Fault("http_status", status=500))
    assert _projects(api).status_code == 500
    api.sim.clear_faults()
    assert _projects(api).status_code == 200


def test_partial_probability_applies_sometimes(api: Api) -> None:
    api.sim.add_fault(Fault("http_status", probability=0.5, status=500))
    statuses = {_projects(api).status_code for _ in range(30)}
    assert statuses == {200, 500}


def test_slow_fault_delays_then_answers(api: Api) -> None:
    # Told apart by the client's patience, not by a stopwatch: a client that waits
    # less than the delay gives up; one that waits longer gets the answer.
    api.sim.add_fault(Fault("slow", path_prefix=PROJECTS, delay=2.0, times=1))
    with pytest.raises(httpx.ReadTimeout):
        _projects(api, timeout=0.5)
    api.sim.add_fault(Fault("slow", path_prefix=PROJECTS, delay=0.2, times=1))
    assert _projects(api, timeout=30).status_code == 200


def test_timeout_fault_holds_then_drops_the_connection(api: Api) -> None:
    api.sim.add_fault(Fault("timeout", path_prefix=PROJECTS, delay=2.0, times=1))
    with pytest.raises(httpx.TimeoutException):
        _projects(api, timeout=0.5)
    # A client more patient than the fault sees the connection dropped.
    api.sim.add_fault(Fault("timeout", path_prefix=PROJECTS, delay=0.1, times=1))
    with pytest.raises(httpx.RemoteProtocolError):
        _projects(api)
    assert [r.status for r in api.sim.requests if r.path == PROJECTS][-1] == 0
    assert _projects(api).status_code == 200


def test_disconnect_fault_closes_without_an_answer(api: Api) -> None:
    api.sim.add_fault(Fault("disconnect", times=1))
    with pytest.raises(httpx.RemoteProtocolError):
        api.submit("usage")
    assert api.sim.requests[-1].status == 0
    assert api.submit("usage").status_code == 200


def test_reset_fault_answers_with_a_tcp_reset(api: Api) -> None:
    api.sim.add_fault(Fault("reset", times=1))
    with pytest.raises(httpx.ReadError, match="reset by peer"):
        api.submit("usage")
    assert api.sim.requests[-1].status == 0
    assert api.submit("usage").status_code == 200


def test_truncated_fault_sends_half_the_promised_body(api: Api) -> None:
    api.sim.add_fault(Fault("truncated", path_prefix="/analytics/v2/usage", times=1))
    with pytest.raises(httpx.RemoteProtocolError, match=r"incomplete|closed"):
        api.submit("usage")
    assert api.submit("usage").json()["jobId"]


def test_malformed_json_fault(api: Api) -> None:
    api.sim.add_fault(Fault("malformed_json", path_prefix="/analytics/v2/usage", times=1))
    response = api.submit("usage")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert api.submit("usage").json()["jobId"]


def test_job_never_finishes(api: Api) -> None:
    api.sim.add_fault(Fault("job_never_finishes", path_prefix="/analytics/v2/usage", times=1))
    stuck = api.submit("usage").json()["jobId"]
    fine = api.submit("usage").json()["jobId"]
    api.clock.advance(3600)
    assert "data" not in api.retrieve(stuck).json()
    assert api.retrieve(stuck).status_code == 200
    assert "data" in api.retrieve(fine).json()


def test_job_failed(api: Api) -> None:
    api.sim.add_fault(Fault("job_failed", path_prefix="/analytics/v2/job/", times=1))
    job_id = api.submit("usage").json()["jobId"]
    api.clock.advance(JOB_DURATION)
    failed = api.retrieve(job_id)
    assert failed.status_code == 500
    assert failed.json()["error_message"] == "Job Failed"
    assert "data" in api.retrieve(job_id).json()


def test_job_faults_do_not_touch_other_requests(api: Api) -> None:
    api.sim.add_fault(Fault("job_failed"))
    api.sim.add_fault(Fault("job_never_finishes", path_prefix="/v1"))
    assert _projects(api).status_code == 200
    assert api.submit("usage").status_code == 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "explode"},
        {"kind": "http_status", "times": 0},
        {"kind": "http_status", "probability": 2},
        {"kind": "http_status", "status": 42},
        {"kind": "slow", "delay": -1},
    ],
)
def test_fault_validation(kwargs) -> None:
    with pytest.raises(ValueError):
        Fault(**kwargs)


def test_faults_apply_to_the_trigger_and_token_paths(sim: Simulator) -> None:
    sim.add_fault(Fault("http_status", path_prefix="/automations-api/", status=504, times=1))
    sim.add_fault(Fault("http_status", path_prefix="/token", status=502, times=1))
    assert httpx.post(f"{sim.url}/automations-api/run/x").status_code == 504
    assert httpx.post(f"{sim.url}/token").status_code == 502
