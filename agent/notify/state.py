"""The alert as notify tracks it (one row of ``notify_alerts``, see ``storage``)."""

from __future__ import annotations

from dataclasses import dataclass

from agent.evaluate.alerts import AlertState
from agent.notify.message import AlertSnapshot, NotifyState

#: alert states that are worth telling someone about, as long as they last.
ACTIVE_STATES = frozenset(
    {AlertState.FIRING.value, AlertState.NODATA.value, AlertState.ERROR.value}
)


@dataclass
class TrackedAlert:
    fingerprint: str
    rule: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str
    value: float | None
    threshold: float | None
    episode: int
    active_since: float | None
    resolved_at: float | None
    changed_at: float
    routes: list[str]
    suppressed: str | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def notify_state(self) -> NotifyState | None:
        """What channels should be told: the active state, or resolved once an
        episode has ended; None for an alert that never became active."""
        if self.active:
            return self.state  # type: ignore[return-value]
        return "resolved" if self.episode > 0 else None

    def snapshot(self) -> AlertSnapshot:
        state = self.notify_state or "resolved"
        return AlertSnapshot(
            fingerprint=self.fingerprint,
            rule=self.rule,
            labels=dict(self.labels),
            annotations=dict(self.annotations),
            state=state,
            episode=self.episode,
            value=self.value,
            threshold=self.threshold,
            active_since=self.active_since,
            resolved_at=self.resolved_at if state == "resolved" else None,
        )
