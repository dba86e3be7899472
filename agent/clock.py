"""Time as an injected dependency.

Every component that needs "now", a monotonic reading or a pause takes a ``Clock``
so tests drive time by hand and the demo can run the simulated world faster
than the wall clock.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to; ``sleep`` advances it instantly."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2024, 1, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._mono = 0.0
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(seconds, 0.0))

    def advance(self, seconds: float | timedelta) -> None:
        delta = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
        with self._lock:
            self._now += timedelta(seconds=delta)
            self._mono += delta

    def set(self, when: datetime) -> None:
        with self._lock:
            self._mono += (when - self._now).total_seconds()
            self._now = when


class ScaledClock:
    """Wall time sped up by ``factor`` from a chosen origin.

    The demo and ``stackwatch simulate --speed`` share one ScaledClock between the
    simulator and the agent, so a simulated hour of traffic passes in a minute.
    Sleeps are shortened by the same factor.
    """

    def __init__(self, origin: datetime, factor: float = 1.0) -> None:
        if factor <= 0:
            raise ValueError("factor must be positive")
        self.origin = origin
        self.factor = factor
        self._real_origin = time.monotonic()

    def now(self) -> datetime:
        return self.origin + timedelta(seconds=self.monotonic())

    def monotonic(self) -> float:
        return (time.monotonic() - self._real_origin) * self.factor

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.factor)


class OffsetClock:
    """Another clock shifted by a fixed offset (``stackwatch once --notify`` looks past
    the routes' group_wait so that a one-shot run sends at once)."""

    def __init__(self, base: Clock, offset: timedelta) -> None:
        self.base = base
        self.offset = offset

    def now(self) -> datetime:
        return self.base.now() + self.offset

    def monotonic(self) -> float:
        return self.base.monotonic() + self.offset.total_seconds()

    def sleep(self, seconds: float) -> None:
        self.base.sleep(seconds)


def shared_clock(speed: float, origin: datetime | None) -> Clock:
    """The wall clock, or a sped-up one that every process given the same (origin, speed)
    reads alike: it agrees with the wall clock at ``origin`` and runs ``speed`` times
    faster (demos and tests share simulated time between the simulator, the daemon and
    the CLI this way)."""
    if speed == 1.0:
        return SystemClock()
    start = origin or datetime.now(UTC)
    wall = datetime.fromtimestamp(time.time(), UTC)
    return ScaledClock(start + (wall - start) * speed, factor=speed)


def real_seconds(span: timedelta, clock: Clock) -> float:
    """How many wall-clock seconds ``span`` of ``clock``'s time lasts."""
    factor = getattr(clock, "factor", 1.0)
    return span.total_seconds() / factor
