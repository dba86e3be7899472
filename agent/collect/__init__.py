"""Contentstack API clients: Analytics v2, Automations Management and HTTP triggers.

``build_clients(settings, clock)`` wires all three onto one shared HTTP layer
(authentication, the organization's rate limiter, retries, typed errors).

The errors are plain classes; every other name loads on first use (PEP 562), so that
catching ``ContentstackError`` does not pull in httpx and every client (``--help``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.collect.errors import (
    ApiUnavailable,
    AuthenticationFailed,
    BadRequest,
    ContentstackError,
    InvalidApiKey,
    JobFailed,
    JobTimeout,
    MalformedResponse,
    NotFound,
    PermissionDenied,
    RateLimited,
    ResultTooLarge,
    ServerError,
    TriggerInactive,
    ValidationFailed,
)
from agent.lazy import lazy_names

if TYPE_CHECKING:
    from agent.collect.analytics import AnalyticsClient, parse_row, split_range
    from agent.collect.automations import Automation, AutomationsClient, Execution, Project
    from agent.collect.clients import Clients, build_clients
    from agent.collect.http import HttpClient
    from agent.collect.ratelimit import RateLimiter, shared_limiter
    from agent.collect.trigger import TriggerCaller, TriggerResult

__getattr__ = lazy_names(
    __name__,
    {
        "agent.collect.analytics": ("AnalyticsClient", "parse_row", "split_range"),
        "agent.collect.automations": ("Automation", "AutomationsClient", "Execution", "Project"),
        "agent.collect.clients": ("Clients", "build_clients"),
        "agent.collect.http": ("HttpClient",),
        "agent.collect.ratelimit": ("RateLimiter", "shared_limiter"),
        "agent.collect.trigger": ("TriggerCaller", "TriggerResult"),
    },
)

__all__ = [
    "AnalyticsClient",
    "ApiUnavailable",
    "AuthenticationFailed",
    "Automation",
    "AutomationsClient",
    "BadRequest",
    "Clients",
    "ContentstackError",
    "Execution",
    "HttpClient",
    "InvalidApiKey",
    "JobFailed",
    "JobTimeout",
    "MalformedResponse",
    "NotFound",
    "PermissionDenied",
    "Project",
    "RateLimited",
    "RateLimiter",
    "ResultTooLarge",
    "ServerError",
    "TriggerCaller",
    "TriggerInactive",
    "TriggerResult",
    "ValidationFailed",
    "build_clients",
    "parse_row",
    "shared_limiter",
    "split_range",
]
