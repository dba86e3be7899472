"""Fixtures: a simulator on 127.0.0.1 driven by a ManualClock, and a thin httpx helper."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent.clock import ManualClock
from agent.simulator import Scenario, Simulator
from tests.simulator.helpers import JOB_DURATION, NOW, OAUTH_CLIENT, ORG, TOKEN, Api, make_scenario


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def make_sim(clock: ManualClock) -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def factory(scenario: Scenario | None = None, **kwargs: Any) -> Simulator:
        options: dict[str, Any] = {
            "clock": clock,
            "authtoken": TOKEN,
            "organization_uid": ORG,
            "oauth_clients": dict([OAUTH_CLIENT]),
            "job_duration": JOB_DURATION,
            # Generous by default; the rate-limit tests ask for the documented 10.
            "rate_limit": 100_000,
        }
        options.update(kwargs)
        sim = Simulator(scenario or make_scenario(), **options).start()
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim: Callable[..., Simulator]) -> Simulator:
    return make_sim()


@pytest.fixture
def api(sim: Simulator, clock: ManualClock) -> Iterator[Api]:
    client = Api(sim, clock)
    yield client
    client.close()


@pytest.fixture
def make_api(clock: ManualClock) -> Iterator[Callable[[Simulator], Api]]:
    clients: list[Api] = []

    def factory(sim: Simulator) -> Api:
        client = Api(sim, clock)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()
