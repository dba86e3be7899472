"""SIGKILL of the real daemon at each point of an incident, then a restart.

One incident, five daemon processes sharing one state file: each is killed with -9 at the
next point of the incident's way to the receiver, found by reading the state database
(read-only) and the receiver, never by a hook in the daemon:

1. pending (``for`` not yet over);
2. just fired: the transition committed, its group still in ``group_wait``, nothing queued;
3. in the outbox: queued, one attempt failed (the receiver answered 500);
4. mid-delivery: the receiver got the body and holds its answer, so the row is never
   marked sent;
5. the last one runs on, and the incident ends.

Then: the firing notice arrived, twice only because of the delivery cut in flight (and
both times with the same idempotency key, the outbox row's), and the resolution once.
A remediation due at a SIGKILL is ``test_remediation.py``. Time runs 60x for the daemon
and the simulator alike.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .support import DaemonProcess, WebhookReceiver, ratio_rule, wait_until, write_config
from .test_process import SPEED, _simulator, _website_spike

pytestmark = pytest.mark.timeout(300)

RULE = "cdn-5xx"
FIRING, RESOLVED = f"[FIRING:1] {RULE}", f"[RESOLVED] {RULE}"
OUTBOX = """
[notify.outbox]
retry_initial = "30s"
retry_max = "1m"
claim_timeout = "1m"
"""


def _query(db: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    """Read the daemon's state without taking part in it."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _alert_state(db: Path) -> str | None:
    if not db.exists():
        return None
    try:
        rows = _query(db, "SELECT state FROM notify_alerts WHERE rule = ?", RULE)
    except sqlite3.OperationalError:  # not migrated yet
        return None
    return rows[0]["state"] if rows else None


def _alert_rows(db: Path) -> list[sqlite3.Row]:
    return _query(db, "SELECT * FROM notify_outbox WHERE kind = 'alert' ORDER BY id")


def _run(config: Path, until: Any, what: str) -> DaemonProcess:
    """Start a daemon, wait for ``until()``, SIGKILL it."""
    daemon = DaemonProcess(config)
    try:
        wait_until(lambda: daemon.check_alive() or until(), 90, what)
    finally:
        daemon.kill()
    return daemon


def test_sigkill_at_each_point_of_an_incident(tmp_path: Path) -> None:
    origin = datetime.now(UTC)
    db = tmp_path / "state" / "stackwatch.db"
    with _simulator(origin) as sim, WebhookReceiver() as hook:
        config = write_config(
            tmp_path,
            simulator_url=sim.url,
            hook_port=hook.port,
            origin=origin,
            speed=SPEED,
            group_wait="5m",
            extra=OUTBOX,
        )
        (tmp_path / "rules" / "errors.toml").write_text(
            ratio_rule(RULE, stack="Website", above=0.05, clear_below=0.02, for_="2m")
        )

        # 1. pending
        first = DaemonProcess(config)
        try:
            wait_until(lambda: first.get("/readyz")[0] == 200, 60, "/readyz 200")
            spike = _website_spike(sim)
            wait_until(lambda: _alert_state(db) == "pending", 60, "pending committed")
        finally:
            first.kill()

        # 2. just fired: committed, its group waiting, nothing queued
        _run(config, lambda: _alert_state(db) == "firing", "firing committed")
        assert _alert_rows(db) == []
        [group] = _query(db, "SELECT * FROM notify_groups")
        assert group["last_flush_at"] is None

        # 3. in the outbox, one attempt failed
        hook.mode = "fail"
        _run(config, lambda: hook.failed >= 1, "a failed attempt")
        [row] = _alert_rows(db)
        assert (row["status"], row["delivered_at"]) == ("pending", None)
        assert hook.posts == []

        # 4. mid-delivery: the receiver holds the body's answer while the daemon dies
        hook.mode = "hold"
        _run(config, hook.holding.is_set, "a delivery held by the receiver")
        [row] = _alert_rows(db)
        assert row["status"] == "pending" and row["claimed_by"] is not None
        assert len(hook.matching(FIRING)) == 1
        hook.mode = "ok"
        hook.release.set()

        # 5. runs on: the cut delivery is repeated once its claim expires; the incident ends
        last = DaemonProcess(config)
        try:
            wait_until(lambda: len(hook.matching(FIRING)) >= 2, 60, "firing re-sent")
            sim.end_incident(spike)
            wait_until(lambda: hook.matching(RESOLVED), 120, "resolved post")
            time.sleep(0.5)  # a few more beats: nothing else may arrive
            assert last.stop() == 0
        finally:
            if last.proc.poll() is None:
                last.kill()

    firing_keys = hook.keys_of(FIRING)
    resolved_keys = hook.keys_of(RESOLVED)
    rows = _alert_rows(db)
    assert [r["status"] for r in rows] == ["delivered", "delivered"]
    assert firing_keys == [rows[0]["idempotency_key"]] * 2  # the one cut in flight, again
    assert resolved_keys == [rows[1]["idempotency_key"]]
    assert len(hook.posts) == 3
