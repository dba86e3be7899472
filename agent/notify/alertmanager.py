"""Alertmanager as a destination: ``alertmanager://host:port`` (``alertmanagers://`` for TLS).

``alertmanager://[user:password@]host[:port][/prefix][?resend=1m&timeout=10&verify=yes]``
POSTs to ``<prefix>/api/v2/alerts``. An Apprise custom notification (``post_alerts``,
registered by ``agent.notify.plugins``), so the URL sits in a channel like any other.
A message becomes the list of its alerts: labels (the stack by name), annotations
(summary, value, links, the ack command), ``startsAt`` (when the episode began),
``generatorURL`` (the alert's page) and, once resolved, ``endsAt``. A firing alert is
posted without ``endsAt``: Alertmanager keeps it for its ``resolve_timeout`` (5m by
default), so ``repost.Reposter`` posts it again every ``resend`` (default 1m) while it
fires, as Prometheus does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from agent.durations import parse_duration
from agent.notify.destination import Destination, Part
from agent.notify.links import Links
from agent.notify.message import AlertSnapshot, Message, number_text
from agent.redact import redact, register_secret

log = structlog.get_logger("agent.notify")

SCHEMES = frozenset({"alertmanager", "alertmanagers"})
#: how often a firing alert is posted again: well below Alertmanager's default
#: ``resolve_timeout`` of 5m, as Prometheus's default ``resend_delay`` is.
DEFAULT_RESEND = 60.0
#: how long a test alert stays in Alertmanager.
_TEST_ALERT_SECONDS = 300.0


def resend_interval(destination: Destination) -> float:
    """The URL's ``resend`` (``30s``, ``2m`` or seconds), at least one second."""
    query = destination.url.partition("?")[2]
    for item in query.split("&"):
        key, _, value = item.partition("=")
        if key == "resend" and value:
            try:
                seconds = float(value)
            except ValueError:
                try:
                    seconds = parse_duration(value).total_seconds()
                except ValueError:
                    return DEFAULT_RESEND
            return max(1.0, seconds)
    return DEFAULT_RESEND


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def label_name(name: str) -> str:
    """Alertmanager takes ``[a-zA-Z_][a-zA-Z0-9_]*``; a rule's label may be freer."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return f"_{cleaned}" if not cleaned or cleaned[0].isdigit() else cleaned


def am_alert(alert: AlertSnapshot, links: Links, now: float) -> dict[str, Any]:
    """One alert as Alertmanager's API takes it."""
    labels = {label_name(k): v for k, v in alert.named_labels().items() if v}
    notes = {k: v for k, v in alert.annotations.items() if v}
    page, console = links.alert_page(alert.fingerprint), links.stack_page(alert)
    extra = {
        "state": alert.state,
        "value": number_text(alert.value),
        "threshold": number_text(alert.threshold),
        "stackwatch_fingerprint": alert.fingerprint,
        "stackwatch_url": page,
        "contentstack_url": console,
        "ack": Links.ack_command(alert.fingerprint) if alert.state != "resolved" else None,
    }
    notes.update({k: v for k, v in extra.items() if v is not None})
    item: dict[str, Any] = {
        "labels": labels,
        "annotations": notes,
        "startsAt": _rfc3339(alert.active_since if alert.active_since is not None else now),
    }
    generator = page or console or notes.get("link")
    if generator:
        item["generatorURL"] = generator
    if alert.state == "resolved":
        item["endsAt"] = _rfc3339(alert.resolved_at if alert.resolved_at is not None else now)
    return item


def alerts_part(
    destination: Destination, alerts: Sequence[AlertSnapshot], links: Links, now: float
) -> Part:
    body = json.dumps([am_alert(alert, links, now) for alert in alerts], sort_keys=True)
    active = any(alert.state != "resolved" for alert in alerts)
    return Part(destination.id, "", body, "text", "failure" if active else "success", {})


def message_part(message: Message, destination: Destination, links: Links) -> Part | None:
    """What ``message`` posts to an Alertmanager: its alerts, or for a test one alert
    that ends by itself; acks and notices have no Alertmanager meaning (None)."""
    now = message.created_at
    if message.kind == "alert" and message.alerts:
        return alerts_part(destination, message.alerts, links, now)
    if message.kind != "test":
        return None
    test = {
        "labels": {"alertname": "StackwatchTest", "severity": "info"},
        "annotations": {"summary": message.text or "Stackwatch test notification"},
        "startsAt": _rfc3339(now),
        "endsAt": _rfc3339(now + _TEST_ALERT_SECONDS),
    }
    return Part(destination.id, "", json.dumps([test]), "text", "info", {})


def _free_text_alert(body: str, title: str, notify_type: str) -> list[dict[str, Any]]:
    """A body that is not Stackwatch's JSON (Apprise's own CLI, a config file test)."""
    severity = {"failure": "critical", "warning": "warning"}.get(notify_type, "info")
    summary = (title or body or "Stackwatch notification").strip()
    notes = {"summary": summary[:1024], **({"description": body} if title and body else {})}
    return [{"labels": {"alertname": "Stackwatch", "severity": severity}, "annotations": notes}]


def post_alerts(
    body: str, title: str, notify_type: str, meta: dict[str, Any], *args: Any, **kwargs: Any
) -> bool:
    host = meta.get("host") or ""
    if not host:
        log.warning("alertmanager_no_host")
        return False
    scheme = "https" if meta.get("schema") == "alertmanagers" else "http"
    port = f":{meta['port']}" if meta.get("port") else ""
    prefix = (meta.get("fullpath") or "").rstrip("/")
    url = f"{scheme}://{host}{port}{prefix}/api/v2/alerts"
    try:
        alerts = json.loads(body) if body.lstrip().startswith("[") else None
    except ValueError:
        alerts = None
    if not isinstance(alerts, list):
        alerts = _free_text_alert(body, title, notify_type)
    auth = None
    if meta.get("user"):
        password = meta.get("password") or ""
        if password:
            register_secret(password)
        auth = (meta["user"], password)
    qsd = meta.get("qsd", {})
    try:
        timeout = float(qsd.get("timeout", "10"))
    except ValueError:
        timeout = 10.0
    import httpx  # (here: ``check`` loads this module to register the scheme, and sends nothing)

    try:
        response = httpx.post(
            url, json=alerts, auth=auth, timeout=timeout, verify=bool(meta.get("verify", True))
        )
    except httpx.HTTPError as error:
        log.warning("alertmanager_send_failed", error=redact(f"{type(error).__name__}: {error}"))
        return False
    if not 200 <= response.status_code < 300:
        log.warning(
            "alertmanager_rejected",
            status=response.status_code,
            response=redact(response.text[:300]),
        )
        return False
    return True
