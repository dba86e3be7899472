"""Shared test helpers: constants, a scenario factory and a thin httpx client."""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from agent.clock import ManualClock
from agent.simulator import Incident, Scenario, Simulator, Stack
from agent.simulator import cli as simulate_cli

NOW = datetime(2024, 2, 5, 12, 0, tzinfo=UTC)
TODAY = NOW.date().isoformat()
ORG = "org1"
TOKEN = "tok"
STACK_A = "blt_stack_a"
STACK_B = "blt_stack_b"
OAUTH_CLIENT = ("client-id", "client-secret")
JOB_DURATION = 2.0


def at(hour: int, minute: int = 0) -> datetime:
    return NOW.replace(hour=hour, minute=minute)


def make_scenario(**overrides: Any) -> Scenario:
    """Two stacks, default cdn + cma traffic, incidents earlier on the clock's day."""
    values: dict[str, Any] = {
        "name": "test",
        "seed": 1,
        "stacks": [Stack(STACK_A, "A", 1.0), Stack(STACK_B, "B", 0.5)],
        "incidents": [
            Incident("5xx_spike", at(10), at(10, 30), stack=STACK_A, service="cdn", magnitude=0.3),
            Incident("cache_drop", at(9), at(9, 30), stack=STACK_A, service="cdn", magnitude=0.3),
            Incident("traffic_zero", at(8), at(9), stack=STACK_B, service="cma"),
            Incident("slow_burn", at(6), at(8), stack=STACK_B, service="cdn", magnitude=0.5),
        ],
    }
    values.update(overrides)
    return Scenario(**values)


class Api:
    """Plain httpx calls against the simulator (deliberately not the project's clients)."""

    def __init__(self, sim: Simulator, clock: ManualClock) -> None:
        self.sim = sim
        self.clock = clock
        self.http = httpx.Client(base_url=sim.url, timeout=5.0, verify=False)

    def close(self) -> None:
        self.http.close()

    # analytics
    def submit(
        self, metric: str, *, headers: dict[str, str] | None = None, **params: Any
    ) -> httpx.Response:
        query: dict[str, Any] = {"orgUid": ORG, "from": TODAY, "to": TODAY}
        for name, value in params.items():
            if value is None:
                query.pop(name, None)
            elif name == "services" and not isinstance(value, str):
                query[name] = json.dumps(list(value))
            else:
                query[name] = value
        return self.http.get(
            f"/analytics/v2/{metric}",
            params=query,
            headers={"authtoken": TOKEN} if headers is None else headers,
        )

    def retrieve(self, job_id: str, page: int | None = None, **extra: Any) -> httpx.Response:
        params: dict[str, Any] = {"orgUid": ORG, **extra}
        if page is not None:
            params["page"] = page
        return self.http.get(
            f"/analytics/v2/job/{job_id}/data", params=params, headers={"authtoken": TOKEN}
        )

    def job(self, metric: str, **params: Any) -> dict[str, Any]:
        """Submit, let the job finish on the manual clock, return page 0's body."""
        response = self.submit(metric, **params)
        assert response.status_code == 200, response.text
        self.clock.advance(JOB_DURATION)
        data = self.retrieve(response.json()["jobId"])
        assert data.status_code == 200, data.text
        return data.json()

    def rows(self, metric: str, **params: Any) -> list[dict[str, Any]]:
        """All rows of a job, following pages on paginated endpoints."""
        submitted = self.submit(metric, **params)
        assert submitted.status_code == 200, submitted.text
        self.clock.advance(JOB_DURATION)
        job_id = submitted.json()["jobId"]
        rows: list[dict[str, Any]] = []
        page = 0
        while True:
            body = self.retrieve(job_id, page=page).json()
            rows += body["data"]
            if not submitted.json()["paginated"] or len(rows) >= body["totalDocs"]:
                return rows
            page += 1

    # automations
    def automations(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"authtoken": TOKEN, "organization_uid": ORG, **kwargs.pop("headers", {})}
        return self.http.request(method, f"/v1{path}", headers=headers, **kwargs)


def count(row: dict[str, Any]) -> int:
    return int(row.get("count", 0))


def day_before(days: int) -> str:
    return (NOW - timedelta(days=days)).date().isoformat()


def simulate_args(*argv: str) -> argparse.Namespace:
    """``stackwatch simulate``'s arguments, parsed as the command line would."""
    parser = argparse.ArgumentParser()
    simulate_cli.add_arguments(parser)
    return parser.parse_args(list(argv))


@contextmanager
def simulate_running(capsys: pytest.CaptureFixture[str], *argv: str) -> Iterator[tuple[str, str]]:
    """``stackwatch simulate`` in a thread: yields (its URL, what it printed); on leaving,
    stops it and checks that it exited 0."""
    stop = threading.Event()
    args = simulate_args(*argv)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(simulate_cli.run(args, stop=stop)))
    thread.start()
    try:
        output = ""
        deadline = time.monotonic() + 30
        while "Ctrl-C" not in output and time.monotonic() < deadline:
            time.sleep(0.01)
            output += capsys.readouterr().out
        url = next(word for word in output.split() if word.startswith("http://127.0.0.1:"))
        yield url, output
    finally:
        stop.set()
        thread.join(30)
    assert result == [0]
