"""What the outbox stores: a snapshot of the alerts a notification is about.

Messages are rendered per destination at delivery time (Slack gets Markdown, email
HTML, PagerDuty one event per alert), so the outbox keeps structure, not text.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: ``remediation``: what Stackwatch did about an alert (free text), on the alert's channels.
MessageKind = Literal["alert", "ack", "test", "deadletter", "remediation"]
#: notification states: what a channel was told about an alert.
NotifyState = Literal["firing", "nodata", "error", "resolved"]
#: what evaluate reads now for an alert that fires on: (fingerprint, value, annotations).
Reading = tuple[str, float | None, dict[str, str]]


def number_text(value: float | None) -> str | None:
    """A value as a message shows it: whole numbers whole, others to 4 significant digits."""
    if value is None:
        return None
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


@dataclass
class Alert:
    """One alert instance as notify knows it: the record every notify view extends
    (``state.TrackedAlert`` in the store, ``AlertSnapshot`` in a message). Built from
    evaluate's ``Transition``s; epoch seconds for times."""

    fingerprint: str
    rule: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str
    #: incremented each time the alert becomes active again.
    episode: int
    value: float | None = None
    threshold: float | None = None
    active_since: float | None = None
    resolved_at: float | None = None

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", self.rule)

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "warning")

    def named_labels(self) -> dict[str, str]:
        """The labels as people read them: ``stack`` holds the stack's configured name
        (``stack_name``, folded in) rather than its API key, when it has one."""
        labels = {k: v for k, v in self.labels.items() if k != "stack_name"}
        if self.labels.get("stack_name"):
            labels["stack"] = self.labels["stack_name"]
        return labels


@dataclass
class AlertSnapshot(Alert):
    """An alert as a message tells it: its state is what the channel hears."""

    state: NotifyState


@dataclass(frozen=True)
class Message:
    kind: MessageKind
    created_at: float
    #: the alerts this notification is about (new or changed, or due for a reminder).
    alerts: list[AlertSnapshot] = field(default_factory=list)
    #: other alerts of the group still active and already told: context only.
    ongoing: list[AlertSnapshot] = field(default_factory=list)
    route_id: str | None = None
    group_key: str = ""
    group_labels: dict[str, str] = field(default_factory=dict)
    repeat: bool = False
    #: for acks: who and why.
    ack_by: str | None = None
    ack_comment: str | None = None
    #: free text for test, dead-letter and remediation messages.
    text: str | None = None

    @property
    def status(self) -> str:
        if self.kind == "ack":
            return "acknowledged"
        if self.kind != "alert":
            return self.kind
        return "firing" if any(a.state != "resolved" for a in self.alerts) else "resolved"

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Message:
        data: dict[str, Any] = json.loads(text)
        data["alerts"] = [AlertSnapshot(**alert) for alert in data.get("alerts", [])]
        data["ongoing"] = [AlertSnapshot(**alert) for alert in data.get("ongoing", [])]
        return cls(**data)
