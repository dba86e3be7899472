"""Rendering messages per destination kind, with Jinja2 overrides per route.

Defaults: Markdown for chat, HTML for email (Apprise adds the plain-text part),
plain text for webhooks, one short line for SMS, console and incident summaries.
Route templates run in a sandboxed Jinja2 environment; if one fails, the default
is used and the failure logged, so a template typo never loses an alert.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from agent.durations import format_duration
from agent.notify import alertmanager
from agent.notify.config import TemplateKind, TemplateOverrides
from agent.notify.defaults import DEFAULTS
from agent.notify.destination import Destination, Part
from agent.notify.links import Links
from agent.notify.message import AlertSnapshot, Message, number_text
from agent.redact import redact

log = structlog.get_logger("agent.notify")

_EMOJI = {"firing": "🔴", "nodata": "⚪", "error": "🟠", "resolved": "✅"}
_HIDDEN_LABELS = {"alertname", "severity"}

_APPRISE_FORMAT = {"markdown": "markdown", "html": "html", "text": "text", "short": "text"}


def _band(annotations: dict[str, str]) -> str | None:
    for key in ("band", "expected_band", "expected"):
        if annotations.get(key):
            return annotations[key]
    for low, high in (("band_lower", "band_upper"), ("expected_lower", "expected_upper")):
        if annotations.get(low) and annotations.get(high):
            return f"{annotations[low]} – {annotations[high]}"
    return None


def _notify_type(message: Message, alerts: list[AlertSnapshot]) -> str:
    if message.kind in ("ack", "test", "remediation"):
        return "info"
    if message.kind == "deadletter":
        return "warning"
    active = [a for a in alerts if a.state != "resolved"]
    if not active:
        return "success"
    return "failure" if any(a.severity == "critical" for a in active) else "warning"


def absolute_time(epoch: float, zone: ZoneInfo) -> str:
    """``2024-03-04 10:00:00 CET (UTC+01:00)``; in UTC just ``... UTC``."""
    moment = datetime.fromtimestamp(epoch, zone)
    text = f"{moment:%Y-%m-%d %H:%M:%S} {moment.tzname()}"
    return text if moment.tzname() == "UTC" else f"{text} (UTC{moment.isoformat()[-6:]})"


def _group_desc(labels: dict[str, str], stack_names: dict[str, str]) -> str:
    """The group's labels for a title, the stack by name (group labels hold its API key
    unless the route groups by ``stack_name``)."""
    shown = {k: v for k, v in labels.items() if k not in ("alertname", "stack_name") and v}
    if labels.get("stack_name"):
        shown["stack"] = labels["stack_name"]
    elif shown.get("stack") in stack_names:
        shown["stack"] = stack_names[shown["stack"]]
    return " ".join(f"{k}={v}" for k, v in sorted(shown.items()))


class Renderer:
    def __init__(
        self, default_link: str | None = None, links: Links | None = None, timezone: str = "UTC"
    ) -> None:
        self._default_link = default_link
        self.links = links or Links()
        self._zone = ZoneInfo(timezone)
        #: (html, strict) → its sandboxed environment, made at the first rendering (Jinja2
        #: takes a tenth of a second to import: not on the daemon's way to ready)
        self._environments: dict[tuple[bool, bool], Any] = {}
        self._cache: dict[tuple[bool, bool, str], Any] = {}

    # -- context ------------------------------------------------------------------

    def _alert_context(
        self, alert: AlertSnapshot, now: float, kind: str = "alert"
    ) -> dict[str, Any]:
        notes = alert.annotations
        duration = ""
        if alert.active_since is not None:
            end = alert.resolved_at if alert.resolved_at is not None else now
            span = format_duration(timedelta(seconds=max(0.0, end - alert.active_since)))
            duration = f"after {span}" if alert.state == "resolved" else f"for {span}"
        link = notes.get("link") or self._default_link
        runbook = notes.get("runbook") or notes.get("runbook_url")
        page = self.links.alert_page(alert.fingerprint)
        console = self.links.stack_page(alert)
        named = alert.named_labels()
        return {
            "fingerprint": alert.fingerprint,
            "rule": alert.rule,
            "alertname": alert.alertname,
            "severity": alert.severity,
            "state": alert.state,
            "STATE": alert.state.upper(),
            "emoji": _EMOJI.get(alert.state, "•"),
            "colour": {"resolved": "#2eb886", "firing": "#d00000"}.get(alert.state, "#e8a317"),
            "labels": dict(alert.labels),
            "stack": named.get("stack"),
            "shown_labels": sorted((k, v) for k, v in named.items() if k not in _HIDDEN_LABELS),
            "annotations": dict(notes),
            "summary": notes.get("summary") or alert.alertname,
            "description": notes.get("description"),
            "value": number_text(alert.value),
            "threshold": number_text(alert.threshold),
            "band": _band(notes),
            "link": link,
            "runbook": runbook,
            "page": page,
            "console": console,
            "links": [
                (text, href)
                for text, href in (
                    ("Alert", page),
                    ("Contentstack", console),
                    ("Link", link),
                    ("Runbook", runbook),
                )
                if href
            ],
            "ack": (
                Links.ack_command(alert.fingerprint)
                if kind == "alert" and alert.state != "resolved"
                else None
            ),
            "started": (
                absolute_time(alert.active_since, self._zone) if alert.active_since else None
            ),
            "started_word": "started" if alert.state == "resolved" else "since",
            "duration_text": duration,
            "active_since": (
                datetime.fromtimestamp(alert.active_since, UTC).isoformat()
                if alert.active_since
                else None
            ),
        }

    def context(self, message: Message, alerts: list[AlertSnapshot]) -> dict[str, Any]:
        items = [self._alert_context(alert, message.created_at, message.kind) for alert in alerts]
        ongoing = [self._alert_context(alert, message.created_at) for alert in message.ongoing]
        names = sorted({alert.alertname for alert in alerts})
        # group labels carry a stack's API key: show the name its alerts know it by
        stack_names = {
            alert.labels["stack"]: alert.labels["stack_name"]
            for alert in [*alerts, *message.ongoing]
            if alert.labels.get("stack") and alert.labels.get("stack_name")
        }
        return {
            "kind": message.kind,
            "status": _status(message, [*alerts, *message.ongoing]),
            "alerts": items,
            "ongoing": ongoing,
            "active": [item for item in items + ongoing if item["state"] != "resolved"],
            "resolved": [item for item in items if item["state"] == "resolved"],
            "alertnames": ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else ""),
            "group_labels": dict(message.group_labels),
            "group_desc": _group_desc(message.group_labels, stack_names),
            "repeat": message.repeat,
            "ack_by": message.ack_by,
            "ack_comment": message.ack_comment,
            "text": message.text,
            "text_title": {
                "test": "Stackwatch test notification",
                "deadletter": "Stackwatch: notification undeliverable",
                "remediation": f"Stackwatch remediation: {', '.join(names[:3])}",
            }.get(message.kind, "Stackwatch"),
            "link": self._default_link,
            "now": datetime.fromtimestamp(message.created_at, UTC).isoformat(),
            "now_local": absolute_time(message.created_at, self._zone),
        }

    # -- rendering ----------------------------------------------------------------

    def _render(
        self, key: str, context: dict[str, Any], overrides: TemplateOverrides | None, where: str
    ) -> str:
        from jinja2 import TemplateError

        html = key == "html"
        source = getattr(overrides, key, None) if overrides else None
        if source:
            try:
                return self._template(source, html, strict=True).render(context).strip()
            except TemplateError as error:
                log.error(
                    "template_error_fallback", template=key, route=where, error=redact(str(error))
                )
            except Exception as error:  # sandbox violations, bad filters on odd values
                log.error(
                    "template_error_fallback",
                    template=key,
                    route=where,
                    error=redact(f"{type(error).__name__}: {error}"),
                )
        return self._template(DEFAULTS[key], html, strict=False).render(context).strip()

    def _template(self, source: str, html: bool, *, strict: bool) -> Any:
        cache_key = (html, strict, source)
        template = self._cache.get(cache_key)
        if template is None:
            template = self._environment(html, strict).from_string(source)
            self._cache[cache_key] = template
        return template

    def _environment(self, html: bool, strict: bool) -> Any:
        environment = self._environments.get((html, strict))
        if environment is None:
            from jinja2 import StrictUndefined, Undefined
            from jinja2.sandbox import SandboxedEnvironment

            environment = SandboxedEnvironment(
                autoescape=html,
                # overrides are strict: a typo errors (and falls back) rather than rendering
                # blanks
                undefined=StrictUndefined if strict else Undefined,
                trim_blocks=True,
                lstrip_blocks=True,
            )
            self._environments[(html, strict)] = environment
        return environment

    def render(
        self,
        message: Message,
        kind: TemplateKind,
        overrides: TemplateOverrides | None = None,
        alerts: list[AlertSnapshot] | None = None,
    ) -> tuple[str, str]:
        """(title, body) of ``message`` (or of the given subset of its alerts)."""
        chosen = message.alerts if alerts is None else alerts
        context = self.context(message, chosen)
        where = message.route_id or "-"
        title = self._render("title", context, overrides, where)
        context["title"] = title
        body = self._render(kind, context, overrides, where)
        return title, body

    def parts(
        self, message: Message, destination: Destination, overrides: TemplateOverrides | None
    ) -> list[Part]:
        """The sends ``message`` needs on ``destination``."""
        if destination.scheme in alertmanager.SCHEMES:
            part = alertmanager.message_part(message, destination, self.links)
            return [part] if part else []
        if destination.incident and message.kind in ("alert", "ack") and message.alerts:
            return [
                part
                for alert in message.alerts
                if (part := self._incident_part(message, alert, destination, overrides))
            ]
        title, body = self.render(message, destination.kind, overrides)
        return [
            Part(
                id=destination.id,
                title=title,
                body=body,
                body_format=_APPRISE_FORMAT[destination.kind],
                notify_type=_notify_type(message, message.alerts),
                params={},
            )
        ]

    def _incident_part(
        self,
        message: Message,
        alert: AlertSnapshot,
        destination: Destination,
        overrides: TemplateOverrides | None,
    ) -> Part | None:
        """One event per alert keyed by fingerprint, so acknowledge/resolve find it."""
        title, summary = self.render(message, "short", overrides, alerts=[alert])
        part_id = f"{destination.id}:{alert.fingerprint}"
        notify_type = _notify_type(message, [alert])
        ack = message.kind == "ack"
        if destination.scheme == "pdevents":
            action = (
                "acknowledge" if ack else ("resolve" if alert.state == "resolved" else "trigger")
            )
            body = json.dumps(self._pd_event(message, alert, action, title, summary))
            return Part(part_id, title, body, "text", notify_type, {})
        if destination.scheme == "opsgenie":
            params = {"alias": alert.fingerprint, "action": "acknowledge" if ack else "map"}
            if not ack and alert.state != "resolved":
                notify_type = "failure" if alert.severity == "critical" else "warning"
            return Part(part_id, title, summary, "text", notify_type, params)
        # Apprise's pagerduty:// plugin cannot acknowledge; the ack still reaches chat.
        if ack:
            return None
        params = {"dedup": alert.fingerprint, "action": "map"}
        return Part(part_id, title, summary, "text", notify_type, params)

    def _pd_event(
        self, message: Message, alert: AlertSnapshot, action: str, title: str, summary: str
    ) -> dict[str, Any]:
        event: dict[str, Any] = {"event_action": action, "dedup_key": alert.fingerprint}
        if action != "trigger":
            return event
        context = self._alert_context(alert, message.created_at)
        severity = alert.severity if alert.severity in ("critical", "warning", "info") else "error"
        if alert.state == "error":
            severity = "error"
        details: dict[str, Any] = {
            "state": alert.state,
            "labels": alert.labels,
            "value": context["value"],
            "threshold": context["threshold"],
            "expected": context["band"],
            "active_since": context["active_since"],
            "description": context["description"],
            "ack": Links.ack_command(alert.fingerprint),
        }
        event["payload"] = {
            "summary": f"{title}: {summary}"[:1024],
            "severity": severity,
            "source": context["stack"] or alert.labels.get("organization") or "stackwatch",
            "component": alert.labels.get("service") or alert.rule,
            "group": context["stack"] or "",
            "class": alert.alertname,
            "timestamp": context["active_since"],
            "custom_details": {k: v for k, v in details.items() if v is not None},
        }
        if context["links"]:
            event["links"] = [{"href": href, "text": text} for text, href in context["links"]]
        return event


def _status(message: Message, alerts: list[AlertSnapshot]) -> str:
    """The title's word: firing wins; a message of only unevaluable alerts says so
    ("error", "no data") instead of claiming they fire."""
    states = {alert.state for alert in alerts} - {"resolved"}
    for state, word in (("firing", "firing"), ("error", "error"), ("nodata", "no data")):
        if state in states:
            return word
    return "resolved" if message.kind == "alert" else message.status
