"""Contentstack API clients: Analytics v2, Automations Management and HTTP triggers.

``build_clients(settings, clock)`` wires all three onto one shared HTTP layer
(authentication, the organization's rate limiter, retries, typed errors).

The names below load on first use (PEP 562): the command line catches
``ContentstackError`` and must not pull in httpx and every client to print ``--help``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.collect.analytics import AnalyticsClient, parse_row, split_range
    from agent.collect.automations import Automation, AutomationsClient, Execution, Project
    from agent.collect.clients import Clients, build_clients
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
    from agent.collect.http import HttpClient
    from agent.collect.ratelimit import RateLimiter, shared_limiter
    from agent.collect.trigger import TriggerCaller, TriggerResult

_WHERE = {
    "AnalyticsClient": "agent.collect.analytics",
    "parse_row": "agent.collect.analytics",
    "split_range": "agent.collect.analytics",
    "Automation": "agent.collect.automations",
    "AutomationsClient": "agent.collect.automations",
    "Execution": "agent.collect.automations",
    "Project": "agent.collect.automations",
    "Clients": "agent.collect.clients",
    "build_clients": "agent.collect.clients",
    **{
        name: "agent.collect.errors"
        for name in (
            "ApiUnavailable",
            "AuthenticationFailed",
            "BadRequest",
            "ContentstackError",
            "InvalidApiKey",
            "JobFailed",
            "JobTimeout",
            "MalformedResponse",
            "NotFound",
            "PermissionDenied",
            "RateLimited",
            "ResultTooLarge",
            "ServerError",
            "TriggerInactive",
            "ValidationFailed",
        )
    },
    "HttpClient": "agent.collect.http",
    "RateLimiter": "agent.collect.ratelimit",
    "shared_limiter": "agent.collect.ratelimit",
    "TriggerCaller": "agent.collect.trigger",
    "TriggerResult": "agent.collect.trigger",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)


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
