"""All clients of one organization on one shared HTTP layer."""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from agent.clock import Clock
from agent.collect.analytics import AnalyticsClient
from agent.collect.automations import AutomationsClient
from agent.collect.http import HttpClient
from agent.collect.ratelimit import RateLimiter
from agent.collect.trigger import TriggerCaller
from agent.config import ContentstackSettings


@dataclass
class Clients:
    http: HttpClient
    analytics: AnalyticsClient
    automations: AutomationsClient
    trigger: TriggerCaller

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def build_clients(
    settings: ContentstackSettings,
    clock: Clock,
    *,
    transport: httpx.BaseTransport | None = None,
    rng: random.Random | None = None,
    limiter: RateLimiter | None = None,
) -> Clients:
    """All clients of one organization on one HTTP layer; raises ValueError without credentials.

    ``limiter`` defaults to the process-wide limiter of the organization on ``clock``;
    pass one on real time when ``clock`` runs faster than the wall (the server's
    rate limit is counted in real seconds).
    """
    http = HttpClient(settings, clock, transport=transport, rng=rng, limiter=limiter)
    return Clients(
        http=http,
        analytics=AnalyticsClient(http),
        automations=AutomationsClient(http),
        trigger=TriggerCaller(http),
    )
