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

import structlog
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from agent.durations import format_duration
from agent.notify.config import TemplateKind, TemplateOverrides
from agent.notify.destination import Destination, Part
from agent.notify.message import AlertSnapshot, Message
from agent.redact import redact

log = structlog.get_logger("agent.notify")

_EMOJI = {"firing": "🔴", "nodata": "⚪", "error": "🟠", "resolved": "✅"}
_HIDDEN_LABELS = {"alertname", "severity"}

DEFAULT_TITLE = (
    "{% if kind == 'ack' %}[ACK] {{ alertnames }} acknowledged by {{ ack_by }}"
    "{% elif kind == 'alert' %}[{{ status|upper }}"
    "{% if status == 'firing' %}:{{ active|length }}{% endif %}] {{ alertnames }}"
    "{% if group_desc %} ({{ group_desc }}){% endif %}{% if repeat %} (reminder){% endif %}"
    "{% else %}{{ text_title }}{% endif %}"
)

DEFAULT_MARKDOWN = """\
{% if kind == 'ack' %}
✋ **Acknowledged by {{ ack_by }}**{% if ack_comment %}: {{ ack_comment }}{% endif %}

{% endif %}
{% if text %}
{{ text }}

{% endif %}
{% for a in alerts %}
{{ a.emoji }} **{{ a.summary }}** · {{ a.STATE }} {{ a.duration_text }} · {{ a.severity }}
{% if a.value is not none %}
> value **{{ a.value }}**{% if a.threshold is not none %} (threshold {{ a.threshold }}){% endif %}\
{% if a.band %}, expected {{ a.band }}{% endif %}

{% endif %}
{% if a.description %}
> {{ a.description }}
{% endif %}
{% if a.shown_labels %}
> {% for k, v in a.shown_labels %}`{{ k }}={{ v }}` {% endfor %}

{% endif %}
{% if a.link or a.runbook %}
> {% if a.link %}[Open]({{ a.link }}){% endif %}{% if a.link and a.runbook %} · {% endif %}\
{% if a.runbook %}[Runbook]({{ a.runbook }}){% endif %}

{% endif %}

{% endfor %}
{% if ongoing %}
_Still active: {{ ongoing|map(attribute='summary')|join(', ') }}_
{% endif %}
"""

DEFAULT_TEXT = """\
{% if kind == 'ack' %}
Acknowledged by {{ ack_by }}{% if ack_comment %}: {{ ack_comment }}{% endif %}

{% endif %}
{% if text %}
{{ text }}

{% endif %}
{% for a in alerts %}
[{{ a.STATE }}] {{ a.summary }} ({{ a.severity }}) {{ a.duration_text }}
{% if a.value is not none %}
  value: {{ a.value }}{% if a.threshold is not none %}  threshold: {{ a.threshold }}{% endif %}\
{% if a.band %}  expected: {{ a.band }}{% endif %}

{% endif %}
{% if a.description %}
  {{ a.description }}
{% endif %}
{% if a.shown_labels %}
  labels: {% for k, v in a.shown_labels %}{{ k }}={{ v }} {% endfor %}

{% endif %}
{% if a.link %}
  link: {{ a.link }}
{% endif %}
{% if a.runbook %}
  runbook: {{ a.runbook }}
{% endif %}
{% endfor %}
{% if ongoing %}

Still active: {{ ongoing|map(attribute='summary')|join(', ') }}
{% endif %}
"""

DEFAULT_HTML = """\
<div style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px">
{% if kind == 'ack' %}
<p><b>Acknowledged by {{ ack_by }}</b>{% if ack_comment %}: {{ ack_comment }}{% endif %}</p>
{% endif %}
{% if text %}<p>{{ text }}</p>{% endif %}
{% for a in alerts %}
<table style="border-collapse:collapse;margin:0 0 16px 0;border-left:4px solid {{ a.colour }}">
<tr><td colspan="2" style="padding:6px 10px;font-size:16px">
<b>{{ a.summary }}</b> &middot; {{ a.STATE }} {{ a.duration_text }} &middot; \
{{ a.severity }}</td></tr>
{% if a.description %}<tr><td colspan="2" style="padding:2px 10px">\
{{ a.description }}</td></tr>{% endif %}
{% if a.value is not none %}<tr><td style="padding:2px 10px;color:#666">Value</td>\
<td style="padding:2px 10px"><b>{{ a.value }}</b></td></tr>{% endif %}
{% if a.threshold is not none %}<tr><td style="padding:2px 10px;color:#666">Threshold</td>\
<td style="padding:2px 10px">{{ a.threshold }}</td></tr>{% endif %}
{% if a.band %}<tr><td style="padding:2px 10px;color:#666">Expected</td>\
<td style="padding:2px 10px">{{ a.band }}</td></tr>{% endif %}
{% for k, v in a.shown_labels %}<tr><td style="padding:2px 10px;color:#666">{{ k }}</td>\
<td style="padding:2px 10px">{{ v }}</td></tr>{% endfor %}
{% if a.link %}<tr><td style="padding:2px 10px;color:#666">Link</td>\
<td style="padding:2px 10px"><a href="{{ a.link }}">{{ a.link }}</a></td></tr>{% endif %}
{% if a.runbook %}<tr><td style="padding:2px 10px;color:#666">Runbook</td>\
<td style="padding:2px 10px"><a href="{{ a.runbook }}">{{ a.runbook }}</a></td></tr>{% endif %}
</table>
{% endfor %}
{% if ongoing %}<p>Still active: {{ ongoing|map(attribute='summary')|join(', ') }}</p>{% endif %}
<p style="color:#999;font-size:12px">Sent by Stackwatch</p>
</div>
"""

DEFAULT_SHORT = (
    "{% if kind == 'ack' %}acknowledged by {{ ack_by }}{% if ack_comment %}: {{ ack_comment }}"
    "{% endif %}{% elif text %}{{ text }}{% elif alerts %}{% set a = alerts[0] %}{{ a.summary }}"
    "{% if a.value is not none %} = {{ a.value }}{% endif %}"
    "{% if a.threshold is not none %} (threshold {{ a.threshold }}){% endif %}"
    "{% if a.band %} (expected {{ a.band }}){% endif %}"
    "{% if alerts|length > 1 %} +{{ alerts|length - 1 }} more{% endif %}{% endif %}"
)

DEFAULTS: dict[str, str] = {
    "title": DEFAULT_TITLE,
    "markdown": DEFAULT_MARKDOWN,
    "html": DEFAULT_HTML,
    "text": DEFAULT_TEXT,
    "short": DEFAULT_SHORT,
}
_APPRISE_FORMAT = {"markdown": "markdown", "html": "html", "text": "text", "short": "text"}


def _number(value: float | None) -> str | None:
    if value is None:
        return None
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


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


class Renderer:
    def __init__(self, default_link: str | None = None) -> None:
        self._default_link = default_link
        options: dict[str, Any] = {"trim_blocks": True, "lstrip_blocks": True}
        self._text_env = SandboxedEnvironment(autoescape=False, **options)
        self._html_env = SandboxedEnvironment(autoescape=True, **options)
        # Overrides are strict: a typo errors (and falls back) rather than rendering blanks.
        self._strict_text = SandboxedEnvironment(
            autoescape=False, undefined=StrictUndefined, **options
        )
        self._strict_html = SandboxedEnvironment(
            autoescape=True, undefined=StrictUndefined, **options
        )
        self._cache: dict[tuple[bool, bool, str], Any] = {}

    # -- context ------------------------------------------------------------------

    def _alert_context(self, alert: AlertSnapshot, now: float) -> dict[str, Any]:
        notes = alert.annotations
        duration = ""
        if alert.active_since is not None:
            end = alert.resolved_at if alert.resolved_at is not None else now
            span = format_duration(timedelta(seconds=max(0.0, end - alert.active_since)))
            duration = f"after {span}" if alert.state == "resolved" else f"for {span}"
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
            "shown_labels": sorted(
                (k, v) for k, v in alert.labels.items() if k not in _HIDDEN_LABELS
            ),
            "annotations": dict(notes),
            "summary": notes.get("summary") or alert.alertname,
            "description": notes.get("description"),
            "value": _number(alert.value),
            "threshold": _number(alert.threshold),
            "band": _band(notes),
            "link": notes.get("link") or self._default_link,
            "runbook": notes.get("runbook") or notes.get("runbook_url"),
            "duration_text": duration,
            "active_since": (
                datetime.fromtimestamp(alert.active_since, UTC).isoformat()
                if alert.active_since
                else None
            ),
        }

    def context(self, message: Message, alerts: list[AlertSnapshot]) -> dict[str, Any]:
        items = [self._alert_context(alert, message.created_at) for alert in alerts]
        ongoing = [self._alert_context(alert, message.created_at) for alert in message.ongoing]
        names = sorted({alert.alertname for alert in alerts})
        return {
            "kind": message.kind,
            "status": "firing"
            if any(a.state != "resolved" for a in [*alerts, *message.ongoing])
            else ("resolved" if message.kind == "alert" else message.status),
            "alerts": items,
            "ongoing": ongoing,
            "active": [item for item in items + ongoing if item["state"] != "resolved"],
            "resolved": [item for item in items if item["state"] == "resolved"],
            "alertnames": ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else ""),
            "group_labels": dict(message.group_labels),
            "group_desc": " ".join(
                f"{k}={v}"
                for k, v in sorted(message.group_labels.items())
                if k != "alertname" and v
            ),
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
        }

    # -- rendering ----------------------------------------------------------------

    def _render(
        self, key: str, context: dict[str, Any], overrides: TemplateOverrides | None, where: str
    ) -> str:
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
            if strict:
                env = self._strict_html if html else self._strict_text
            else:
                env = self._html_env if html else self._text_env
            template = env.from_string(source)
            self._cache[cache_key] = template
        return template

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
        }
        event["payload"] = {
            "summary": f"{title}: {summary}"[:1024],
            "severity": severity,
            "source": alert.labels.get("stack") or alert.labels.get("organization") or "stackwatch",
            "component": alert.labels.get("service") or alert.rule,
            "group": alert.labels.get("stack", ""),
            "class": alert.alertname,
            "timestamp": context["active_since"],
            "custom_details": {k: v for k, v in details.items() if v is not None},
        }
        links = [
            {"href": context[key], "text": text}
            for key, text in (("link", "Open"), ("runbook", "Runbook"))
            if context[key]
        ]
        if links:
            event["links"] = links
        return event
