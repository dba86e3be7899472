"""Run the actions that fell due: guardrails first, then the call, then its verification.

Order of the guardrails (the first that applies skips the action, and says so):
remediation disabled → an alert that stopped firing (firing actions) → the rule's data in
no-data/error or the source-down alert firing → the allowlist → the action's cooldown →
the hourly cap → dry run. Reverts are exempt from cooldown and cap: they restore what
Stackwatch itself changed.

Crash safety: a due row is claimed with a lease; ``started_at`` is committed before a call
goes out. A row found with ``started_at`` set after a restart may have run: a trigger is
then looked up in the execution log before it is repeated, and a disable/enable is read
back (setting ``active`` twice is harmless).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from agent.clock import Clock
from agent.collect.automations import Automation, AutomationsClient, Execution
from agent.collect.errors import ContentstackError, TriggerInactive
from agent.collect.trigger import TriggerCaller
from agent.evaluate.alerts import Transition
from agent.evaluate.annotate import render
from agent.redact import redact
from agent.remediate.config import Action, Policy, RemediateConfig
from agent.remediate.plan import REVERT, plan
from agent.remediate.records import AlertContext, AuditRecord, Due, Guardrail, Outcome
from agent.remediate.storage import PriorState, RemediationStorage
from agent.store import Store

log = structlog.get_logger("agent.remediate")

ACTOR = "stackwatch"
#: how far before the call an execution may be stamped (clocks differ) and still be ours.
EXECUTION_SLACK = timedelta(seconds=30)
_EXECUTION_ID_KEYS = ("execution_id", "executionId", "execution_uid")
_QUIET_GUARDRAILS = frozenset(
    {
        Guardrail.DISABLED,
        Guardrail.NOT_DISABLED_BY_STACKWATCH,
        Guardrail.NO_LONGER_FIRING,
        Guardrail.UNKNOWN_ACTION,
    }
)


class AlertHealth(Protocol):
    """What the runner asks of evaluate at the moment it acts."""

    def blocked(self, rule: str, fingerprint: str) -> Guardrail | None:
        """NODATA / ERROR when the rule's data is in that state, SOURCE_DOWN while the
        source-down alert fires, else None."""
        ...

    def still_firing(self, fingerprint: str, since: float) -> bool:
        """Whether the alert still fires in the episode that began at ``since``."""
        ...


#: announce(alert, text): tell the alert's channels what was done.
Announce = Callable[[AlertContext, str], object]
#: observe(action, outcome): count an outcome in ``/metrics``.
Observe = Callable[[str, str], None]


class ActionFailed(Exception):
    """A step of an action failed in a way the audit record should say plainly."""


@dataclass(frozen=True)
class Target:
    """An action's automation, its templates rendered for one alert."""

    project: str | None
    automation: str | None
    title: str | None
    trigger: str | None

    def names(self) -> set[str]:
        names = {name for name in (self.automation, self.title, self.trigger) if name}
        if self.trigger and "/" in self.trigger:
            names.add(self.trigger.rstrip("/").rsplit("/", 1)[-1])
        return names

    @property
    def shown(self) -> str:
        return self.title or self.automation or "(by its trigger)"


class Remediator:
    def __init__(
        self,
        config: RemediateConfig | Policy,
        store: Store,
        clock: Clock,
        automations: AutomationsClient | None,
        trigger: TriggerCaller | None,
        *,
        health: AlertHealth,
        announce: Announce | None = None,
        observe: Observe | None = None,
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        self.policy = config.build() if isinstance(config, RemediateConfig) else config
        self.storage = RemediationStorage(store)
        self.clock = clock
        self.automations = automations
        self.trigger = trigger
        self.health = health
        self.announce = announce
        self.observe = observe
        self.lease = lease
        #: identifies this runner in claims (a restart is a new runner).
        self.worker = uuid.uuid4().hex[:12]
        self._project_titles: dict[str, str] = {}
        #: the automation the action in progress resolved to (for its audit record).
        self._found: Automation | None = None

    # -- scheduling (inside the alert state's transaction) -------------------------------

    def schedule(self, conn: sqlite3.Connection, transitions: Iterable[Transition]) -> int:
        """Write the actions these state changes make due; returns how many were new."""
        if not self.policy.actions:
            return 0
        added = 0
        for item in plan(transitions, self.policy.actions):
            if self.storage.add_due(
                conn, item.key, item.action, item.step, item.alert, item.due_at
            ):
                added += 1
                log.info(
                    "remediation_due",
                    action=item.action,
                    step=item.step,
                    rule=item.alert.rule,
                    fingerprint=item.alert.fingerprint,
                    due_at=datetime.fromtimestamp(item.due_at, UTC).isoformat(),
                )
        return added

    def submit(self, transitions: Iterable[Transition]) -> None:
        """``schedule`` in the caller's ``store.tx()`` (joined), or in a transaction of its own."""
        with self.storage.store.tx() as conn:
            self.schedule(conn, transitions)

    # -- running ------------------------------------------------------------------------

    def run_once(self, limit: int = 20) -> list[AuditRecord]:
        """Run what is due now; returns the final audit record of each."""
        now = self.clock.now().timestamp()
        until = now + self.lease.total_seconds()
        results = []
        for due in self.storage.claim(now, until, self.worker, limit):
            try:
                record = self._run(due)
            except Exception as error:  # a bug must not leave the row to be retried blindly
                log.exception("remediation_crashed", action=due.action, due=due.id)
                record = self._finish(
                    due,
                    self._record(due, due.action, Outcome.FAILED, "internal error", None),
                    detail={"error": redact(f"{type(error).__name__}: {error}")},
                )
            results.append(record)
        return results

    def _run(self, due: Due) -> AuditRecord:
        self._found = None
        action = self.policy.actions.get(due.action)
        alert = due.alert
        if action is None:
            record = self._record(due, due.action, Outcome.SKIPPED, "", None)
            return self._skip(due, record, Guardrail.UNKNOWN_ACTION)
        kind = "enable" if due.step == REVERT else action.kind
        try:
            target = _render_target(action, alert)
        except ActionFailed as error:
            record = self._record(due, kind, Outcome.FAILED, "", None)
            return self._finish(due, record, detail={"error": str(error)})
        base = self._record(due, kind, Outcome.SKIPPED, "", target)
        if not self.policy.enabled:
            return self._skip(due, base, Guardrail.DISABLED)
        # an action for a firing alert that resolved before the action ran (its delay, the
        # agent being down) is moot: a late disable would only meet its own revert
        if due.step != REVERT and action.when != "resolved":
            since = alert.firing_since
            if since is None or not self.health.still_firing(alert.fingerprint, since):
                return self._skip(due, base, Guardrail.NO_LONGER_FIRING)
        blocked = self.health.blocked(alert.rule, alert.fingerprint)
        if blocked is not None:
            return self._skip(due, base, blocked)
        # a target the API can name is checked once resolved (an id in the config may be
        # allowed by its title); a dry run calls nothing, so it checks what it has
        resolvable = bool(
            self.automations and target.project and (target.automation or target.title)
        )
        early = due.step != REVERT and (self.policy.dry_run or not resolvable)
        if early and not self._allowed(target):
            return self._skip(due, base, Guardrail.ALLOWLIST)
        if due.step != REVERT and due.started_at is None:
            now = self.clock.now().timestamp()
            cooldown = action.cooldown.total_seconds()
            if cooldown and self.storage.taken_since(now - cooldown, ACTOR, action.name):
                return self._skip(due, base, Guardrail.COOLDOWN)
            if self.storage.taken_since(now - 3600, ACTOR) >= self.policy.max_actions_per_hour:
                return self._skip(due, base, Guardrail.HOURLY_CAP)
        if self.policy.dry_run:
            record = replace(base, outcome=Outcome.DRY_RUN, dry_run=True)
            return self._finish(due, record, detail={"step": due.step})
        try:
            if due.step == REVERT:
                return self._revert(due, action, base)
            if kind == "trigger":
                return self._run_trigger(due, action, base, target)
            return self._set_active(due, action, base, target, kind == "enable")
        except (ContentstackError, ActionFailed) as error:
            if self._found is not None:
                base = _about(base, self._found)
            return self._finish(due, replace(base, outcome=Outcome.FAILED), detail=_error(error))

    # -- disable / enable ------------------------------------------------------------------

    def _set_active(
        self, due: Due, action: Action, base: AuditRecord, target: Target, wanted: bool
    ) -> AuditRecord:
        client = self._client()
        project = target.project or ""
        automation = self._find(project, target)
        base = _about(base, automation)
        if not self._allowed(target, automation):
            return self._skip(due, base, Guardrail.ALLOWLIST)
        recovered = due.started_at is not None
        if automation.active == wanted and not recovered:
            return self._skip(
                due, base, Guardrail.ALREADY_DONE, detail={"prior_active": automation.active}
            )
        now = self.clock.now().timestamp()
        fingerprint = due.alert.fingerprint
        if not wanted and not recovered:  # recorded before the PATCH, for the revert
            self.storage.save_prior(
                PriorState(project, automation.id, action.name, fingerprint, True, "disabling"),
                now,
            )
        detail: dict[str, Any] = {"prior_active": not wanted}
        if recovered:
            detail["recovered"] = True
        if automation.active != wanted:
            self._begin(due, base, detail)
            client.set_active(project, automation.id, wanted)
        after = client.get_automation(project, automation.id, show_steps=False)
        verified = after.active == wanted
        if not wanted:
            updated = after.raw.get("updated_at")
            self.storage.save_prior(
                PriorState(
                    project,
                    automation.id,
                    action.name,
                    fingerprint,
                    True,
                    "disabled" if verified else "released",
                    str(updated) if updated else None,
                ),
                now,
            )
        detail["read_back"] = after.active
        outcome = Outcome.SUCCEEDED if verified else Outcome.FAILED
        return self._finish(due, replace(base, outcome=outcome), detail=detail)

    def _revert(self, due: Due, action: Action, base: AuditRecord) -> AuditRecord:
        prior = self.storage.prior_of(action.name, due.alert.fingerprint)
        if prior is None or prior.status != "disabled":
            return self._skip(due, base, Guardrail.NOT_DISABLED_BY_STACKWATCH)
        client = self._client()
        target = Target(prior.project, prior.automation, None, None)
        automation = self._find(prior.project, target)
        base = _about(replace(base, project=prior.project), automation)
        if not self._allowed(target, automation):
            return self._skip(due, base, Guardrail.ALLOWLIST)
        now = self.clock.now().timestamp()
        release = replace(prior, status="released")
        if automation.active and due.started_at is None:
            self.storage.save_prior(release, now)
            return self._skip(due, base, Guardrail.CHANGED_MEANWHILE, detail={"active": True})
        updated = automation.raw.get("updated_at")
        if (
            not automation.active
            and prior.updated_at
            and updated
            and str(updated) != prior.updated_at
        ):
            self.storage.save_prior(release, now)
            return self._skip(
                due, base, Guardrail.CHANGED_MEANWHILE, detail={"updated_at": str(updated)}
            )
        if not automation.active:
            self._begin(due, base, {"prior_active": False})
            client.set_active(prior.project, prior.automation, True)
        after = client.get_automation(prior.project, prior.automation, show_steps=False)
        if after.active:
            self.storage.save_prior(replace(prior, status="reverted"), now)
        outcome = Outcome.SUCCEEDED if after.active else Outcome.FAILED
        detail: dict[str, Any] = {"read_back": after.active}
        if due.started_at is not None:
            detail["recovered"] = True
        return self._finish(due, replace(base, outcome=outcome), detail=detail)

    # -- trigger ---------------------------------------------------------------------------

    def _run_trigger(
        self, due: Due, action: Action, base: AuditRecord, target: Target
    ) -> AuditRecord:
        if self.trigger is None:
            raise ActionFailed("no trigger caller configured")
        automation_id = target.automation
        if target.project and (automation_id or target.title):  # its title, for the audit
            automation = self._find(target.project, target)
            automation_id = automation.id
            base = _about(base, automation)
            if not self._allowed(target, automation):
                return self._skip(due, base, Guardrail.ALLOWLIST)
        checkable = bool(target.project and automation_id and self.automations)
        detail: dict[str, Any] = {}
        if due.started_at is not None:  # the call may have gone out before a restart
            if not checkable:
                detail["error"] = (
                    "the trigger may have run before a restart and is not repeated: without "
                    "project and automation there is no execution log to check"
                )
                return self._finish(due, replace(base, outcome=Outcome.FAILED), detail=detail)
            since = due.started_at - EXECUTION_SLACK.total_seconds()
            found = self._executions_since(target.project or "", automation_id or "", since)
            if found:
                return self._verified(due, base, found[-1], {"recovered": True})
            detail["retried_after_restart"] = True
        body = _render_body(action.body, due.alert) if action.method == "POST" else None
        self._begin(due, base, detail)
        called_at = self.clock.now().timestamp()
        try:
            result = self.trigger.call(
                action.trigger or "", method=action.method, body=body, secret=action.http_key
            )
        except TriggerInactive as error:
            detail.update(_error(error), not_activated=True)
            return self._finish(due, replace(base, outcome=Outcome.FAILED), detail=detail)
        detail["status"] = result.status
        if not checkable:
            detail["verification"] = "no project and automation given: execution not looked up"
            return self._finish(due, replace(base, outcome=Outcome.SUCCEEDED), detail=detail)
        execution = self._execution_of(
            target.project or "", automation_id or "", result.body, called_at
        )
        if execution is None:
            detail["verification"] = "no execution in the execution log yet"
            return self._finish(due, replace(base, outcome=Outcome.SUCCEEDED), detail=detail)
        return self._verified(due, base, execution, detail)

    def _verified(
        self, due: Due, base: AuditRecord, execution: Execution, detail: dict[str, Any]
    ) -> AuditRecord:
        detail = {**detail, "execution": execution.id, "execution_status": execution.status}
        outcome = Outcome.SUCCEEDED if execution.succeeded else Outcome.FAILED
        return self._finish(due, replace(base, outcome=outcome), detail=detail)

    def _execution_of(
        self, project: str, automation_id: str, answer: Any, called_at: float
    ) -> Execution | None:
        """The execution a trigger started: by the id in its answer when there is one (the
        answer is undocumented), else the newest of the automation's since the call."""
        client = self._client()
        if isinstance(answer, dict):
            for key in _EXECUTION_ID_KEYS:
                if isinstance(answer.get(key), str):
                    try:
                        return client.get_execution(project, answer[key])
                    except ContentstackError:
                        break
        found = self._executions_since(
            project, automation_id, called_at - EXECUTION_SLACK.total_seconds()
        )
        return found[-1] if found else None

    def _executions_since(self, project: str, automation_id: str, since: float) -> list[Execution]:
        """The automation's executions created at or after ``since``, oldest first. The log
        is read newest first (documented) and filtered here: no filter parameter is."""
        executions = self._client().list_executions(project)
        mine = [
            e
            for e in executions
            if e.automation_id == automation_id
            and e.created_at is not None
            and e.created_at.timestamp() >= since
        ]
        return sorted(mine, key=lambda e: e.created_at or datetime.min)

    # -- plumbing --------------------------------------------------------------------------

    def _client(self) -> AutomationsClient:
        if self.automations is None:
            raise ActionFailed("no Automations client configured")
        return self.automations

    def _find(self, project: str, target: Target) -> Automation:
        self._found = self._lookup(project, target)
        return self._found

    def _lookup(self, project: str, target: Target) -> Automation:
        client = self._client()
        if target.automation:
            return client.get_automation(project, target.automation, show_steps=False)
        matches = [a for a in client.list_automations(project) if a.title == target.title]
        if not matches:
            folded = (target.title or "").casefold()
            matches = [a for a in client.list_automations(project) if a.title.casefold() == folded]
        if len(matches) != 1:
            found = "no" if not matches else f"{len(matches)}"
            raise ActionFailed(f"{found} automations titled {target.title!r} in the project")
        return matches[0]

    def _allowed(self, target: Target, automation: Automation | None = None) -> bool:
        names = target.names()
        if automation is not None:
            names |= {automation.id, automation.title}
        return bool(names & self.policy.allowlist)

    def _record(
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

    def _begin(self, due: Due, base: AuditRecord, detail: dict[str, Any]) -> None:
        record = replace(
            base,
            at=self.clock.now().timestamp(),
            outcome=Outcome.ATTEMPTED,
            detail=dict(detail),
            message=describe(base, due.alert, Outcome.ATTEMPTED, self._project_title(base)),
        )
        self.storage.begin_call(due, record.at, [record])
        self._emit(record, due.alert, announce=False)

    def _skip(
        self,
        due: Due,
        base: AuditRecord,
        guardrail: Guardrail,
        detail: dict[str, Any] | None = None,
    ) -> AuditRecord:
        record = replace(base, outcome=Outcome.SKIPPED, guardrail=guardrail)
        return self._finish(due, record, detail=detail or {})

    def _finish(self, due: Due, record: AuditRecord, *, detail: dict[str, Any]) -> AuditRecord:
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
        if not project or self.automations is None or self._found is None:
            return self._project_titles.get(project or "")
        if project not in self._project_titles:
            try:
                self._project_titles[project] = self.automations.get_project(project).title
            except ContentstackError:
                return None
        return self._project_titles[project] or None


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


def _about(record: AuditRecord, automation: Automation) -> AuditRecord:
    return replace(record, automation=automation.id, automation_title=automation.title or None)


def _error(error: Exception) -> dict[str, Any]:
    detail: dict[str, Any] = {"error": redact(str(error))}
    status = getattr(error, "status", None)
    if status is not None:
        detail["http_status"] = status
    return detail


def _render(template: str | None, alert: AlertContext) -> str | None:
    if not template:
        return template
    text = render(template, alert.template_context()).strip()
    if "[template error:" in text:
        raise ActionFailed(f"template {template!r} failed for this alert")
    return text


def _render_target(action: Action, alert: AlertContext) -> Target:
    return Target(
        project=_render(action.project, alert),
        automation=_render(action.automation, alert),
        title=_render(action.automation_title, alert),
        trigger=action.trigger,
    )


def _render_body(body: Any, alert: AlertContext) -> Any:
    if isinstance(body, str):
        return _render(body, alert)
    if isinstance(body, dict):
        return {key: _render_body(value, alert) for key, value in body.items()}
    if isinstance(body, list):
        return [_render_body(value, alert) for value in body]
    return body
