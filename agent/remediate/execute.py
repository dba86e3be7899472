"""The calls an action makes past its guardrails, each verified: disable / enable read
back, a trigger's run looked up in the execution log, a revert of what Stackwatch did.

A row claimed again after a restart (``started_at`` set) may have run already: a trigger
is first looked up in the execution log, a disable/enable is read back.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from agent.clock import Clock
from agent.collect.automations import Automation, AutomationsClient, Execution
from agent.collect.errors import ContentstackError, TriggerInactive
from agent.collect.trigger import TriggerCaller
from agent.remediate.audit import Audit, about, error_detail
from agent.remediate.config import Action
from agent.remediate.records import AuditRecord, Due, Guardrail, Outcome
from agent.remediate.storage import PriorState, RemediationStorage
from agent.remediate.target import ActionFailed, Target, render_body

#: how far before the call an execution may be stamped (clocks differ) and still be ours.
EXECUTION_SLACK = timedelta(seconds=30)
_EXECUTION_ID_KEYS = ("execution_id", "executionId", "execution_uid")


class Executor:
    def __init__(
        self,
        storage: RemediationStorage,
        audit: Audit,
        clock: Clock,
        automations: AutomationsClient | None,
        trigger: TriggerCaller | None,
        allowlist: frozenset[str],
    ) -> None:
        self.storage = storage
        self.audit = audit
        self.clock = clock
        self.automations = automations
        self.trigger = trigger
        self.allowlist = allowlist

    # -- disable / enable ------------------------------------------------------------------

    def set_active(
        self, due: Due, action: Action, base: AuditRecord, target: Target, wanted: bool
    ) -> AuditRecord:
        client = self._client()
        project = target.project or ""
        automation = self._find(project, target)
        base = about(base, automation)
        if not target.allowed(self.allowlist, automation):
            return self.audit.skip(due, base, Guardrail.ALLOWLIST)
        recovered = due.started_at is not None
        if automation.active == wanted and not recovered:
            return self.audit.skip(
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
            self.audit.begin(due, base, detail)
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
        return self.audit.finish(due, replace(base, outcome=outcome), detail=detail)

    def revert(self, due: Due, action: Action, base: AuditRecord) -> AuditRecord:
        prior = self.storage.prior_of(action.name, due.alert.fingerprint)
        if prior is None or prior.status != "disabled":
            return self.audit.skip(due, base, Guardrail.NOT_DISABLED_BY_STACKWATCH)
        client = self._client()
        target = Target(prior.project, prior.automation, None, None)
        automation = self._find(prior.project, target)
        base = about(replace(base, project=prior.project), automation)
        if not target.allowed(self.allowlist, automation):
            return self.audit.skip(due, base, Guardrail.ALLOWLIST)
        now = self.clock.now().timestamp()
        release = replace(prior, status="released")
        if automation.active and due.started_at is None:
            self.storage.save_prior(release, now)
            return self.audit.skip(due, base, Guardrail.CHANGED_MEANWHILE, detail={"active": True})
        updated = automation.raw.get("updated_at")
        if (
            not automation.active
            and prior.updated_at
            and updated
            and str(updated) != prior.updated_at
        ):
            self.storage.save_prior(release, now)
            return self.audit.skip(
                due, base, Guardrail.CHANGED_MEANWHILE, detail={"updated_at": str(updated)}
            )
        if not automation.active:
            self.audit.begin(due, base, {"prior_active": False})
            client.set_active(prior.project, prior.automation, True)
        after = client.get_automation(prior.project, prior.automation, show_steps=False)
        if after.active:
            self.storage.save_prior(replace(prior, status="reverted"), now)
        outcome = Outcome.SUCCEEDED if after.active else Outcome.FAILED
        detail: dict[str, Any] = {"read_back": after.active}
        if due.started_at is not None:
            detail["recovered"] = True
        return self.audit.finish(due, replace(base, outcome=outcome), detail=detail)

    # -- trigger ---------------------------------------------------------------------------

    def run_trigger(
        self, due: Due, action: Action, base: AuditRecord, target: Target
    ) -> AuditRecord:
        if self.trigger is None:
            raise ActionFailed("no trigger caller configured")
        automation_id = target.automation
        if target.project and (automation_id or target.title):  # its title, for the audit
            automation = self._find(target.project, target)
            automation_id = automation.id
            base = about(base, automation)
            if not target.allowed(self.allowlist, automation):
                return self.audit.skip(due, base, Guardrail.ALLOWLIST)
        checkable = bool(target.project and automation_id and self.automations)
        detail: dict[str, Any] = {}
        if due.started_at is not None:  # the call may have gone out before a restart
            if not checkable:
                detail["error"] = (
                    "the trigger may have run before a restart and is not repeated: without "
                    "project and automation there is no execution log to check"
                )
                return self.audit.finish(due, replace(base, outcome=Outcome.FAILED), detail=detail)
            since = due.started_at - EXECUTION_SLACK.total_seconds()
            found = self._executions_since(target.project or "", automation_id or "", since)
            if found:
                return self._verified(due, base, found[-1], {"recovered": True})
            detail["retried_after_restart"] = True
        body = render_body(action.body, due.alert) if action.method == "POST" else None
        self.audit.begin(due, base, detail)
        called_at = self.clock.now().timestamp()
        try:
            result = self.trigger.call(
                action.trigger or "", method=action.method, body=body, secret=action.http_key
            )
        except TriggerInactive as error:
            detail.update(error_detail(error), not_activated=True)
            return self.audit.finish(due, replace(base, outcome=Outcome.FAILED), detail=detail)
        detail["status"] = result.status
        if not checkable:
            detail["verification"] = "no project and automation given: execution not looked up"
            return self.audit.finish(due, replace(base, outcome=Outcome.SUCCEEDED), detail=detail)
        execution = self._execution_of(
            target.project or "", automation_id or "", result.body, called_at
        )
        if execution is None:
            detail["verification"] = "no execution in the execution log yet"
            return self.audit.finish(due, replace(base, outcome=Outcome.SUCCEEDED), detail=detail)
        return self._verified(due, base, execution, detail)

    # -- verification ----------------------------------------------------------------------

    def _verified(
        self, due: Due, base: AuditRecord, execution: Execution, detail: dict[str, Any]
    ) -> AuditRecord:
        detail = {**detail, "execution": execution.id, "execution_status": execution.status}
        outcome = Outcome.SUCCEEDED if execution.succeeded else Outcome.FAILED
        return self.audit.finish(due, replace(base, outcome=outcome), detail=detail)

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

    # -- the automation --------------------------------------------------------------------

    def _client(self) -> AutomationsClient:
        if self.automations is None:
            raise ActionFailed("no Automations client configured")
        return self.automations

    def _find(self, project: str, target: Target) -> Automation:
        self.audit.found = self._lookup(project, target)
        return self.audit.found

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
