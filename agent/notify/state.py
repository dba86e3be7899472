"""The alert as notify tracks it (one row of ``notify_alerts``, see ``storage``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from agent.evaluate.alerts import AlertState
from agent.notify.message import Alert, AlertSnapshot, NotifyState

#: alert states that are worth telling someone about, as long as they last.
ACTIVE_STATES = frozenset(
    {AlertState.FIRING.value, AlertState.NODATA.value, AlertState.ERROR.value}
)


@dataclass
class TrackedAlert(Alert):
    """An alert's last known state (any evaluate state, pending and inactive too)."""

    changed_at: float = 0.0
    #: route names the rule asked for; empty means the default route.
    routes: list[str] = field(default_factory=list)
    #: why it was muted at the last flush (silence:ID, maintenance:NAME, inhibited:...).
    suppressed: str | None = None

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
        shared = {f.name: getattr(self, f.name) for f in fields(Alert)}
        shared.update(labels=dict(self.labels), annotations=dict(self.annotations))
        shared.update(state=state, resolved_at=self.resolved_at if state == "resolved" else None)
        return AlertSnapshot(**shared)
