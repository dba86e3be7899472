"""Alert instances and their state transitions: the contract between evaluate and notify.

A rule yields one alert instance per distinct label set (one per stack, service, ...).
Its identity is the fingerprint: a hash of the rule name and its labels, stable across
restarts and across processes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"
    NODATA = "nodata"
    ERROR = "error"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


def fingerprint(rule: str, labels: dict[str, str]) -> str:
    """Stable 16-hex identity of a rule instance."""
    canonical = json.dumps([rule, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Transition:
    """An alert instance moved from one state to another at ``at``.

    ``labels`` include the rule's own labels, the instance dimensions (``stack``,
    ``service``, ...), ``alertname`` (= rule name) and ``severity``.
    ``annotations`` are the rendered ``summary``/``description``/``link``/``runbook``
    and, for anomaly rules, the expected band.
    """

    rule: str
    fingerprint: str
    labels: dict[str, str]
    previous: AlertState
    state: AlertState
    at: datetime
    value: float | None
    threshold: float | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    #: when the current episode began firing (None unless firing/resolved).
    firing_since: datetime | None = None
    #: route names the rule asked for; empty means the default route.
    routes: tuple[str, ...] = ()
    #: remediation action names the rule references.
    actions: tuple[str, ...] = ()

    @property
    def severity(self) -> str:
        return self.labels.get("severity", Severity.WARNING.value)


def meta_transition(
    rule: str,
    labels: dict[str, str],
    firing: bool,
    at: datetime,
    summary: str,
    *,
    value: float | None = None,
    description: str = "",
    since: datetime | None = None,
) -> Transition:
    """A change of one of Stackwatch's own alerts (a rejected configuration, a crashed rule
    group, an undeliverable channel): it fires from inactive or resolves from firing, at
    ``at``; ``since``: when a resolved one began firing."""
    return Transition(
        rule=rule,
        fingerprint=fingerprint(rule, labels),
        labels=dict(labels),
        previous=AlertState.INACTIVE if firing else AlertState.FIRING,
        state=AlertState.FIRING if firing else AlertState.RESOLVED,
        at=at,
        value=value,
        annotations={"summary": summary, **({"description": description} if description else {})},
        firing_since=at if firing else since,
    )
