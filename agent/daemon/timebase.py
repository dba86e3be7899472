"""The daemon's clock: the wall clock, or a sped-up one for demos and tests.

A sped-up clock is defined by (origin, speed): it agrees with the wall clock at
``origin`` and runs ``speed`` times faster. Two processes given the same pair read
the same simulated time, which is how a test shares time with a daemon it started.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from agent.clock import Clock, ScaledClock, SystemClock
from agent.config import AgentSettings


def scaled_clock(origin: datetime, speed: float) -> ScaledClock:
    """A ScaledClock that reads ``origin + (wall - origin) * speed`` from now on."""
    wall = datetime.fromtimestamp(time.time(), UTC)
    return ScaledClock(origin + (wall - origin) * speed, factor=speed)


def make_clock(agent: AgentSettings) -> Clock:
    if agent.clock_speed == 1.0:
        return SystemClock()
    return scaled_clock(agent.clock_origin or datetime.now(UTC), agent.clock_speed)


def real_seconds(span: timedelta, clock: Clock) -> float:
    """How many wall-clock seconds ``span`` of agent time lasts."""
    factor = getattr(clock, "factor", 1.0)
    return span.total_seconds() / factor
