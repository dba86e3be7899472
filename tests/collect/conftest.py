"""Shared fixtures: settings, a ManualClock, a respx router used as the transport."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
import structlog
from pydantic import SecretStr

from agent.clock import ManualClock
from agent.collect import Clients, build_clients
from agent.config import ContentstackSettings

AUTHTOKEN = "blt0123456789abcdefSECRET"
CLIENT_SECRET = "oauth-client-secret-XYZ"
ORG = "org1"
ANALYTICS = "https://app.test"
AUTOMATIONS = "https://automations.test"


class MaxRandom(random.Random):
    """Full jitter drawn at its ceiling, so backoff waits are predictable in assertions."""

    def uniform(self, a: float, b: float) -> float:
        return b


def make_settings(**overrides: Any) -> ContentstackSettings:
    values: dict[str, Any] = {
        "organization_uid": ORG,
        "authtoken": SecretStr(AUTHTOKEN),
        "analytics_base_url": ANALYTICS,
        "automations_base_url": AUTOMATIONS,
        "max_retries": 3,
        "request_timeout": 5,
        "job_timeout": 60,
    }
    values.update(overrides)
    return ContentstackSettings(**values)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2024, 3, 10, 12, 0, tzinfo=UTC))


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    # used as an injected transport, not as a patch: nothing can reach the network
    with respx.MockRouter(assert_all_called=False, using=None) as mock:
        yield mock


@pytest.fixture
def make_clients(router: respx.MockRouter, clock: ManualClock) -> Iterator[Callable[..., Clients]]:
    built: list[Clients] = []

    def factory(rng: random.Random | None = None, **overrides: Any) -> Clients:
        clients = build_clients(
            make_settings(**overrides),
            clock,
            transport=httpx.MockTransport(router.handler),
            rng=rng or MaxRandom(),
        )
        built.append(clients)
        return clients

    yield factory
    for clients in built:
        clients.close()


@pytest.fixture
def clients(make_clients: Callable[..., Clients]) -> Clients:
    return make_clients()


@pytest.fixture
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as logs:
        yield logs
