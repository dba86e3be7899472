"""The documented rate limit: N requests per (real) second per organization, all APIs together."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """Sliding one-second window over ``time.monotonic()``.

    Only admitted requests enter the window: a client that backs off after a 429 gets
    through again within a second, however often it was refused.
    """

    def __init__(
        self, limit: int, window: float = 1.0, now: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1:
            raise ValueError("rate limit must be at least 1 request per window")
        self.limit = limit
        self.window = window
        self._now = now
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        return seen

    def acquire(self, key: str) -> tuple[bool, int]:
        """(admitted, requests remaining in the window after this one)."""
        with self._lock:
            now = self._now()
            seen = self._recent(key, now)
            if len(seen) >= self.limit:
                return False, 0
            seen.append(now)
            return True, self.limit - len(seen)

    def remaining(self, key: str) -> int:
        with self._lock:
            return max(0, self.limit - len(self._recent(key, self._now())))
