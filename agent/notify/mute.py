"""Muting: whether an active alert is kept off the channels right now, and why.

Alertmanager's inhibit and silence stages, as one pure function of the alert, the other
alerts, the silences and the time; it runs at every flush, so a mute that ends lets the
next flush notify. The first reason found is the one reported: a silence, then a
maintenance window (what an operator asked for), then an inhibition (what the rules
infer). A resolution is never muted: no incident is left open.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from agent.notify.inhibit import Inhibitor, Sources
from agent.notify.silence import MaintenanceWindow, Silence
from agent.notify.state import TrackedAlert


class Muting:
    def __init__(self, inhibitor: Inhibitor, windows: Sequence[MaintenanceWindow]) -> None:
        self.inhibitor = inhibitor
        self.windows = list(windows)

    def reason(
        self,
        alert: TrackedAlert,
        *,
        alerts: Iterable[TrackedAlert] | Sources,
        silences: Iterable[Silence],
        now: datetime,
    ) -> str | None:
        """``silence:ID``, ``maintenance:NAME``, ``inhibited:FINGERPRINT`` or None.
        ``alerts``: every alert, or their ``Inhibitor.sources`` (for many calls)."""
        if not alert.active:
            return None
        for silence in silences:
            if silence.active_at(now) and silence.matches(alert.labels):
                return f"silence:{silence.id}"
        for window in self.windows:
            if window.active_at(now) and window.matches(alert.labels):
                return f"maintenance:{window.name}"
        return self.inhibitor.inhibited_by(alert, alerts)
