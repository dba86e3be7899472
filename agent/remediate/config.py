"""``[remediate]`` and its ``[[remediate.actions]]``: what Stackwatch may do, and when.

Pydantic at the edge: the config is validated here, secrets are read here (inline, from
an environment variable or from a file), and the rest of the stage works with the
frozen ``Action`` and ``Policy`` dataclasses built from it.

Targets (``project``, ``automation``, ``automation_title``) and string values of a
trigger's ``body`` are templates over the alert (``labels``, ``annotations``, ``rule``,
``value``, ...), so one action can disable whichever automation an alert is about; the
``allowlist`` bounds what any of them may touch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from agent.durations import lenient_duration
from agent.names import check_name
from agent.redact import register_secret
from agent.secretfiles import check_header_value, read_secret

ActionKind = Literal["trigger", "disable", "enable"]
When = Literal["firing", "resolved", "firing_for"]
SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}


class _Model(BaseModel):
    # inputs may hold the trigger key: never echo them in validation errors
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class ActionConfig(_Model):
    name: str
    kind: ActionKind
    #: Automations project id (templated); disable/enable need it, triggers use it to
    #: find their execution in the execution log.
    project: str | None = None
    #: automation id (templated), or ``automation_title`` to look it up in the project.
    automation: str | None = None
    automation_title: str | None = None
    #: trigger: the HTTP Request trigger's id or its full URL.
    trigger: str | None = None
    method: Literal["GET", "POST"] = "POST"
    #: trigger, POST only: the JSON body; its strings are templates over the alert.
    body: dict[str, Any] | None = None
    #: the "Secure HTTP Trigger" key, sent as ``ah-http-key``.
    http_key: SecretStr | None = None
    http_key_env: str | None = None
    http_key_file: Path | None = None
    when: When = "firing"
    #: when = "firing_for": how long the alert must have fired before the action runs.
    after: timedelta | None = None
    #: act only for alerts at least this severe.
    min_severity: Literal["info", "warning", "critical"] | None = None
    #: the least time between two runs of this action.
    cooldown: timedelta = timedelta(minutes=30)
    #: disable only: re-enable on resolve what this action disabled, unless someone
    #: re-enabled or changed the automation meanwhile.
    revert_on_resolve: bool = False

    _durations = field_validator("after", "cooldown", mode="before")(lenient_duration)

    _name = field_validator("name")(check_name)

    @model_validator(mode="after")
    def _coherent(self) -> ActionConfig:
        if self.kind == "trigger":
            if not self.trigger:
                raise ValueError("a trigger action needs 'trigger' (the trigger id or URL)")
            if self.body is not None and self.method == "GET":
                raise ValueError("'body' needs method = \"POST\"")
        else:
            if not self.project:
                raise ValueError(f"a {self.kind} action needs 'project' (the project id)")
            for name in ("trigger", "body", "http_key", "http_key_env", "http_key_file"):
                if getattr(self, name) is not None:
                    raise ValueError(f"'{name}' is for trigger actions only")
        if self.kind != "trigger" and not (self.automation or self.automation_title):
            raise ValueError(f"a {self.kind} action needs 'automation' or 'automation_title'")
        if self.automation and self.automation_title:
            raise ValueError("give 'automation' or 'automation_title', not both")
        if self.revert_on_resolve and self.kind != "disable":
            raise ValueError("'revert_on_resolve' is for disable actions only")
        if self.revert_on_resolve and self.when == "resolved":
            raise ValueError("'revert_on_resolve' needs the disable to happen while firing")
        if (self.when == "firing_for") != (self.after is not None):
            raise ValueError("'after' goes with when = \"firing_for\", and only with it")
        if self.cooldown < timedelta(0):
            raise ValueError("'cooldown' must not be negative")
        templates = self._templates()
        if templates:  # Jinja2 only for configs that template: the root config is imported often
            from agent.evaluate.annotate import check_template
        for template in templates:
            problem = check_template(template)
            if problem:
                raise ValueError(f"template {template!r}: {problem}")
        self._load_key()
        return self

    def _templates(self) -> list[str]:
        texts = [self.project, self.automation, self.automation_title]
        texts.extend(_strings(self.body))
        return [text for text in texts if text]

    def _load_key(self) -> None:
        sources = [self.http_key, self.http_key_env, self.http_key_file]
        if sum(source is not None for source in sources) > 1:
            raise ValueError("give one of http_key, http_key_env, http_key_file")
        if self.http_key_env is not None:
            value = os.environ.get(self.http_key_env, "").strip()
            if not value:
                raise ValueError(f"environment variable {self.http_key_env} is not set")
            self.http_key = SecretStr(value)
        elif self.http_key_file is not None:
            self.http_key = SecretStr(read_secret(self.http_key_file, "http_key"))
        if self.http_key is not None:
            register_secret(self.http_key.get_secret_value())
            check_header_value(self.http_key.get_secret_value(), "http_key")

    def build(self) -> Action:
        return Action(
            name=self.name,
            kind=self.kind,
            project=self.project,
            automation=self.automation,
            automation_title=self.automation_title,
            trigger=self.trigger,
            method=self.method,
            body=self.body,
            http_key=self.http_key,
            when=self.when,
            after=self.after or timedelta(0),
            min_severity=self.min_severity,
            cooldown=self.cooldown,
            revert_on_resolve=self.revert_on_resolve,
        )


class RemediateConfig(_Model):
    #: nothing is done (and nothing called) until this is true.
    enabled: bool = False
    #: record and announce what would be done, call nothing.
    dry_run: bool = False
    #: actions (attempted or dry-run) per rolling hour, over all actions.
    max_actions_per_hour: int = Field(default=10, ge=1, le=1000)
    #: automation ids, titles or trigger ids that actions may touch.
    allowlist: list[str] = Field(default_factory=list)
    actions: list[ActionConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> RemediateConfig:
        names = [action.name for action in self.actions]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"action names must be unique: {', '.join(duplicates)}")
        if self.enabled and self.actions and not self.allowlist:
            raise ValueError(
                "remediation is enabled but 'allowlist' is empty: list the automation ids, "
                "titles or trigger ids its actions may touch"
            )
        return self

    def build(self) -> Policy:
        return Policy(
            enabled=self.enabled,
            dry_run=self.dry_run,
            max_actions_per_hour=self.max_actions_per_hour,
            allowlist=frozenset(self.allowlist),
            actions={action.name: action.build() for action in self.actions},
        )


@dataclass(frozen=True)
class Action:
    name: str
    kind: ActionKind
    project: str | None
    automation: str | None
    automation_title: str | None
    trigger: str | None
    method: Literal["GET", "POST"]
    body: dict[str, Any] | None
    http_key: SecretStr | None = field(repr=False)
    when: When
    after: timedelta
    min_severity: str | None
    cooldown: timedelta
    revert_on_resolve: bool

    def applies_to(self, severity: str) -> bool:
        if self.min_severity is None:
            return True
        return SEVERITY_ORDER.get(severity, 1) >= SEVERITY_ORDER[self.min_severity]


@dataclass(frozen=True)
class Policy:
    enabled: bool
    dry_run: bool
    max_actions_per_hour: int
    allowlist: frozenset[str]
    actions: dict[str, Action]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []
