"""Apprise custom notifications registered by Stackwatch: ``console://``, ``pdevents://``
and ``alertmanager(s)://`` (``agent.notify.alertmanager``).

Importing this module registers them with Apprise (once per process). It also keeps a
daemon's Apprise small (``keep_used_only``).
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterable
from typing import Any

import structlog
from apprise.decorators import notify
from apprise.manager_plugins import NotificationManager
from apprise.utils.parse import parse_list

from agent.notify import alertmanager
from agent.redact import redact, register_secret

log = structlog.get_logger("agent.notify")

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_settings_lock = threading.Lock()
_settings: dict[str, str] = {"pagerduty_events_url": PAGERDUTY_EVENTS_URL}


def set_pagerduty_events_url(url: str | None) -> None:
    """Process-wide default events endpoint (``?url=`` on a pdevents URL overrides it)."""
    with _settings_lock:
        _settings["pagerduty_events_url"] = url or PAGERDUTY_EVENTS_URL


_COLOURS = {
    "failure": "\033[1;31m",  # bold red
    "warning": "\033[1;33m",  # bold yellow
    "success": "\033[1;32m",  # bold green
    "info": "\033[1;36m",  # bold cyan
}
_ICONS = {"failure": "●", "warning": "▲", "success": "✔", "info": "ℹ"}
_RESET = "\033[0m"


@notify(on="console", name="Stackwatch console")
def console_notify(
    body: str, title: str, notify_type: str, meta: dict[str, Any], *args: Any, **kwargs: Any
) -> bool:
    """One clear line per notification on stdout (``console://?color=no`` for plain text)."""
    qsd = meta.get("qsd", {})
    wanted = qsd.get("color", "auto").lower()
    colour = wanted in ("yes", "true", "1", "always") or (
        wanted == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    )
    icon = _ICONS.get(notify_type, "•")
    head = f"{icon} {title}" if title else icon
    if colour:
        head = f"{_COLOURS.get(notify_type, '')}{head}{_RESET}"
    text = " ".join(line.strip() for line in body.splitlines() if line.strip())
    print(f"{head} — {text}" if text else head, flush=True)
    return True


_PD_SEVERITIES = {"critical", "error", "warning", "info"}
_PD_TYPE_SEVERITY = {"failure": "critical", "warning": "warning", "success": "info", "info": "info"}


@notify(on="pdevents", name="PagerDuty Events API v2 (Stackwatch)")
def pagerduty_events_notify(
    body: str, title: str, notify_type: str, meta: dict[str, Any], *args: Any, **kwargs: Any
) -> bool:
    """``pdevents://ROUTING_KEY[?url=EVENTS_URL&source=...&severity=...&timeout=10]``.

    The body may be a JSON event (``event_action``, ``dedup_key``, ``payload`` ...), as
    Stackwatch sends it; any other body becomes the summary of a trigger (or a resolve
    for a success notification), deduplicated on the title.
    """
    routing_key = meta.get("host") or meta.get("user") or ""
    if not routing_key:
        log.warning("pdevents_no_routing_key")
        return False
    register_secret(routing_key)
    qsd = meta.get("qsd", {})
    with _settings_lock:
        url = qsd.get("url") or _settings["pagerduty_events_url"]
    event = _pd_event(body, title, notify_type, qsd)
    event["routing_key"] = routing_key
    try:
        timeout = float(qsd.get("timeout", "10"))
    except ValueError:
        timeout = 10.0
    import httpx  # (here: ``check`` loads this module to register the scheme, and sends nothing)

    try:
        response = httpx.post(url, json=event, timeout=timeout)
    except httpx.HTTPError as error:
        log.warning("pdevents_send_failed", error=redact(f"{type(error).__name__}: {error}"))
        return False
    if response.status_code not in (200, 201, 202):
        log.warning(
            "pdevents_rejected", status=response.status_code, response=redact(response.text[:300])
        )
        return False
    return True


def _pd_event(body: str, title: str, notify_type: str, qsd: dict[str, str]) -> dict[str, Any]:
    parsed: Any = None
    if body.lstrip().startswith("{"):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    if isinstance(parsed, dict) and "event_action" in parsed:
        event = dict(parsed)
    else:
        action = "resolve" if notify_type == "success" else "trigger"
        summary = (title or body or "Stackwatch notification").strip()
        event = {
            "event_action": action,
            "dedup_key": hashlib.sha256(summary.encode()).hexdigest()[:32],
            "payload": {"summary": summary, "custom_details": {"body": body}},
        }
    if event["event_action"] == "trigger":
        payload = event.setdefault("payload", {})
        payload.setdefault("summary", title or "Stackwatch alert")
        payload["summary"] = str(payload["summary"])[:1024]
        payload.setdefault("source", qsd.get("source", "stackwatch"))
        severity = str(payload.get("severity") or qsd.get("severity") or "")
        if severity not in _PD_SEVERITIES:
            severity = _PD_TYPE_SEVERITY.get(notify_type, "error")
        payload["severity"] = severity
    else:
        # PagerDuty ignores payloads on acknowledge/resolve; keep the event small.
        event.pop("payload", None)
    return event


notify(on="alertmanager", name="Prometheus Alertmanager (Stackwatch)")(alertmanager.post_alerts)
notify(on="alertmanagers", name="Prometheus Alertmanager over TLS (Stackwatch)")(
    alertmanager.post_alerts
)


# -- what a daemon keeps of Apprise ----------------------------------------------------------

_kept_lock = threading.Lock()
#: the schemes the channels loaded in this process send with (None: everything is kept)
_used: set[str] | None = None
#: whether plugins were unloaded (and are loaded again before channels are next built)
_shed = False


def keep_used_only() -> None:
    """Apprise imports all of its ~190 plugins on first use, several MB that stay in a
    daemon however few it sends through: from now on, the plugins no channel loaded in
    this process uses are unloaded once channels are built (``built``)."""
    global _used
    with _kept_lock:
        if _used is None:
            _used = set()


def building(schemes: Iterable[str] | None) -> None:
    """Before channels are built (``schemes``: their URLs' schemes, None when some come
    from Apprise config files): plugins unloaded earlier are loaded again if one may be
    needed, as every URL is judged by its plugin."""
    global _shed
    manager = NotificationManager()
    with _kept_lock:
        if not _shed or (schemes is not None and all(s in manager for s in schemes)):
            return
        quiet = logging.getLogger("apprise")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # (it warns of each plugin it holds already)
        try:
            manager.load_modules(force=True)
        finally:
            quiet.setLevel(level)
        _shed = False


def built(schemes: Iterable[str]) -> None:
    """Channels sending with ``schemes`` are built: under ``keep_used_only``, Apprise's
    own plugins for other schemes (of any channel loaded in this process) are unloaded
    with their modules."""
    global _shed
    manager = NotificationManager()
    with _kept_lock:
        if _used is None:
            return
        _used.update(s.lower() for s in schemes)
        unused: dict[str, list[str]] = {}  # package of plugins → a scheme of each
        kept: set[str] = set()
        for plugin in list(manager.plugins()):
            package = ".".join(plugin.__module__.split(".")[:3])
            if not package.startswith("apprise.plugins."):
                continue  # (ours, and any an operator added)
            names = parse_list(plugin.secure_protocol, plugin.protocol)
            if _used.intersection(names) or not names:
                kept.add(package)
            else:
                unused.setdefault(package, []).append(names[0])
        plugins_package = sys.modules["apprise.plugins"]
        for package, names in unused.items():
            if package in kept:
                continue
            manager.remove(*names)
            for module in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
                del sys.modules[module]
            vars(plugins_package).pop(package.rsplit(".", 1)[1], None)
            _shed = True
    gc.collect()  # (a module and its classes are cyclic garbage)
