"""An action's automation for one alert: its templates rendered, and the allowlist check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.collect.automations import Automation
from agent.evaluate.annotate import render
from agent.remediate.config import Action
from agent.remediate.records import AlertContext


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

    def allowed(self, allowlist: frozenset[str], automation: Automation | None = None) -> bool:
        """Whether one of its names (or the resolved automation's id or title) is allowed."""
        names = self.names()
        if automation is not None:
            names |= {automation.id, automation.title}
        return bool(names & allowlist)


def render_target(action: Action, alert: AlertContext) -> Target:
    return Target(
        project=_render(action.project, alert),
        automation=_render(action.automation, alert),
        title=_render(action.automation_title, alert),
        trigger=action.trigger,
    )


def render_body(body: Any, alert: AlertContext) -> Any:
    if isinstance(body, str):
        return _render(body, alert)
    if isinstance(body, dict):
        return {key: render_body(value, alert) for key, value in body.items()}
    if isinstance(body, list):
        return [render_body(value, alert) for value in body]
    return body


def _render(template: str | None, alert: AlertContext) -> str | None:
    if not template:
        return template
    text = render(template, alert.template_context()).strip()
    if "[template error:" in text:
        raise ActionFailed(f"template {template!r} failed for this alert")
    return text
