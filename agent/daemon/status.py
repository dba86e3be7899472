"""Current alerts as rows: for ``GET /api/v1/alerts`` and for ``stackwatch status``.

Both read the state store, the one truth both the daemon and an operator's shell can
see: the API answers from the running daemon's store, ``stackwatch status`` asks the
API first (it may run elsewhere) and reads the state file itself when nobody answers.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.daemon import persistence
from agent.notify import storage


def _iso(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")


def alert_rows(conn: sqlite3.Connection, *, include_inactive: bool = False) -> list[dict[str, Any]]:
    instances = persistence.instance_rows(conn, include_inactive=include_inactive)
    try:
        muted = storage.mute_status(conn)
    except sqlite3.OperationalError:  # notify's tables not there yet
        muted = {}
    result = []
    for row in instances:
        annotations = json.loads(row["annotations"])
        suppressed, acked_by, threshold = muted.get(row["fingerprint"], (None, None, None))
        result.append(
            {
                "rule": row["rule"],
                "fingerprint": row["fingerprint"],
                "state": row["state"],
                "labels": json.loads(row["labels"]),
                "value": row["value"],
                "threshold": threshold,
                "since": _iso(row["since"]),
                "pending_since": _iso(row["pending_since"]),
                "firing_since": _iso(row["firing_since"]),
                "evaluated_at": _iso(row["evaluated_at"]),
                "error": row["error"],
                "summary": annotations.get("summary"),
                "suppressed": suppressed,
                "acked_by": acked_by,
            }
        )
    return result


def notified_alert_row(conn: sqlite3.Connection, fingerprint: str) -> dict[str, Any] | None:
    """An alert only notify keeps (a daemon meta-alert, an instance pruned since), in the
    shape of ``alert_rows``."""
    tracked = storage.alert(conn, fingerprint)
    if tracked is None:
        return None
    since = _iso(tracked.active_since or tracked.changed_at)
    return {
        "rule": tracked.rule,
        "fingerprint": fingerprint,
        "state": tracked.state,
        "labels": tracked.labels,
        "value": tracked.value,
        "threshold": tracked.threshold,
        "since": since,
        "pending_since": None,
        "firing_since": since if tracked.active else None,
        "evaluated_at": _iso(tracked.changed_at),
        "error": None,
        "summary": tracked.annotations.get("summary"),
        "suppressed": tracked.suppressed if tracked.active else None,
        "acked_by": storage.acks(conn).get((fingerprint, tracked.episode)),
    }


def read_state_file(path: Path) -> list[dict[str, Any]]:
    """Alerts from a state file, read-only (no migration, no lock held for long)."""
    if not path.exists():
        raise FileNotFoundError(f"state file {path} not found")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    try:
        try:
            return alert_rows(conn)
        except sqlite3.OperationalError as error:  # no daemon_instances: never ran
            raise FileNotFoundError(f"state file {path} has no daemon state: {error}") from None
    finally:
        conn.close()


def daemon_url(path: Path, bind: str, port: int) -> str | None:
    """Where the daemon's API should be: the configured address, or the one it recorded."""
    host = "127.0.0.1" if bind in ("0.0.0.0", "", "::") else bind
    if port:
        return f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return persistence.get_meta(conn, "http_url")
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def fetch_alerts(url: str, timeout: float = 2.0) -> list[dict[str, Any]] | None:
    """Alerts from a running daemon, or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/api/v1/alerts", timeout=timeout) as response:
            body = json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None
    alerts = body.get("alerts") if isinstance(body, dict) else None
    return alerts if isinstance(alerts, list) else None


def format_table(alerts: list[dict[str, Any]]) -> str:
    headers = ("STATE", "RULE", "SINCE", "VALUE", "LABELS", "NOTE")
    table = []
    for alert in alerts:
        labels = ",".join(
            f"{k}={v}"
            for k, v in sorted(alert.get("labels", {}).items())
            if k not in ("alertname", "severity")
        )
        value = alert.get("value")
        note = alert.get("error") or ""
        if alert.get("suppressed"):
            note = f"muted ({alert['suppressed']})"
        if alert.get("acked_by"):
            note = (note + " " if note else "") + f"acked by {alert['acked_by']}"
        table.append(
            (
                str(alert.get("state", "")),
                str(alert.get("rule", "")),
                str(alert.get("since") or ""),
                "" if value is None else f"{value:.6g}",
                labels,
                note,
            )
        )
    if not table:
        return "No alerts."
    widths = [max([len(h)] + [len(r[i]) for r in table]) for i, h in enumerate(headers)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [headers, *table]
    )
