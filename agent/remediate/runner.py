"""Run the actions that fell due: claim them, apply the guardrails, then hand each to
``execute.Executor`` for its call and verification; ``audit.Audit`` records every outcome.

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
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from agent.clock import Clock
from agent.collect.automations import AutomationsClient
from agent.collect.errors import ContentstackError
from agent.collect.trigger import TriggerCaller
from agent.evaluate.alerts import Transition
from agent.redact import redact
from agent.remediate.audit import ACTOR, Announce, Audit, Observe, about, error_detail
from agent.remediate.config import Policy, RemediateConfig
from agent.remediate.execute import Executor
from agent.remediate.plan import REVERT, plan
from agent.remediate.records import AuditRecord, Due, Guardrail, Outcome
from agent.remediate.storage import RemediationStorage
from agent.remediate.target import ActionFailed, render_target
from agent.store import Store

log = structlog.get_logger("agent.remediate")


class AlertHealth(Protocol):
    """What the runner asks of evaluate at the moment it acts."""

    def blocked(self, rule: str, fingerprint: str) -> Guardrail | None:
        """NODATA / ERROR when the rule's data is in that state, SOURCE_DOWN while the
        source-down alert fires, else None."""
        ...

    def still_firing(self, fingerprint: str, since: float) -> bool:
        """Whether the alert still fires in the episode that began at ``since``."""
        ...


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
        self.health = health
        self.lease = lease
        #: identifies this runner in claims (a restart is a new runner).
        self.worker = uuid.uuid4().hex[:12]
        self.audit = Audit(self.storage, clock, automations, announce, observe)
        self.executor = Executor(
            self.storage, self.audit, clock, automations, trigger, self.policy.allowlist
        )

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
                record = self.audit.finish(
                    due,
                    self.audit.record(due, due.action, Outcome.FAILED, "internal error", None),
                    detail={"error": redact(f"{type(error).__name__}: {error}")},
                )
            results.append(record)
        return results

    def _run(self, due: Due) -> AuditRecord:
        self.audit.found = None
        action = self.policy.actions.get(due.action)
        alert = due.alert
        if action is None:
            record = self.audit.record(due, due.action, Outcome.SKIPPED, "", None)
            return self.audit.skip(due, record, Guardrail.UNKNOWN_ACTION)
        kind = "enable" if due.step == REVERT else action.kind
        try:
            target = render_target(action, alert)
        except ActionFailed as error:
            record = self.audit.record(due, kind, Outcome.FAILED, "", None)
            return self.audit.finish(due, record, detail={"error": str(error)})
        base = self.audit.record(due, kind, Outcome.SKIPPED, "", target)
        if not self.policy.enabled:
            return self.audit.skip(due, base, Guardrail.DISABLED)
        # an action for a firing alert that resolved before the action ran (its delay, the
        # agent being down) is moot: a late disable would only meet its own revert
        if due.step != REVERT and action.when != "resolved":
            since = alert.firing_since
            if since is None or not self.health.still_firing(alert.fingerprint, since):
                return self.audit.skip(due, base, Guardrail.NO_LONGER_FIRING)
        blocked = self.health.blocked(alert.rule, alert.fingerprint)
        if blocked is not None:
            return self.audit.skip(due, base, blocked)
        # a target the API can name is checked once resolved (an id in the config may be
        # allowed by its title); a dry run calls nothing, so it checks what it has
        resolvable = bool(
            self.automations and target.project and (target.automation or target.title)
        )
        early = due.step != REVERT and (self.policy.dry_run or not resolvable)
        if early and not target.allowed(self.policy.allowlist):
            return self.audit.skip(due, base, Guardrail.ALLOWLIST)
        if due.step != REVERT and due.started_at is None:
            now = self.clock.now().timestamp()
            cooldown = action.cooldown.total_seconds()
            if cooldown and self.storage.taken_since(now - cooldown, ACTOR, action.name):
                return self.audit.skip(due, base, Guardrail.COOLDOWN)
            if self.storage.taken_since(now - 3600, ACTOR) >= self.policy.max_actions_per_hour:
                return self.audit.skip(due, base, Guardrail.HOURLY_CAP)
        if self.policy.dry_run:
            record = replace(base, outcome=Outcome.DRY_RUN, dry_run=True)
            return self.audit.finish(due, record, detail={"step": due.step})
        try:
            if due.step == REVERT:
                return self.executor.revert(due, action, base)
            if kind == "trigger":
                return self.executor.run_trigger(due, action, base, target)
            return self.executor.set_active(due, action, base, target, kind == "enable")
        except (ContentstackError, ActionFailed) as error:
            if self.audit.found is not None:
                base = about(base, self.audit.found)
            return self.audit.finish(
                due, replace(base, outcome=Outcome.FAILED), detail=error_detail(error)
            )
