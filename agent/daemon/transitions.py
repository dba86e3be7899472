"""Transitions the daemon makes itself, outside evaluation: the meta-alert for a rejected
configuration, and the resolution of alerts whose rule is gone (no incident left open)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from agent.config import ConfigError
from agent.evaluate.alerts import AlertState, Transition, fingerprint
from agent.evaluate.engine import Instance
from agent.evaluate.loader import RulesInvalid
from agent.redact import redact

CONFIG_INVALID = "StackwatchConfigInvalid"
_CONFIG_LABELS = {"alertname": CONFIG_INVALID, "severity": "critical"}
CONFIG_FINGERPRINT = fingerprint(CONFIG_INVALID, _CONFIG_LABELS)
_NOTIFY_ACTIVE = (AlertState.FIRING, AlertState.NODATA, AlertState.ERROR)


def config_transition(firing: bool, now: datetime, problems: list[str]) -> Transition:
    """The meta-alert for a rejected reload (firing) or the next good one (resolved)."""
    text = "\n".join(problems[:20])
    summary = (
        f"Stackwatch rejected its new configuration ({len(problems)} problem(s)); "
        "the previous rules keep running"
        if firing
        else "Stackwatch configuration is valid again"
    )
    return Transition(
        rule=CONFIG_INVALID,
        fingerprint=CONFIG_FINGERPRINT,
        labels=dict(_CONFIG_LABELS),
        previous=AlertState.INACTIVE if firing else AlertState.FIRING,
        state=AlertState.FIRING if firing else AlertState.RESOLVED,
        at=now,
        value=float(len(problems)),
        annotations={"summary": summary, **({"description": text} if text else {})},
        firing_since=now if firing else None,
    )


def retirements(instances: Iterable[Instance], now: datetime, why: str) -> list[Transition]:
    """Resolutions for the active ones of ``instances``, whose rule is gone."""
    return [
        Transition(
            rule=i.rule,
            fingerprint=i.fingerprint,
            labels=dict(i.labels),
            previous=i.state.state,
            state=AlertState.RESOLVED,
            at=now,
            value=i.state.value,
            annotations={**i.annotations, "summary": f"{i.rule}: {why}"},
            firing_since=i.state.firing_since,
        )
        for i in instances
        if i.state.state in _NOTIFY_ACTIVE
    ]


def problems_of(error: Exception) -> list[str]:
    """What a rejected configuration got wrong, in lines safe to log and to send."""
    if isinstance(error, ConfigError):
        return [redact(p) for p in error.problems]
    if isinstance(error, RulesInvalid):
        return [redact(str(p)) for p in error.problems]
    return [redact(f"{type(error).__name__}: {error}")]
