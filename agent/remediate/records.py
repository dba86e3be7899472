"""The records remediation keeps: actions due, audit entries, and why something was skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from agent.evaluate.alerts import Transition


class Outcome(StrEnum):
    DRY_RUN = "dry_run"
    ATTEMPTED = "attempted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class Guardrail(StrEnum):
    """Why an action was skipped."""

    DISABLED = "disabled"
    COOLDOWN = "cooldown"
    HOURLY_CAP = "hourly_cap"
    ALLOWLIST = "allowlist"
    NODATA = "nodata"
    ERROR = "error"
    SOURCE_DOWN = "source_down"
    #: idempotence: the automation already is in the wanted state.
    ALREADY_DONE = "already_done"
    #: revert: Stackwatch did not disable this automation (or already re-enabled it).
    NOT_DISABLED_BY_STACKWATCH = "not_disabled_by_stackwatch"
    #: revert: someone re-enabled or changed the automation after Stackwatch disabled it.
    CHANGED_MEANWHILE = "changed_meanwhile"
    #: firing_for: the alert stopped firing before the action fell due.
    NO_LONGER_FIRING = "no_longer_firing"
    #: the action was removed from the config after it fell due.
    UNKNOWN_ACTION = "unknown_action"


@dataclass(frozen=True)
class AlertContext:
    """What an action knows of its alert: enough to template, guard and announce."""

    rule: str
    fingerprint: str
    state: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    threshold: float | None
    at: float
    firing_since: float | None
    routes: tuple[str, ...] = ()

    @classmethod
    def of(cls, transition: Transition) -> AlertContext:
        since = transition.firing_since
        return cls(
            rule=transition.rule,
            fingerprint=transition.fingerprint,
            state=transition.state.value,
            labels=dict(transition.labels),
            annotations=dict(transition.annotations),
            value=transition.value,
            threshold=transition.threshold,
            at=transition.at.timestamp(),
            firing_since=since.timestamp() if since is not None else None,
            routes=tuple(transition.routes),
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertContext:
        return cls(**{**data, "routes": tuple(data.get("routes", ()))})

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "warning")

    def template_context(self) -> dict[str, Any]:
        since = self.firing_since
        return {
            "rule": self.rule,
            "alertname": self.labels.get("alertname", self.rule),
            "fingerprint": self.fingerprint,
            "state": self.state,
            "severity": self.severity,
            "labels": self.labels,
            "annotations": self.annotations,
            "summary": self.annotations.get("summary", ""),
            "value": self.value,
            "threshold": self.threshold,
            "stack": self.labels.get("stack"),
            "service": self.labels.get("service"),
            "at": _iso(self.at),
            "firing_since": _iso(since) if since is not None else None,
        }


@dataclass(frozen=True)
class Due:
    """An action that fell due (a durable row): ``run`` the action, or ``revert`` a disable."""

    id: int
    action: str
    step: str
    due_at: float
    alert: AlertContext
    attempts: int
    #: when a call was last about to be made: set means it may have run already.
    started_at: float | None


@dataclass(frozen=True)
class AuditRecord:
    at: float
    actor: str
    action: str
    kind: str
    outcome: Outcome
    message: str
    rule: str | None = None
    fingerprint: str | None = None
    project: str | None = None
    automation: str | None = None
    automation_title: str | None = None
    guardrail: Guardrail | None = None
    dry_run: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": _iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "kind": self.kind,
            "outcome": self.outcome.value,
            "guardrail": self.guardrail.value if self.guardrail else None,
            "dry_run": self.dry_run,
            "rule": self.rule,
            "fingerprint": self.fingerprint,
            "project": self.project,
            "automation": self.automation,
            "automation_title": self.automation_title,
            "message": self.message,
            "detail": self.detail,
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()
