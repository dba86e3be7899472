"""Client-side rate limiting: at most N requests in any window of one second.

Contentstack allows 10 requests per second per *organization*, across both APIs,
so every client talking to one organization shares one ``RateLimiter``
(see ``shared_limiter``).

Why completion times: a request is counted from the moment it is admitted until
one window after its answer arrived. The server stamps a request somewhere
between those two instants, so a new request admitted once an old one has left
the window is received more than a window after it: the server can never see
more than N requests in any window, whatever the network latency.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog

from agent.clock import Clock, SystemClock

log = structlog.get_logger(__name__)

#: when the server says this few requests remain, wait for its window to roll.
LOW_WATER = 2
#: how long a thread blocked only by in-flight requests waits (real time) before re-checking.
_IN_FLIGHT_POLL = 0.05
_EPSILON = 1e-9


@dataclass(frozen=True)
class Headroom:
    """How much of the rate limit is free now, and what the server said last."""

    capacity: int
    free: int
    #: seconds until requests are admitted again (a 429, a nearly empty server budget)
    paused_for: float
    server_limit: int | None
    server_remaining: int | None


class RateLimiter:
    def __init__(
        self,
        rate: float,
        clock: Clock,
        *,
        window: float = 1.0,
        low_water: int = LOW_WATER,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.clock = clock
        self.window = window
        self.low_water = low_water
        # a fractional rate (say 2.5/s) can only be honoured by admitting floor(rate) per window
        self._capacity = max(1, math.floor(rate))
        self._cond = threading.Condition()
        self._finished: deque[float] = deque()
        self._in_flight = 0
        self._resume_at = -math.inf
        self._server: tuple[int | None, int | None] = (None, None)

    @property
    def capacity(self) -> int:
        return self._capacity

    def headroom(self) -> Headroom:
        with self._cond:
            now = self.clock.monotonic()
            recent = sum(1 for at in self._finished if at > now - self.window + _EPSILON)
            return Headroom(
                capacity=self._capacity,
                free=max(0, self._capacity - recent - self._in_flight),
                paused_for=max(0.0, self._resume_at - now),
                server_limit=self._server[0],
                server_remaining=self._server[1],
            )

    def lower_capacity(self, rate: float) -> None:
        """Adopt a stricter limit (another client of the org or the server asked for it)."""
        with self._cond:
            self._capacity = max(1, min(self._capacity, math.floor(rate)))

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one request slot for the duration of a request."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self) -> None:
        while True:
            with self._cond:
                now = self.clock.monotonic()
                # a request that ended exactly one window ago is out (tolerating float rounding)
                horizon = now - self.window + _EPSILON
                while self._finished and self._finished[0] <= horizon:
                    self._finished.popleft()
                if now < self._resume_at:
                    wait = self._resume_at - now
                elif len(self._finished) + self._in_flight < self._capacity:
                    self._in_flight += 1
                    return
                elif self._finished:
                    wait = self._finished[0] + self.window - now
                else:
                    # every slot is held by a request still in flight: wait for one to end
                    self._cond.wait(_IN_FLIGHT_POLL)
                    continue
            log.debug("contentstack.rate_limit.wait", seconds=round(wait, 3))
            # sleeping outside the lock: other threads may finish requests meanwhile
            self.clock.sleep(wait)

    def release(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._finished.append(self.clock.monotonic())
            self._cond.notify_all()

    def pause(self, seconds: float, reason: str) -> None:
        """Admit nothing for ``seconds`` (a 429's Retry-After, a nearly empty server budget)."""
        with self._cond:
            until = self.clock.monotonic() + seconds
            if until > self._resume_at:
                self._resume_at = until
                log.debug("contentstack.rate_limit.pause", seconds=round(seconds, 3), reason=reason)

    def observe(self, limit: str | None, remaining: str | None) -> None:
        """Take the server's ``X-RateLimit-*`` headers into account."""
        limit_value = _as_int(limit)
        if limit_value is not None and limit_value > 0:
            self.lower_capacity(limit_value)
        remaining_value = _as_int(remaining)
        if limit_value is not None or remaining_value is not None:
            self._server = (limit_value, remaining_value)
        if remaining_value is None or remaining_value > self.low_water:
            return
        with self._cond:
            now = self.clock.monotonic()
            horizon = now - self.window + _EPSILON
            while self._finished and self._finished[0] <= horizon:
                self._finished.popleft()
            # the server's window rolls once the oldest request it counts is a window old;
            # our oldest recorded request ended no earlier than the server saw it
            rolls_in = self._finished[0] + self.window - now if self._finished else self.window
        self.pause(rolls_in, reason=f"server reports {remaining_value} requests left")


def _as_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


_registry_lock = threading.Lock()
# keyed by clock first: monotonic readings of two clocks cannot be compared
_registry: weakref.WeakKeyDictionary[Any, dict[str, RateLimiter]] = weakref.WeakKeyDictionary()


def shared_limiter(organization_uid: str, rate: float, clock: Clock) -> RateLimiter:
    """The process-wide limiter of one organization (created on first use)."""
    # every SystemClock reads the same time, so they all share one set of limiters
    key: Any = SystemClock if type(clock) is SystemClock else clock
    with _registry_lock:
        per_org = _registry.setdefault(key, {})
        limiter = per_org.get(organization_uid)
        if limiter is None:
            limiter = per_org[organization_uid] = RateLimiter(rate, clock)
        else:
            limiter.lower_capacity(rate)
        return limiter
