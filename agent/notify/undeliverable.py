"""The meta-alert for a channel that lost notifications to the dead letters.

It fires the first time a row of the channel becomes a dead letter (beside the log line,
the metric and the notice on ``dead_letter_channel``) and resolves when the channel
delivers again. It is an ordinary alert to notify: routed, grouped and shown in status
like any other, so a route can send it somewhere that still works.
"""

from __future__ import annotations

from datetime import datetime

from agent.evaluate.alerts import Transition, fingerprint, meta_transition

UNDELIVERABLE = "StackwatchNotificationsUndeliverable"


def labels(channel: str) -> dict[str, str]:
    return {"alertname": UNDELIVERABLE, "severity": "critical", "channel": channel}


def fingerprint_of(channel: str) -> str:
    return fingerprint(UNDELIVERABLE, labels(channel))


def transition(channel: str, firing: bool, now: datetime, since: datetime | None) -> Transition:
    """Firing: ``channel`` just lost a notification; resolved: it delivers again."""
    summary = (
        f"Notifications to channel '{channel}' are being lost: one was undeliverable past "
        "the outbox's dead_letter_after"
        if firing
        else f"Channel '{channel}' delivers notifications again"
    )
    return meta_transition(UNDELIVERABLE, labels(channel), firing, now, summary, since=since)
