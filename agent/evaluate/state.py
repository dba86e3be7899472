"""The alert state machine: a pure function of (previous state, verdict, now).

inactive → pending → firing → resolved, with ``for`` (how long a breach must last
before firing) and ``clear_for`` (how long the clear condition must hold before a
firing alert resolves). Between the firing and the clear threshold (hysteresis) a
firing alert stays firing and its clear timer restarts, so a flapping value does
not flap the alert.

A firing alert whose data becomes unavailable (no data, or an error) stays firing:
nothing was shown to be fixed. It records since when it is blind (``unavailable_since``)
and is resolved only by data that meets the clear condition.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from agent.evaluate.alerts import AlertState


class Verdict(StrEnum):
    BREACHED = "breached"  # the firing condition holds
    CLEARED = "cleared"  # the clear condition holds
    BETWEEN = "between"  # neither: inside the hysteresis band
    NODATA = "nodata"
    ERROR = "error"


class InstanceState(NamedTuple):
    """(A tuple: every instance steps to a new one every cycle, and building a frozen
    dataclass costs several times as much.)"""

    state: AlertState = AlertState.INACTIVE
    #: when the instance entered ``state``.
    since: datetime | None = None
    pending_since: datetime | None = None
    firing_since: datetime | None = None
    #: while firing: since when the clear condition has held without a break.
    clearing_since: datetime | None = None
    value: float | None = None
    evaluated_at: datetime | None = None
    error: str | None = None
    #: while firing: since when its data has been unavailable (no data or an error).
    unavailable_since: datetime | None = None


_QUIET = (AlertState.INACTIVE, AlertState.RESOLVED, AlertState.NODATA, AlertState.ERROR)

#: per verdict, the states it leaves as they are: ``step`` only records the reading
#: (``observe``), and nothing about the alert changes. Most instances, most cycles.
SETTLED: dict[Verdict, frozenset[AlertState]] = {
    Verdict.CLEARED: frozenset({AlertState.INACTIVE, AlertState.RESOLVED}),
    Verdict.BETWEEN: frozenset({AlertState.INACTIVE, AlertState.RESOLVED}),
    Verdict.NODATA: frozenset({AlertState.NODATA}),
    Verdict.ERROR: frozenset({AlertState.ERROR}),
    Verdict.BREACHED: frozenset(),
}


def holds_firing(previous: InstanceState, verdict: Verdict) -> bool:
    """Whether the verdict keeps a firing alert firing with nothing to change but the
    reading (no clear timer running, its data available), as ``step`` would."""
    return (
        previous.state is AlertState.FIRING
        and (verdict is Verdict.BREACHED or verdict is Verdict.BETWEEN)
        and previous.clearing_since is None
        and previous.unavailable_since is None
    )


def step(
    previous: InstanceState,
    verdict: Verdict,
    now: datetime,
    *,
    value: float | None = None,
    for_: timedelta = timedelta(0),
    clear_for: timedelta = timedelta(0),
    error: str | None = None,
) -> InstanceState:
    current = observe(previous, value, now, error)
    state = previous.state

    if verdict is Verdict.NODATA or verdict is Verdict.ERROR:
        target = AlertState.NODATA if verdict is Verdict.NODATA else AlertState.ERROR
        if state is AlertState.FIRING:
            return current._replace(unavailable_since=previous.unavailable_since or now)
        if state is target:
            return current
        return _enter(current, target, now, firing_since=None)

    if state is AlertState.FIRING:
        if current.unavailable_since is not None:
            current = current._replace(unavailable_since=None)
        if verdict is Verdict.CLEARED:
            clearing_since = previous.clearing_since or now
            if now - clearing_since >= clear_for:
                return _enter(current, AlertState.RESOLVED, now, firing_since=previous.firing_since)
            return current._replace(clearing_since=clearing_since)
        if current.clearing_since is not None:  # (a firing alert steps every cycle: no copy)
            current = current._replace(clearing_since=None)
        return current

    if state is AlertState.PENDING:
        if verdict is not Verdict.BREACHED:
            return _enter(current, AlertState.INACTIVE, now, firing_since=None)
        assert previous.pending_since is not None
        if now - previous.pending_since >= for_:
            return _enter(current, AlertState.FIRING, now, firing_since=now)
        return current

    # inactive, resolved, nodata or error
    if verdict is Verdict.BREACHED:
        if for_ <= timedelta(0):
            return _enter(current, AlertState.FIRING, now, firing_since=now)
        return _enter(current, AlertState.PENDING, now, firing_since=None)._replace(
            pending_since=now
        )
    if state in (AlertState.NODATA, AlertState.ERROR):
        return _enter(current, AlertState.INACTIVE, now, firing_since=None)
    assert state in _QUIET
    return current


def observe(
    previous: InstanceState, value: float | None, now: datetime, error: str | None = None
) -> InstanceState:
    """``previous._replace(value=value, evaluated_at=now, error=error)``, spelt out: every
    instance takes this step every cycle, and building by position costs half as much."""
    return InstanceState(
        previous.state,
        previous.since,
        previous.pending_since,
        previous.firing_since,
        previous.clearing_since,
        value,
        now,
        error,
        previous.unavailable_since,
    )


def _enter(
    current: InstanceState, state: AlertState, now: datetime, *, firing_since: datetime | None
) -> InstanceState:
    return current._replace(
        state=state,
        since=now,
        pending_since=None,
        clearing_since=None,
        unavailable_since=None,
        firing_since=firing_since,
    )
