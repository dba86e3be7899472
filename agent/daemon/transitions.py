"""Transitions the daemon makes itself, outside evaluation: the meta-alert for a rejected
configuration, and the resolution of alerts whose rule is gone (no incident left open)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from agent.config import ConfigError
from agent.evaluate.alerts import AlertState, Transition, fingerprint, meta_transition
from agent.evaluate.engine import Instance
from agent.evaluate.loader import RulesInvalid
from agent.redact import redact

CONFIG_INVALID = "StackwatchConfigInvalid"
_CONFIG_LABELS = {"alertname": CONFIG_INVALID, "severity": "critical"}
CONFIG_FINGERPRINT = fingerprint(CONFIG_INVALID, _CONFIG_LABELS)
EVALUATION_CRASHED = "StackwatchEvaluationCrashed"
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
    value = float(len(problems))
    return meta_transition(
        CONFIG_INVALID, _CONFIG_LABELS, firing, now, summary, value=value, description=text
    )


def crash_transition(group: str, firing: bool, now: datetime, error: str = "") -> Transition:
    """The meta-alert for a rule group whose evaluation raised (firing) or, at its next
    good cycle, recovered (resolved). The other groups go on meanwhile."""
    labels = {"alertname": EVALUATION_CRASHED, "severity": "critical", "group": group}
    summary = (
        f"Stackwatch could not evaluate rule group {group}: {redact(error)}"
        if firing
        else f"Stackwatch evaluates rule group {group} again"
    )
    return meta_transition(EVALUATION_CRASHED, labels, firing, now, summary)


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
