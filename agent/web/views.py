"""What each page shows, as plain values for its template, read through the daemon's
``Operations`` (alerts, samples, silences, audit) and its pipeline (sources, rate limit).

Filters come from the query string, so every view is a link and works without JavaScript.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agent.notify.silence import MaintenanceWindow
from agent.remediate.storage import AuditFilter
from agent.web.chart import build_chart, number

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.daemon.operations import Operations
    from agent.wiring import Pipeline

Query = Mapping[str, list[str]]

#: the states an operator looks at first come first.
STATES = ("firing", "error", "nodata", "pending", "resolved", "inactive")
GROUPINGS = {"state": "state", "stack": "stack", "alertname": "alert", "severity": "severity"}
#: the newest evaluations an alert's chart draws (a day of them at one a minute is too many)
CHART_POINTS = 360
#: the source-down meta-alert's state, in the words of the health page.
SOURCE_STATUS = {"inactive": "up", "resolved": "up", "pending": "failing", "firing": "down"}
#: labels shown in their own columns, or carrying the API key the stack name stands for.
_SHOWN_APART = {"alertname", "severity", "stack", "stack_name"}


def stack_name(labels: Mapping[str, str], settings: Settings) -> str:
    """The configured name of the alert's stack (never its API key), or "" for none."""
    if labels.get("stack_name"):
        return labels["stack_name"]
    key = labels.get("stack")
    names = {api_key: name for name, api_key in settings.contentstack.stacks.items()}
    return names.get(key, "(unnamed stack)") if key else ""


def _one(query: Query, name: str) -> str:
    values = query.get(name) or [""]
    return values[-1].strip()


def _row(alert: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    labels = alert["labels"]
    return {
        **alert,
        "alertname": labels.get("alertname", alert["rule"]),
        "severity": labels.get("severity", "warning"),
        "stack_name": stack_name(labels, settings),
        "shown": number(alert.get("value")),
        "threshold_shown": number(alert.get("threshold")),
        "extra_labels": {k: v for k, v in sorted(labels.items()) if k not in _SHOWN_APART},
    }


def label_filter(text: str) -> tuple[str, str] | None:
    key, sep, value = text.partition("=")
    return (key.strip(), value.strip()) if sep and key.strip() else None


def alerts_view(ops: Operations, settings: Settings, query: Query) -> dict[str, Any]:
    states = [s for s in query.get("state", []) if s in STATES]
    stack = _one(query, "stack")
    label = _one(query, "label")
    wanted_label = label_filter(label)
    group = _one(query, "group") or "state"
    group = group if group in GROUPINGS else "state"
    rows = [_row(a, settings) for a in ops.alerts(include_inactive=bool(states))]
    every_stack = sorted({r["stack_name"] for r in rows if r["stack_name"]})
    shown = [
        r
        for r in rows
        if (not states or r["state"] in states)
        and (not stack or r["stack_name"] == stack)
        and (wanted_label is None or r["labels"].get(wanted_label[0]) == wanted_label[1])
    ]
    key = {"state": "state", "stack": "stack_name", "alertname": "alertname"}.get(group, group)
    groups: dict[str, list[dict[str, Any]]] = {}
    order = STATES if group == "state" else sorted({r[key] for r in shown})
    for name in order:
        members = [r for r in shown if r[key] == name]
        if members:
            groups[name or "(none)"] = members
    return {
        "groups": groups,
        "total": len(rows),
        "shown_count": len(shown),
        "states": STATES,
        "chosen_states": states,
        "stacks": every_stack,
        "stack": stack,
        "label": label,
        "label_invalid": bool(label) and wanted_label is None,
        "group": group,
        "groupings": GROUPINGS,
    }


def transitions(samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """State changes between consecutive stored evaluations, newest first."""
    changes = []
    for before, after in itertools.pairwise(samples):
        if before["state"] != after["state"]:
            changes.append(
                {"at": after["at"], "previous": before["state"], "state": after["state"]}
                | {"value": number(after.get("value"))}
            )
    return changes[::-1]


def silence_matchers(alert: Mapping[str, Any]) -> str:
    """What a silence of just this alert would match: its name and its dimensions, the
    stack by its name where it has one."""
    labels = alert["labels"]
    skip = {"alertname", "severity", "stack" if "stack_name" in labels else "stack_name"}
    keys = ["alertname", *sorted(k for k in labels if k not in skip)]
    return "\n".join(f"{k}={labels[k]}" for k in keys if k in labels)


def alert_view(ops: Operations, settings: Settings, fingerprint: str) -> dict[str, Any] | None:
    alert = ops.alert(fingerprint)
    if alert is None:
        return None
    samples = ops.samples(fingerprint)
    latest_band = next((s for s in reversed(samples) if "lower" in s), None)
    actions = ops.remediation_actions(AuditFilter(fingerprint=fingerprint, limit=50))
    return {
        "alert": _row(alert, settings),
        "labels": sorted(alert["labels"].items()),
        "chart": build_chart(samples[-CHART_POINTS:], alert.get("threshold")),
        "samples": len(samples),
        "drawn": min(len(samples), CHART_POINTS),
        "band": latest_band,
        "transitions": transitions(samples),
        "notifications": ops.notifications(fingerprint),
        "actions": [record.to_json() for record in actions],
        "audit": ops.audit_trail(50, target=fingerprint),
        "matchers": silence_matchers(alert),
        "active": alert["state"] in ("firing", "nodata", "error"),
    }


def silences_view(ops: Operations, query: Query) -> dict[str, Any]:
    now = ops.clock.now()
    show_all = _one(query, "all") in ("1", "true", "yes")
    silences = ops.silences(include_expired=show_all)
    return {
        "silences": [{"silence": s, "status": s.status(now)} for s in silences],
        "all": show_all,
    }


def maintenance_view(ops: Operations, settings: Settings) -> dict[str, Any]:
    now = ops.clock.now()
    muted: dict[str, list[str]] = {}
    for alert in ops.alerts():
        reason = alert.get("suppressed") or ""
        if reason.startswith("maintenance:"):
            muted.setdefault(reason.removeprefix("maintenance:"), []).append(alert["rule"])
    windows = []
    for config in settings.notify.maintenance:
        windows.append(
            {
                "config": config,
                "active": MaintenanceWindow(config).active_at(now),
                "muting": sorted(muted.get(config.name, [])),
            }
        )
    return {"windows": windows}


def audit_view(ops: Operations, query: Query) -> dict[str, Any]:
    limit_text = _one(query, "limit") or "100"
    limit = int(limit_text) if limit_text.isdigit() and 1 <= int(limit_text) <= 1000 else 100
    actions = ops.remediation_actions(AuditFilter(limit=limit))
    return {
        "audit": ops.audit_trail(limit),
        "actions": [record.to_json() for record in actions],
        "limit": limit,
    }


def health_view(pipeline: Pipeline, healthy: bool, ready: bool) -> dict[str, Any]:
    http = pipeline.clients.http
    source = pipeline.engine.source_state
    return {
        "healthy": healthy,
        "ready": ready,
        "endpoints": http.health.endpoints(),
        "headroom": http.limiter.headroom(),
        "source": source.state,
        "source_status": SOURCE_STATUS.get(source.state.state.value, source.state.state.value),
    }
