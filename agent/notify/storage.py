"""Notify's tables in the state store, and the only place their SQL is written.

Everything notify keeps — alert states, groups, what each channel was told, silences,
acks, escalations, the outbox and its dead letters (tables: ``schema``) — is read and
written through these functions. Each takes the connection of the caller's transaction
(``store.tx()``), so a stage's writes join the daemon's cycle transaction. They are the
interface a second backend (PostgreSQL, for high availability) implements: plain values
and records in, rows as mappings out, compare-and-swap claims as conditional UPDATEs.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from agent.notify.schema import HOUSEKEEPING
from agent.notify.silence import Silence
from agent.notify.state import TrackedAlert
from agent.store import lease

Row = sqlite3.Row
Conn = sqlite3.Connection

# -- alerts -----------------------------------------------------------------------------


def _alert(row: Row) -> TrackedAlert:
    decoded = {key: json.loads(row[key]) for key in ("labels", "annotations", "routes")}
    return TrackedAlert(**{**dict(row), **decoded})


def alert(conn: Conn, fingerprint: str) -> TrackedAlert | None:
    row = conn.execute("SELECT * FROM notify_alerts WHERE fingerprint = ?", (fingerprint,))
    found = row.fetchone()
    return _alert(found) if found else None


def alerts(conn: Conn, fingerprints: Sequence[str] | None = None) -> list[TrackedAlert]:
    """Every tracked alert, or those of ``fingerprints``."""
    if fingerprints is None:
        rows = conn.execute("SELECT * FROM notify_alerts").fetchall()
    elif not fingerprints:
        return []
    else:
        marks = ",".join("?" * len(fingerprints))
        rows = conn.execute(
            f"SELECT * FROM notify_alerts WHERE fingerprint IN ({marks}) ORDER BY fingerprint",
            tuple(fingerprints),
        ).fetchall()
    return [_alert(row) for row in rows]


def save_alert(conn: Conn, alert: TrackedAlert) -> None:
    """Insert or update an alert's state (its ``suppressed`` mark is kept on update)."""
    conn.execute(
        """
        INSERT INTO notify_alerts (fingerprint, rule, labels, annotations, state, value,
            threshold, episode, active_since, resolved_at, changed_at, routes, suppressed)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(fingerprint) DO UPDATE SET rule = excluded.rule,
            labels = excluded.labels, annotations = excluded.annotations,
            state = excluded.state, value = excluded.value, threshold = excluded.threshold,
            episode = excluded.episode, active_since = excluded.active_since,
            resolved_at = excluded.resolved_at, changed_at = excluded.changed_at,
            routes = excluded.routes
        """,
        (
            alert.fingerprint,
            alert.rule,
            json.dumps(alert.labels, sort_keys=True),
            json.dumps(alert.annotations, sort_keys=True),
            alert.state,
            alert.value,
            alert.threshold,
            alert.episode,
            alert.active_since,
            alert.resolved_at,
            alert.changed_at,
            json.dumps(alert.routes),
            alert.suppressed,
        ),
    )


def set_suppressed(conn: Conn, fingerprint: str, reason: str | None) -> None:
    conn.execute(
        "UPDATE notify_alerts SET suppressed = ? WHERE fingerprint = ?", (reason, fingerprint)
    )


# -- groups -----------------------------------------------------------------------------


def join_group(
    conn: Conn, route_id: str, key: str, fingerprint: str, now: float, first_flush: float
) -> None:
    """Put an alert in the route's group ``key``, creating the group (due at
    ``first_flush``) if it is new."""
    conn.execute(
        "INSERT OR IGNORE INTO notify_groups (route_id, group_key, group_labels, created_at, "
        "next_flush_at) VALUES (?, ?, ?, ?, ?)",
        (route_id, key, key, now, first_flush),
    )
    group_id = conn.execute(
        "SELECT id FROM notify_groups WHERE route_id = ? AND group_key = ?", (route_id, key)
    ).fetchone()[0]
    conn.execute(
        "INSERT OR IGNORE INTO notify_group_alerts (group_id, fingerprint) VALUES (?, ?)",
        (group_id, fingerprint),
    )


def wake_groups(conn: Conn, fingerprint: str, now: float) -> None:
    """Make the alert's groups that have flushed before due now."""
    conn.execute(
        "UPDATE notify_groups SET next_flush_at = MIN(next_flush_at, ?) "
        "WHERE last_flush_at IS NOT NULL AND id IN "
        "(SELECT group_id FROM notify_group_alerts WHERE fingerprint = ?)",
        (now, fingerprint),
    )


def due_groups(conn: Conn, now: float) -> list[int]:
    rows = conn.execute(
        "SELECT id FROM notify_groups WHERE next_flush_at <= ? ORDER BY next_flush_at, id",
        (now,),
    ).fetchall()
    return [row[0] for row in rows]


def group(conn: Conn, group_id: int) -> Row | None:
    """A group's row: route_id, group_key, group_labels, created_at, next/last_flush_at."""
    found: Row | None = conn.execute(
        "SELECT * FROM notify_groups WHERE id = ?", (group_id,)
    ).fetchone()
    return found


def members(conn: Conn, group_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT fingerprint FROM notify_group_alerts WHERE group_id = ? ORDER BY fingerprint",
        (group_id,),
    ).fetchall()
    return [row[0] for row in rows]


def leave_group(conn: Conn, group_id: int, fingerprint: str) -> None:
    conn.execute(
        "DELETE FROM notify_group_alerts WHERE group_id = ? AND fingerprint = ?",
        (group_id, fingerprint),
    )


def flushed(conn: Conn, group_id: int, now: float, next_flush: float) -> None:
    """Record a group's flush; a group left without members is dropped."""
    left = conn.execute(
        "SELECT COUNT(*) FROM notify_group_alerts WHERE group_id = ?", (group_id,)
    ).fetchone()[0]
    if left == 0:
        drop_group(conn, group_id)
    else:
        conn.execute(
            "UPDATE notify_groups SET last_flush_at = ?, next_flush_at = ? WHERE id = ?",
            (now, next_flush, group_id),
        )


def drop_group(conn: Conn, group_id: int) -> None:
    conn.execute("DELETE FROM notify_groups WHERE id = ?", (group_id,))


# -- what each channel was told ---------------------------------------------------------


def told(conn: Conn, channel: str, fingerprints: Sequence[str]) -> dict[str, Row]:
    """fingerprint -> (episode, state, sent_at) last sent to ``channel``."""
    marks = ",".join("?" * len(fingerprints))
    rows = conn.execute(
        f"SELECT * FROM notify_log WHERE channel = ? AND fingerprint IN ({marks})",
        (channel, *fingerprints),
    ).fetchall()
    return {row["fingerprint"]: row for row in rows}


def record_told(conn: Conn, channel: str, alerts: Iterable[TrackedAlert], now: float) -> None:
    conn.executemany(
        "INSERT INTO notify_log (channel, fingerprint, episode, state, sent_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(channel, fingerprint) DO UPDATE SET "
        "episode = excluded.episode, state = excluded.state, sent_at = excluded.sent_at",
        [(channel, a.fingerprint, a.episode, a.notify_state, now) for a in alerts],
    )


def channels_told_active(conn: Conn, fingerprint: str, episode: int) -> list[str]:
    """Channels told of the episode and not (yet) of its end."""
    rows = conn.execute(
        "SELECT channel FROM notify_log WHERE fingerprint = ? AND episode = ? "
        "AND state != 'resolved' ORDER BY channel",
        (fingerprint, episode),
    ).fetchall()
    return [row[0] for row in rows]


# -- acknowledgements -------------------------------------------------------------------


def add_ack(conn: Conn, fingerprint: str, episode: int, by: str, comment: str, now: float) -> bool:
    """Record an ack; False when the episode was acknowledged already."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO notify_acks (fingerprint, episode, acked_by, comment, "
        "acked_at) VALUES (?, ?, ?, ?, ?)",
        (fingerprint, episode, by, comment, now),
    )
    return cursor.rowcount == 1


def acks(conn: Conn) -> dict[tuple[str, int], str]:
    """(fingerprint, episode) -> who acknowledged it."""
    rows = conn.execute("SELECT fingerprint, episode, acked_by FROM notify_acks").fetchall()
    return {(row[0], row[1]): row[2] for row in rows}


def mute_status(conn: Conn) -> dict[str, tuple[str | None, str | None, float | None]]:
    """fingerprint -> (why it is muted, who acknowledged its current episode, threshold)."""
    rows = conn.execute(
        "SELECT n.fingerprint, n.suppressed, k.acked_by, n.threshold FROM notify_alerts n "
        "LEFT JOIN notify_acks k ON k.fingerprint = n.fingerprint AND k.episode = n.episode"
    ).fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


# -- silences ---------------------------------------------------------------------------


def add_silence(conn: Conn, silence: Silence) -> None:
    conn.execute(
        "INSERT INTO notify_silences (id, matchers, starts_at, ends_at, created_by, comment, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            silence.id,
            json.dumps(list(silence.matchers)),
            silence.starts_at.timestamp(),
            silence.ends_at.timestamp(),
            silence.created_by,
            silence.comment,
            silence.created_at.timestamp(),
        ),
    )


def silences(conn: Conn, not_ended_at: datetime | None = None) -> list[Silence]:
    """Every silence, or those still running or to come at ``not_ended_at``."""
    query = "SELECT * FROM notify_silences"
    args: tuple[Any, ...] = ()
    if not_ended_at is not None:
        query += " WHERE ends_at > ?"
        args = (not_ended_at.timestamp(),)
    rows = conn.execute(query + " ORDER BY starts_at, id", args).fetchall()
    return [
        Silence(
            id=row["id"],
            matchers=tuple(json.loads(row["matchers"])),
            starts_at=datetime.fromtimestamp(row["starts_at"], UTC),
            ends_at=datetime.fromtimestamp(row["ends_at"], UTC),
            created_by=row["created_by"],
            comment=row["comment"],
            created_at=datetime.fromtimestamp(row["created_at"], UTC),
        )
        for row in rows
    ]


def end_silence(conn: Conn, silence_id: str, now: datetime) -> bool:
    """End a silence now; False if unknown or already over."""
    cursor = conn.execute(
        "UPDATE notify_silences SET ends_at = ? WHERE id = ? AND ends_at > ?",
        (now.timestamp(), silence_id, now.timestamp()),
    )
    return cursor.rowcount == 1


# -- escalations ------------------------------------------------------------------------


def start_escalation(
    conn: Conn, fingerprint: str, episode: int, policy: str, started_at: float
) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO notify_escalations (fingerprint, episode, policy, started_at) "
        "VALUES (?, ?, ?, ?)",
        (fingerprint, episode, policy, started_at),
    )


def escalation(conn: Conn, fingerprint: str, episode: int) -> Row | None:
    """The episode's escalation: policy and the index of the last tier reached."""
    found: Row | None = conn.execute(
        "SELECT policy, tier FROM notify_escalations WHERE fingerprint = ? AND episode = ?",
        (fingerprint, episode),
    ).fetchone()
    return found


def running_escalations(conn: Conn) -> list[Row]:
    """Escalations of alerts still firing in the same episode and not acknowledged."""
    return conn.execute(
        """
        SELECT e.fingerprint, e.episode, e.policy, e.started_at, e.tier
        FROM notify_escalations e
        JOIN notify_alerts a ON a.fingerprint = e.fingerprint AND a.episode = e.episode
        LEFT JOIN notify_acks k ON k.fingerprint = e.fingerprint AND k.episode = e.episode
        WHERE a.state = 'firing' AND k.fingerprint IS NULL
        """
    ).fetchall()


def set_tier(conn: Conn, fingerprint: str, episode: int, tier: int) -> None:
    conn.execute(
        "UPDATE notify_escalations SET tier = ? WHERE fingerprint = ? AND episode = ?",
        (tier, fingerprint, episode),
    )


# -- the outbox -------------------------------------------------------------------------


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


def next_due(conn: Conn) -> float | None:
    """The earliest group flush or outbox attempt (epoch seconds)."""
    found = [
        conn.execute("SELECT MIN(next_flush_at) FROM notify_groups").fetchone()[0],
        conn.execute(
            "SELECT MIN(MAX(next_attempt_at, COALESCE(claimed_until, 0))) "
            "FROM notify_outbox WHERE status = 'pending'"
        ).fetchone()[0],
    ]
    values = [value for value in found if value is not None]
    return min(values) if values else None


# -- retention --------------------------------------------------------------------------


def housekeep(conn: Conn, cutoff: float) -> None:
    """Forget what is older than the retention period (and no longer in use)."""
    for statement in HOUSEKEEPING:
        conn.execute(statement, {"cutoff": cutoff})
