"""Remediation's tables, behind one small interface (no SQL elsewhere in the stage).

- ``remediate_due``: actions that fell due, written in the transaction of the alert's
  state change and claimed with compare-and-swap (a ``claimed_until`` lease), like the
  notification outbox. ``started_at`` is committed before a call goes out, so a
  restarted agent knows the call may have happened.
- ``remediate_audit``: every outcome (dry-run, attempted, succeeded, failed, skipped).
- ``remediate_prior_state``: automations Stackwatch disabled, with their state before,
  so a revert re-enables only what Stackwatch itself turned off.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from agent.durations import parse_duration
from agent.remediate.records import AlertContext, AuditRecord, Due, Guardrail, Outcome
from agent.store import Store, lease

COMPONENT = "remediate"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE remediate_due (
        id INTEGER PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        action TEXT NOT NULL,
        step TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        alert TEXT NOT NULL,
        due_at REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        claimed_by TEXT,
        claimed_until REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        started_at REAL,
        finished_at REAL
    );
    CREATE INDEX remediate_due_pending ON remediate_due (status, due_at);
    CREATE TABLE remediate_audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        kind TEXT NOT NULL,
        outcome TEXT NOT NULL,
        guardrail TEXT,
        dry_run INTEGER NOT NULL DEFAULT 0,
        rule TEXT,
        fingerprint TEXT,
        project TEXT,
        automation TEXT,
        automation_title TEXT,
        message TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX remediate_audit_at ON remediate_audit (at);
    CREATE INDEX remediate_audit_action ON remediate_audit (action, at);
    CREATE TABLE remediate_prior_state (
        project TEXT NOT NULL,
        automation TEXT NOT NULL,
        action TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        was_active INTEGER NOT NULL,
        status TEXT NOT NULL,
        updated_at TEXT,
        at REAL NOT NULL,
        PRIMARY KEY (project, automation)
    );
    """,
)

#: outcomes that count as "an action was taken" for cooldowns and the hourly cap.
_TAKEN = (Outcome.ATTEMPTED.value, Outcome.DRY_RUN.value)


@dataclass(frozen=True)
class PriorState:
    project: str
    automation: str
    action: str
    fingerprint: str
    was_active: bool
    #: ``disabling`` (PATCH about to go out), ``disabled``, ``reverted``, ``released``.
    status: str
    #: the automation's ``updated_at`` as read back after Stackwatch disabled it.
    updated_at: str | None = None


@dataclass(frozen=True)
class AuditFilter:
    since: datetime | None = None
    action: str | None = None
    rule: str | None = None
    outcome: str | None = None
    automation: str | None = None
    fingerprint: str | None = None
    limit: int = 100

    @classmethod
    def from_query(cls, query: dict[str, list[str]], now: datetime) -> AuditFilter:
        """From URL query parameters: ``since`` (a duration back from now, e.g. ``24h``),
        ``action``, ``rule``, ``outcome``, ``automation``, ``fingerprint``, ``limit``."""

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        since = one("since")
        limit = one("limit") or "100"
        outcome = one("outcome")
        if not limit.isdigit() or not 1 <= int(limit) <= 10_000:
            raise ValueError("limit must be a whole number from 1 to 10000")
        if outcome is not None and outcome not in {o.value for o in Outcome}:
            raise ValueError(f"outcome must be one of {', '.join(o.value for o in Outcome)}")
        return cls(
            since=now - parse_duration(since) if since else None,
            action=one("action"),
            rule=one("rule"),
            outcome=outcome,
            automation=one("automation"),
            fingerprint=one("fingerprint"),
            limit=int(limit),
        )


class RemediationStorage:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.migrate(COMPONENT, MIGRATIONS)

    # -- actions due ------------------------------------------------------------------

    @staticmethod
    def add_due(
        conn: sqlite3.Connection, key: str, action: str, step: str, alert: AlertContext, at: float
    ) -> bool:
        """Queue once per idempotency key; call inside the alert state's transaction."""
        cursor = conn.execute(
            "INSERT OR IGNORE INTO remediate_due (idempotency_key, action, step, fingerprint, "
            "alert, due_at) VALUES (?, ?, ?, ?, ?, ?)",
            (key, action, step, alert.fingerprint, _alert_json(alert), at),
        )
        return cursor.rowcount == 1

    def claim(self, now: float, until: float, worker: str, limit: int) -> list[Due]:
        conn = self.store.connection()
        candidates = conn.execute(
            "SELECT id FROM remediate_due WHERE status = 'pending' AND due_at <= ? "
            f"AND {lease.UNCLAIMED} ORDER BY due_at, id LIMIT ?",
            (now, now, limit),
        ).fetchall()
        ids = [c[0] for c in candidates]
        return [_due(row) for row in lease.claim(conn, "remediate_due", ids, worker, now, until)]

    def begin_call(self, due: Due, now: float, records: list[AuditRecord]) -> None:
        """Commit "a call is about to go out" (and its audit rows) before making it."""
        with self.store.tx() as conn:
            conn.execute(
                "UPDATE remediate_due SET started_at = ?, attempts = attempts + 1 WHERE id = ?",
                (now, due.id),
            )
            self._insert(conn, records)

    def finish(self, due: Due, now: float, records: list[AuditRecord]) -> None:
        with self.store.tx() as conn:
            conn.execute(
                "UPDATE remediate_due SET status = 'done', finished_at = ?, claimed_until = NULL "
                "WHERE id = ?",
                (now, due.id),
            )
            self._insert(conn, records)

    def pending(self) -> int:
        row = (
            self.store.connection()
            .execute("SELECT COUNT(*) FROM remediate_due WHERE status = 'pending'")
            .fetchone()
        )
        return int(row[0])

    # -- audit ------------------------------------------------------------------------

    def record(self, records: list[AuditRecord]) -> None:
        with self.store.tx() as conn:
            self._insert(conn, records)

    @staticmethod
    def _insert(conn: sqlite3.Connection, records: list[AuditRecord]) -> None:
        conn.executemany(
            "INSERT INTO remediate_audit (at, actor, action, kind, outcome, guardrail, dry_run, "
            "rule, fingerprint, project, automation, automation_title, message, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.at,
                    r.actor,
                    r.action,
                    r.kind,
                    r.outcome.value,
                    r.guardrail.value if r.guardrail else None,
                    int(r.dry_run),
                    r.rule,
                    r.fingerprint,
                    r.project,
                    r.automation,
                    r.automation_title,
                    r.message,
                    json.dumps(r.detail, sort_keys=True, default=str),
                )
                for r in records
            ],
        )

    def taken_since(self, since: float, actor: str, action: str | None = None) -> int:
        """Actions taken (attempted or dry-run) by ``actor`` since ``since``."""
        sql = (
            "SELECT COUNT(*) FROM remediate_audit WHERE at > ? AND actor = ? "
            f"AND outcome IN ({', '.join('?' * len(_TAKEN))})"
        )
        params: list[object] = [since, actor, *_TAKEN]
        if action is not None:
            sql += " AND action = ?"
            params.append(action)
        return int(self.store.connection().execute(sql, params).fetchone()[0])

    def audit(self, query: AuditFilter) -> list[AuditRecord]:
        """Newest first."""
        clauses: list[str] = []
        params: list[object] = []
        if query.since is not None:
            clauses.append("at >= ?")
            params.append(query.since.timestamp())
        for column in ("action", "rule", "outcome", "fingerprint"):
            value = getattr(query, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.automation is not None:
            clauses.append("(automation = ? OR automation_title = ?)")
            params.extend([query.automation, query.automation])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.store.connection().execute(
            f"SELECT * FROM remediate_audit {where} ORDER BY at DESC, id DESC LIMIT ?",
            [*params, max(1, query.limit)],
        )
        return [_audit(row) for row in rows.fetchall()]

    def prune(self, before: float) -> int:
        with self.store.tx() as conn:
            conn.execute(
                "DELETE FROM remediate_due WHERE status = 'done' AND finished_at < ?", (before,)
            )
            conn.execute(
                "DELETE FROM remediate_prior_state WHERE status IN ('reverted', 'released') "
                "AND at < ?",
                (before,),
            )
            return conn.execute("DELETE FROM remediate_audit WHERE at < ?", (before,)).rowcount

    # -- prior state of automations Stackwatch disabled ---------------------------------

    def prior(self, project: str, automation: str) -> PriorState | None:
        row = (
            self.store.connection()
            .execute(
                "SELECT * FROM remediate_prior_state WHERE project = ? AND automation = ?",
                (project, automation),
            )
            .fetchone()
        )
        return _prior(row) if row else None

    def prior_of(self, action: str, fingerprint: str) -> PriorState | None:
        """What ``action`` disabled for this alert and has not reverted or released yet."""
        row = (
            self.store.connection()
            .execute(
                "SELECT * FROM remediate_prior_state WHERE action = ? AND fingerprint = ? "
                "AND status IN ('disabling', 'disabled') ORDER BY at DESC LIMIT 1",
                (action, fingerprint),
            )
            .fetchone()
        )
        return _prior(row) if row else None

    def save_prior(self, state: PriorState, at: float) -> None:
        with self.store.tx() as conn:
            conn.execute(
                "INSERT INTO remediate_prior_state (project, automation, action, fingerprint, "
                "was_active, status, updated_at, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(project, automation) DO UPDATE SET action = excluded.action, "
                "fingerprint = excluded.fingerprint, was_active = excluded.was_active, "
                "status = excluded.status, updated_at = excluded.updated_at, at = excluded.at",
                (
                    state.project,
                    state.automation,
                    state.action,
                    state.fingerprint,
                    int(state.was_active),
                    state.status,
                    state.updated_at,
                    at,
                ),
            )


def _alert_json(alert: AlertContext) -> str:
    payload = {**alert.__dict__, "routes": list(alert.routes)}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def _due(row: sqlite3.Row) -> Due:
    return Due(
        id=row["id"],
        action=row["action"],
        step=row["step"],
        due_at=row["due_at"],
        alert=AlertContext.from_json(json.loads(row["alert"])),
        attempts=row["attempts"],
        started_at=row["started_at"],
    )


def _audit(row: sqlite3.Row) -> AuditRecord:
    return AuditRecord(
        id=row["id"],
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        kind=row["kind"],
        outcome=Outcome(row["outcome"]),
        guardrail=Guardrail(row["guardrail"]) if row["guardrail"] else None,
        dry_run=bool(row["dry_run"]),
        rule=row["rule"],
        fingerprint=row["fingerprint"],
        project=row["project"],
        automation=row["automation"],
        automation_title=row["automation_title"],
        message=row["message"],
        detail=json.loads(row["detail"]),
    )


def _prior(row: sqlite3.Row) -> PriorState:
    return PriorState(
        project=row["project"],
        automation=row["automation"],
        action=row["action"],
        fingerprint=row["fingerprint"],
        was_active=bool(row["was_active"]),
        status=row["status"],
        updated_at=row["updated_at"],
    )
