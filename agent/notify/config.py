"""The ``[notify]`` config table: channels, routes, inhibition, silences, escalation, outbox."""

from __future__ import annotations

import os
import re
from datetime import time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from agent.durations import lenient_duration
from agent.notify.matchers import parse_matchers
from agent.redact import register_secret
from agent.secretfiles import read_secret, resolve

TemplateKind = Literal["markdown", "html", "text", "short"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: what every Apprise URL looks like (RFC 3986 scheme, then ``://``)
_URL_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


def _valid_matchers(value: list[str]) -> list[str]:
    parse_matchers(value)  # raises ValueError naming the bad matcher
    return value


def _valid_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


class _Model(BaseModel):
    # inputs hold secrets (Apprise URLs): never echo them in validation errors
    model_config = ConfigDict(extra="forbid", validate_default=True, hide_input_in_errors=True)


class ChannelConfig(_Model):
    """A named set of Apprise destinations. Every URL is a secret."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    urls: list[SecretStr] = Field(default_factory=list)
    #: environment variables each holding one Apprise URL (or several, whitespace-separated).
    url_env: list[str] = Field(default_factory=list)
    #: files holding one Apprise URL per line (mounted secrets, systemd credentials).
    url_files: list[Path] = Field(default_factory=list)
    #: Apprise configuration files (TEXT or YAML format), loaded with AppriseConfig.
    config_files: list[Path] = Field(default_factory=list)
    #: override the template kind otherwise chosen per URL scheme.
    template: TemplateKind | None = None
    #: upper bound for one send to one destination.
    timeout: timedelta = timedelta(seconds=15)

    _durations = field_validator("timeout", mode="before")(lenient_duration)

    @model_validator(mode="after")
    def _load_urls(self) -> ChannelConfig:
        for variable in self.url_env:
            value = os.environ.get(variable, "").strip()
            if not value:
                raise ValueError(
                    f"channel {self.name!r}: environment variable {variable} is empty or unset"
                )
            self.urls.extend(SecretStr(part) for part in value.split())
        for path in self.url_files:
            for line in read_secret(path, f"channel {self.name} URL").splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    self.urls.append(SecretStr(line.strip()))
        self.config_files = [resolve(path) for path in self.config_files]
        for path in self.config_files:
            if not path.is_file():
                raise ValueError(
                    f"channel {self.name!r}: Apprise config file {str(path)!r} missing"
                )
        if not self.urls and not self.config_files:
            raise ValueError(f"channel {self.name!r} has no urls")
        # Only the form is checked here: whether Apprise accepts a URL is known once
        # Apprise is loaded (about a second), which ``check`` and the channels do.
        for index, secret in enumerate(self.urls, start=1):
            url = secret.get_secret_value()
            register_secret(url)
            if not _URL_FORM.match(url):
                # named by position only: the URL itself is a secret
                raise ValueError(f"channel {self.name!r}: URL #{index} is not SCHEME://…")
        return self


class TemplateOverrides(_Model):
    """Jinja2 templates (sandboxed). ``title`` is shared; bodies are per kind."""

    title: str | None = None
    markdown: str | None = None
    html: str | None = None
    text: str | None = None
    short: str | None = None


class RouteConfig(_Model):
    """A node of the route tree. Unset fields (None) inherit from the parent route."""

    name: str | None = None
    #: label equality matchers.
    match: dict[str, str] = Field(default_factory=dict)
    #: label regex matchers (full match).
    match_re: dict[str, str] = Field(default_factory=dict)
    #: matcher strings: ``KEY=VALUE``, ``KEY!=VALUE``, ``KEY=~REGEX``, ``KEY!~REGEX``.
    matchers: list[str] = Field(default_factory=list)
    channels: list[str] | None = None
    group_by: list[str] | None = None
    group_wait: timedelta | None = None
    group_interval: timedelta | None = None
    repeat_interval: timedelta | None = None
    send_resolved: bool | None = None
    #: tell this route's channels when a rule cannot be evaluated (no data, or an error).
    #: Off by default: a down source pages once, as ContentstackSourceDown.
    send_nodata: bool | None = None
    send_error: bool | None = None
    escalation: str | None = None
    templates: TemplateOverrides | None = None
    #: keep looking at the following sibling routes after this one matched.
    continue_: bool = Field(default=False, alias="continue")
    routes: list[RouteConfig] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, hide_input_in_errors=True)

    _durations = field_validator("group_wait", "group_interval", "repeat_interval", mode="before")(
        lenient_duration
    )

    @field_validator("match_re")
    @classmethod
    def _check_regex(cls, value: dict[str, str]) -> dict[str, str]:
        for key, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"match_re.{key}: invalid regex: {error}") from None
        return value

    _matchers = field_validator("matchers")(_valid_matchers)


class InhibitRuleConfig(_Model):
    """While an alert matching ``source`` fires, alerts matching ``target`` are muted,
    provided they agree with it on every ``equal`` label."""

    source_matchers: list[str]
    target_matchers: list[str]
    equal: list[str] = Field(default_factory=list)

    _matchers = field_validator("source_matchers", "target_matchers")(_valid_matchers)


class MaintenanceWindowConfig(_Model):
    """A recurring window (local time in ``timezone``) during which matching alerts are muted."""

    name: str
    weekdays: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))  # type: ignore[arg-type]
    start: time
    end: time
    timezone: str = "UTC"
    #: empty: every alert.
    matchers: list[str] = Field(default_factory=list)

    @field_validator("weekdays", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(day).strip().lower()[:3] for day in value]
        return value

    _zone = field_validator("timezone")(_valid_zone)
    _matchers = field_validator("matchers")(_valid_matchers)


class EscalationTier(_Model):
    #: how long after the alert began firing (unacknowledged) this tier is notified.
    after: timedelta = timedelta(0)
    channels: list[str]

    _durations = field_validator("after", mode="before")(lenient_duration)


class EscalationPolicyConfig(_Model):
    name: str
    tiers: list[EscalationTier] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> EscalationPolicyConfig:
        delays = [tier.after for tier in self.tiers]
        if delays != sorted(delays):
            raise ValueError(f"escalation {self.name!r}: tiers must be in increasing 'after'")
        return self


class OutboxConfig(_Model):
    #: first retry delay; doubles per failed attempt up to ``retry_max``.
    retry_initial: timedelta = timedelta(seconds=30)
    retry_max: timedelta = timedelta(minutes=15)
    #: a notification still undelivered this long after it was queued is a dead letter.
    dead_letter_after: timedelta = timedelta(hours=6)
    #: how long a deliverer owns a claimed row; a crashed deliverer's rows are re-claimed after.
    claim_timeout: timedelta = timedelta(minutes=5)
    #: channel that hears about dead letters (and undeliverable meta-notifications).
    dead_letter_channel: str | None = None

    _durations = field_validator(
        "retry_initial", "retry_max", "dead_letter_after", "claim_timeout", mode="before"
    )(lenient_duration)


class NotifyConfig(_Model):
    channels: list[ChannelConfig] = Field(default_factory=list)
    #: the root of the route tree; it matches every alert (its matchers are ignored).
    route: RouteConfig = Field(default_factory=RouteConfig)
    inhibit_rules: list[InhibitRuleConfig] = Field(default_factory=list)
    #: while ``alertname=ContentstackSourceDown`` fires, mute nodata/error alerts and
    #: firing alerts labelled ``source_dependent="true"``.
    inhibit_on_source_down: bool = True
    maintenance: list[MaintenanceWindowConfig] = Field(default_factory=list)
    escalations: list[EscalationPolicyConfig] = Field(default_factory=list)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    #: defaults for every route (a route's own ``templates`` win).
    templates: TemplateOverrides = Field(default_factory=TemplateOverrides)
    #: where Apprise keeps plugin state (e.g. Opsgenie request ids, needed to close
    #: alerts); None: a folder next to the state file.
    apprise_storage_path: Path | None = None
    #: put in every message when an alert has no ``link`` annotation.
    link: str | None = None
    #: how long resolved alerts, sent notifications, dead letters and ended silences
    #: are kept in the state file.
    retention: timedelta = timedelta(days=7)
    #: PagerDuty Events API v2 endpoint for ``pdevents://`` (``?url=`` on a URL wins).
    pagerduty_events_url: str | None = None
    #: the zone of the absolute times in messages ("since 2024-03-04 10:00 CET").
    timezone: str = "UTC"

    _durations = field_validator("retention", mode="before")(lenient_duration)
    _zone = field_validator("timezone")(_valid_zone)

    @model_validator(mode="after")
    def _check_references(self) -> NotifyConfig:
        names = [channel.name for channel in self.channels]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate channel names: {', '.join(duplicates)}")
        known = set(names)
        policies = {policy.name for policy in self.escalations}
        problems: list[str] = []
        route_names: list[str] = []

        def walk(route: RouteConfig, where: str) -> None:
            if route.name:
                route_names.append(route.name)
            for channel in route.channels or []:
                if channel not in known:
                    problems.append(f"{where}: unknown channel {channel!r}")
            if route.escalation and route.escalation not in policies:
                problems.append(f"{where}: unknown escalation policy {route.escalation!r}")
            for index, child in enumerate(route.routes):
                walk(child, f"{where}.routes[{index}]")

        walk(self.route, "route")
        for policy in self.escalations:
            for tier in policy.tiers:
                problems.extend(
                    f"escalation {policy.name!r}: unknown channel {channel!r}"
                    for channel in tier.channels
                    if channel not in known
                )
        dead = self.outbox.dead_letter_channel
        if dead and dead not in known:
            problems.append(f"outbox.dead_letter_channel: unknown channel {dead!r}")
        repeated = sorted({name for name in route_names if route_names.count(name) > 1})
        if repeated:
            problems.append(f"duplicate route names: {', '.join(repeated)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self
