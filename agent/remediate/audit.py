"""The audit of actions: each outcome written, logged, counted and told, in one sentence."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import structlog

from agent.clock import Clock
from agent.collect.automations import Automation, AutomationsClient
from agent.collect.errors import ContentstackError
from agent.redact import redact
from agent.remediate.records import AlertContext, AuditRecord, Due, Guardrail, Outcome
from agent.remediate.storage import RemediationStorage
from agent.remediate.target import Target

log = structlog.get_logger("agent.remediate")

ACTOR = "stackwatch"
#: announce(alert, text): tell the alert's channels what was done.
Announce = Callable[[AlertContext, str], object]
#: observe(action, outcome): count an outcome in ``/metrics``.
Observe = Callable[[str, str], None]
#: skips that say nothing worth a message on the alert's channels
_QUIET_GUARDRAILS = frozenset(
    {
        Guardrail.DISABLED,
        Guardrail.NOT_DISABLED_BY_STACKWATCH,
        Guardrail.NO_LONGER_FIRING,
        Guardrail.UNKNOWN_ACTION,
    }
)


class Audit:
    """Writes the audit records of one runner, and announces the outcomes worth it."""

    def __init__(
        self,
        storage: RemediationStorage,
        clock: Clock,
        automations: AutomationsClient | None,
        announce: Announce | None,
        observe: Observe | None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.automations = automations
        self.announce = announce
        self.observe = observe
        self._project_titles: dict[str, str] = {}
        #: the automation the action in progress resolved to (for its audit record).
        self.found: Automation | None = None

    def record(
        self, due: Due, kind: str, outcome: Outcome, message: str, target: Target | None
    ) -> AuditRecord:
        return AuditRecord(
            at=self.clock.now().timestamp(),
            actor=ACTOR,
            action=due.action,
            kind=kind,
            outcome=outcome,
            message=message,
            rule=due.alert.rule,
            fingerprint=due.alert.fingerprint,
            project=target.project if target else None,
            automation=target.automation if target else None,
            automation_title=target.title if target else None,
        )

    def begin(self, due: Due, base: AuditRecord, detail: dict[str, Any]) -> None:
        """Commit that the call is about to go out (``started_at``), with its record."""
        record = replace(
            base,
            at=self.clock.now().timestamp(),
            outcome=Outcome.ATTEMPTED,
            detail=dict(detail),
            message=describe(base, due.alert, Outcome.ATTEMPTED, self._project_title(base)),
        )
        self.storage.begin_call(due, record.at, [record])
        self._emit(record, due.alert, announce=False)

    def skip(
        self,
        due: Due,
        base: AuditRecord,
        guardrail: Guardrail,
        detail: dict[str, Any] | None = None,
    ) -> AuditRecord:
        record = replace(base, outcome=Outcome.SKIPPED, guardrail=guardrail)
        return self.finish(due, record, detail=detail or {})

    def finish(self, due: Due, record: AuditRecord, *, detail: dict[str, Any]) -> AuditRecord:
        now = self.clock.now().timestamp()
        record = replace(record, at=now, detail={**record.detail, **detail})
        title = self._project_title(record)
        record = replace(record, message=describe(record, due.alert, record.outcome, title))
        self.storage.finish(due, now, [record])
        quiet = record.guardrail in _QUIET_GUARDRAILS
        self._emit(record, due.alert, announce=not quiet)
        return record

    def _emit(self, record: AuditRecord, alert: AlertContext, *, announce: bool) -> None:
        log.info(
            "remediation_action",
            action=record.action,
            kind=record.kind,
            outcome=record.outcome.value,
            guardrail=record.guardrail.value if record.guardrail else None,
            rule=record.rule,
            fingerprint=record.fingerprint,
            project=record.project,
            automation=record.automation,
            automation_title=record.automation_title,
            detail=record.detail,
            message=record.message,
        )
        if self.observe is not None:
            self.observe(record.action, record.outcome.value)
        if announce and self.announce is not None:
            try:
                self.announce(alert, record.message)
            except Exception:  # the action is done and audited; a lost notice is logged
                log.exception("remediation_announce_failed", action=record.action)

    def _project_title(self, record: AuditRecord) -> str | None:
        project = record.project
        # only for actions that talk to the API anyway: a skip or a dry run calls nothing
        if not project or self.automations is None or self.found is None:
            return self._project_titles.get(project or "")
        if project not in self._project_titles:
            try:
                self._project_titles[project] = self.automations.get_project(project).title
            except ContentstackError:
                return None
        return self._project_titles[project] or None


def about(record: AuditRecord, automation: Automation) -> AuditRecord:
    return replace(record, automation=automation.id, automation_title=automation.title or None)


def error_detail(error: Exception) -> dict[str, Any]:
    detail: dict[str, Any] = {"error": redact(str(error))}
    status = getattr(error, "status", None)
    if status is not None:
        detail["http_status"] = status
    return detail


# -- wording ---------------------------------------------------------------------------------

_DONE = {"trigger": "ran", "disable": "disabled", "enable": "re-enabled"}
_DO = {"trigger": "run", "disable": "disable", "enable": "re-enable"}
_WHY_SKIPPED = {
    Guardrail.DISABLED: "remediation is not enabled",
    Guardrail.COOLDOWN: "the action is in its cooldown",
    Guardrail.HOURLY_CAP: "the hourly cap of actions is reached",
    Guardrail.ALLOWLIST: "the automation is not on the allowlist",
    Guardrail.NODATA: "the rule has no data",
    Guardrail.ERROR: "the rule's data is in error",
    Guardrail.SOURCE_DOWN: "the Contentstack source is down",
    Guardrail.ALREADY_DONE: "it already is in that state",
    Guardrail.NOT_DISABLED_BY_STACKWATCH: "Stackwatch did not disable it",
    Guardrail.CHANGED_MEANWHILE: "someone re-enabled or changed it meanwhile",
    Guardrail.NO_LONGER_FIRING: "the alert stopped firing",
    Guardrail.UNKNOWN_ACTION: "the action is no longer configured",
}


def describe(
    record: AuditRecord, alert: AlertContext, outcome: Outcome, project_title: str | None
) -> str:
    """One sentence for logs, the audit trail and the alert's channels."""
    what = "automation " + (record.automation_title or record.automation or "(by its trigger)")
    if record.kind == "trigger":
        what += " through its HTTP trigger"
    project = project_title or record.project
    if project:
        what += f" in project {project}"
    event = "resolved" if alert.state == "resolved" else "fired"
    because = f"rule {alert.rule} {event}"
    summary = alert.annotations.get("summary")
    if summary:
        because += f": {summary}"
    verb = _DO.get(record.kind, record.kind)
    detail = record.detail
    if outcome is Outcome.SUCCEEDED:
        text = f"Stackwatch {_DONE.get(record.kind, record.kind)} {what} because {because}."
        return text + _verification(record)
    if outcome is Outcome.DRY_RUN:
        return f"Stackwatch would {verb} {what} because {because} (dry run: nothing was called)."
    if outcome is Outcome.ATTEMPTED:
        return f"Stackwatch is about to {verb} {what} because {because}."
    if outcome is Outcome.SKIPPED:
        why = _WHY_SKIPPED.get(record.guardrail, "a guardrail") if record.guardrail else ""
        return f"Stackwatch did not {verb} {what} ({because}): {why}."
    reason = detail.get("error") or _verification(record).strip() or "it did not take effect"
    return f"Stackwatch failed to {verb} {what} ({because}): {reason}"


def _verification(record: AuditRecord) -> str:
    detail = record.detail
    if "execution" in detail:
        return f" Execution {detail['execution']}: {detail['execution_status']}."
    if "read_back" in detail:
        state = "active" if detail["read_back"] else "inactive"
        return f" Verified: it reads back {state}."
    if "verification" in detail:
        return f" Not verified: {detail['verification']}."
    return ""
