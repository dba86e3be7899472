"""The outbox's rows and dead letters in the state store (tables: ``schema``): queue,
claim with a lease, record delivery, retry, bury; and what an alert's page lists.

The rest of notify's SQL is in ``storage``; the same rules hold (the caller's
connection, plain values in, rows out, claims as conditional UPDATEs).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from agent.store import lease

Row = sqlite3.Row
Conn = sqlite3.Connection


def enqueue(
    conn: Conn,
    key: str,
    channel: str,
    kind: str,
    payload: str,
    created_at: float,
    subjects: Iterable[str] = (),
) -> bool:
    """Queue a notification once per idempotency ``key``; True when it is new.
    ``subjects``: the fingerprints of the alerts it is about (see ``claim``)."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO notify_outbox (idempotency_key, channel, kind, payload, "
        "created_at, next_attempt_at, subjects) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (key, channel, kind, payload, created_at, created_at, " ".join(sorted(set(subjects)))),
    )
    return cursor.rowcount == 1


def claim(conn: Conn, worker: str, now: float, until: float, limit: int) -> list[Row]:
    """Lease up to ``limit`` due rows to ``worker`` until ``until``. Compare-and-swap: a
    row another deliverer holds an unexpired lease on is never taken.

    Per channel and alert, rows go out in the order they were queued: a row waits while
    an older pending row of its channel about one of its alerts is backing off, leased,
    or taken in this same claim (a resolution never overtakes its firing notice)."""
    pending = conn.execute(
        "SELECT id, channel, subjects, next_attempt_at, claimed_until FROM notify_outbox "
        "WHERE status = 'pending' ORDER BY id"
    ).fetchall()
    waiting: set[tuple[str, str]] = set()
    candidates: list[int] = []
    for row in pending:
        subjects = {(row["channel"], fp) for fp in row["subjects"].split()}
        free = row["claimed_until"] is None or row["claimed_until"] < now
        if row["next_attempt_at"] <= now and free and not subjects & waiting:
            candidates.append(row["id"])
            if len(candidates) == limit:
                break
        waiting |= subjects
    return lease.claim(conn, "notify_outbox", candidates, worker, now, until)


def delivered_parts(conn: Conn, row_id: int, worker: str, parts: Iterable[str]) -> None:
    """Persist a row's progress at once: a crash must not re-send these parts."""
    conn.execute(
        "UPDATE notify_outbox SET delivered_parts = ? WHERE id = ? AND claimed_by = ?",
        (json.dumps(sorted(parts)), row_id, worker),
    )


def delivered(conn: Conn, row_id: int, worker: str, now: float) -> None:
    conn.execute(
        "UPDATE notify_outbox SET status = 'delivered', delivered_at = ?, "
        "attempts = attempts + 1, claimed_by = NULL, claimed_until = NULL, "
        "last_error = NULL WHERE id = ? AND claimed_by = ?",
        (now, row_id, worker),
    )


def retry_later(
    conn: Conn, row_id: int, worker: str, attempts: int, next_at: float, error: str
) -> None:
    conn.execute(
        "UPDATE notify_outbox SET attempts = ?, next_attempt_at = ?, last_error = ?, "
        "claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?",
        (attempts, next_at, error, row_id, worker),
    )


def bury(conn: Conn, row: Row, worker: str, error: str, now: float) -> bool:
    """Make a claimed row a dead letter; False when ``worker`` no longer holds it."""
    cursor = conn.execute(
        "UPDATE notify_outbox SET status = 'dead', attempts = attempts + 1, "
        "last_error = ?, claimed_by = NULL, claimed_until = NULL "
        "WHERE id = ? AND claimed_by = ?",
        (error, row["id"], worker),
    )
    if cursor.rowcount != 1:
        return False
    conn.execute(
        "INSERT INTO notify_dead_letters (outbox_id, channel, idempotency_key, attempts, "
        "last_error, created_at, died_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            row["id"],
            row["channel"],
            row["idempotency_key"],
            row["attempts"] + 1,
            error,
            row["created_at"],
            now,
        ),
    )
    return True


def deliveries(conn: Conn, fingerprint: str, limit: int = 50) -> list[Row]:
    """The newest outbox rows (dead letters too) about an alert, newest first."""
    return conn.execute(
        "SELECT id, channel, kind, status, created_at, attempts, delivered_at, last_error "
        "FROM notify_outbox WHERE instr(' ' || subjects || ' ', ?) ORDER BY id DESC LIMIT ?",
        (f" {fingerprint} ", limit),
    ).fetchall()


def outbox_counts(conn: Conn) -> dict[str, int]:
    rows = conn.execute("SELECT status, COUNT(*) FROM notify_outbox GROUP BY status").fetchall()
    return {row[0]: row[1] for row in rows}
