"""What the clients know of the Contentstack APIs' health, for the daemon's health page:
per endpoint, its last answer and its last success (the rate limiter's side is
``RateLimiter.headroom``)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from datetime import datetime

from agent.clock import Clock

#: path segments that are ids (job ids, project/automation ids, uids): one entry for all.
_ID_SEGMENT = re.compile(r"/(?=[^/]*\d)[A-Za-z0-9_-]{12,}(?=/|$)")


def normalise_endpoint(endpoint: str) -> str:
    """``GET /analytics/v2/job/3f2a…/data`` → ``GET /analytics/v2/job/{id}/data``."""
    return _ID_SEGMENT.sub("/{id}", endpoint)


@dataclass(frozen=True)
class EndpointHealth:
    endpoint: str
    attempts: int = 0
    failures: int = 0
    #: HTTP status of the last attempt; 0 when no answer came.
    last_status: int = 0
    last_attempt: datetime | None = None
    last_ok: datetime | None = None


class ApiHealth:
    """Told of every attempt by ``HttpClient``; thread-safe."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._endpoints: dict[str, EndpointHealth] = {}

    def observe(self, endpoint: str, status: int) -> None:
        name = normalise_endpoint(endpoint)
        now = self.clock.now()
        ok = 200 <= status < 300
        with self._lock:
            was = self._endpoints.get(name) or EndpointHealth(name)
            self._endpoints[name] = replace(
                was,
                attempts=was.attempts + 1,
                failures=was.failures + (0 if ok else 1),
                last_status=status,
                last_attempt=now,
                last_ok=now if ok else was.last_ok,
            )

    def endpoints(self) -> list[EndpointHealth]:
        with self._lock:
            return sorted(self._endpoints.values(), key=lambda e: e.endpoint)
