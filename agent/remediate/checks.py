"""What ``stackwatch doctor`` asks of remediation: can each action find what it acts on?

Reads only: an automation is looked up, never patched, and a trigger is never called
(calling it would run the automation).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from agent.collect.automations import AutomationsClient
from agent.collect.errors import ContentstackError
from agent.remediate.config import Action, Policy


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str
    fix: str = ""


def readiness(policy: Policy, automations: AutomationsClient) -> Iterator[Finding]:
    if not policy.actions:
        return
    mode = "off" if not policy.enabled else ("dry run" if policy.dry_run else "on")
    yield Finding(True, f"remediation: {mode}, {len(policy.actions)} action(s)")
    for action in policy.actions.values():
        yield _action(policy, action, automations)


def _action(policy: Policy, action: Action, automations: AutomationsClient) -> Finding:
    where = f"action {action.name!r}"
    named = action.automation or action.automation_title
    if not action.project or not named:
        return Finding(True, f"{where}: trigger not called (it would run the automation)")
    if "{{" in action.project + named:
        return Finding(True, f"{where}: acts on the automation its alert names")
    try:
        if action.automation:
            found = [automations.get_automation(action.project, action.automation, False)]
        else:
            found = [
                a for a in automations.list_automations(action.project)
                if a.title == action.automation_title
            ]  # fmt: skip
    except ContentstackError as error:
        return Finding(False, f"{where}: {error.message}", "check its project and automation")
    if len(found) != 1:
        count = "no" if not found else str(len(found))
        return Finding(
            False, f"{where}: {count} automation(s) titled {named!r}", "use the automation id"
        )
    automation = found[0]
    names = {automation.id, automation.title, action.trigger or ""}
    if policy.enabled and not names & policy.allowlist:
        return Finding(
            False,
            f"{where}: automation {automation.title or automation.id} is not on the allowlist",
            "add its id or title to [remediate] allowlist",
        )
    state = "active" if automation.active else "inactive"
    return Finding(True, f"{where}: automation {automation.title or automation.id} found, {state}")
