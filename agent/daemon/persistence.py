"""The daemon's tables in the state store: alert instances (with anomaly baselines), audit trail.

Why the rule hash: the engine keeps the state of a rule only while what the state is
about is unchanged (``Rule.state_identity``, used by ``Engine.set_rules``); a restart
must apply the same test, so each row records that identity and rows of rules whose
identity changed are not restored.

Why instances are saved in the notifier's transaction: ``save`` is called inside the
``store.tx()`` that also wraps ``Notifier.submit`` (nested transactions join), so a
crash leaves either both the notification and the new state, or neither — and then
the next cycle reproduces the same transitions.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from agent.evaluate.alerts import AlertState
from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker
from agent.evaluate.engine import SOURCE_DOWN, Engine, Instance
from agent.evaluate.rules import Rule
from agent.evaluate.state import InstanceState
from agent.store import Store

COMPONENT = "daemon"

MIGRATIONS: tuple[str, ...] = (
    """
    -- Every alert instance the engine judges, as of its last evaluation.
    CREATE TABLE daemon_instances (
        rule TEXT NOT NULL,
        -- JSON list of [label, value] pairs: the engine's InstanceKey.
        instance_key TEXT NOT NULL,
        labels TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        state TEXT NOT NULL,
        since REAL,
        pending_since REAL,
        firing_since REAL,
        clearing_since REAL,
        value REAL,
        evaluated_at REAL,
        error TEXT,
        annotations TEXT NOT NULL DEFAULT '{}',
        -- AnomalyTracker.to_state(): the detector's baseline and its windows.
        tracker TEXT,
        rule_hash TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (rule, instance_key)
    );
    CREATE INDEX daemon_instances_fp ON daemon_instances (fingerprint);
    CREATE INDEX daemon_instances_age ON daemon_instances (state, updated_at);
    -- Who did what: reloads, silences and acks through the API, remediation actions later.
    CREATE TABLE daemon_audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT NOT NULL DEFAULT '{}',
        outcome TEXT NOT NULL DEFAULT 'ok'
    );
    CREATE INDEX daemon_audit_at ON daemon_audit (at);
    -- Small facts about the running daemon (its HTTP address for ``stackwatch status``).
    CREATE TABLE daemon_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    """
    -- Recent values of every instance, one row per evaluation, for the API and status.
    CREATE TABLE daemon_samples (
        fingerprint TEXT NOT NULL,
        at REAL NOT NULL,
        value REAL,
        state TEXT NOT NULL,
        PRIMARY KEY (fingerprint, at)
    );
    """,
    """
    -- A firing instance whose data is unavailable stays firing; since when it is blind.
    ALTER TABLE daemon_instances ADD COLUMN unavailable_since REAL;
    """,
    """
    -- An anomaly rule's band at each evaluation, for the alert's chart.
    ALTER TABLE daemon_samples ADD COLUMN lower REAL;
    ALTER TABLE daemon_samples ADD COLUMN upper REAL;
    """,
)

#: states an instance may be forgotten in once it has not been evaluated for the retention.
_QUIET = (AlertState.INACTIVE.value, AlertState.RESOLVED.value)


def rule_hash(rule: Rule | None) -> str:
    if rule is None:  # the source-down meta-alert has no definition
        return ""
    return rule.state_identity()


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True)
class StoredInstance:
    """A row of ``daemon_instances``, decoded."""

    rule: str
    key: tuple[tuple[str, str], ...]
    labels: dict[str, str]
    fingerprint: str
    state: InstanceState
    annotations: dict[str, str]
    tracker: dict[str, Any] | None
    rule_hash: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> StoredInstance:
        return cls(
            rule=row["rule"],
            key=tuple((str(k), str(v)) for k, v in json.loads(row["instance_key"])),
            labels=json.loads(row["labels"]),
            fingerprint=row["fingerprint"],
            state=InstanceState(
                state=AlertState(row["state"]),
                since=_dt(row["since"]),
                pending_since=_dt(row["pending_since"]),
                firing_since=_dt(row["firing_since"]),
                clearing_since=_dt(row["clearing_since"]),
                value=row["value"],
                evaluated_at=_dt(row["evaluated_at"]),
                error=row["error"],
                unavailable_since=_dt(row["unavailable_since"]),
            ),
            annotations=json.loads(row["annotations"]),
            tracker=json.loads(row["tracker"]) if row["tracker"] else None,
            rule_hash=row["rule_hash"],
        )

    def to_instance(self, rule: Rule | None) -> Instance:
        tracker = None
        if rule is not None and isinstance(rule.condition, AnomalyCondition):
            tracker = AnomalyTracker(rule.condition)
            if self.tracker is not None:
                tracker = AnomalyTracker.from_state(rule.condition, self.tracker)
        return Instance(
            self.rule,
            self.key,
            dict(self.labels),
            self.fingerprint,
            state=self.state,
            tracker=tracker,
            annotations=dict(self.annotations),
        )


def migrate(store: Store) -> None:
    store.migrate(COMPONENT, MIGRATIONS)


@lru_cache(maxsize=4096)
def key_json(key: tuple[tuple[str, str], ...]) -> str:
    """The stored form of an InstanceKey. (Kept: every cycle saves every instance, and
    their keys are few, the same stacks and services in rule after rule.)"""
    return json.dumps([list(pair) for pair in key])


#: JSON of a mapping with its keys sorted (one encoder: ``json.dumps(sort_keys=True)``
#: builds a new one each call, and each cycle writes three mappings per instance)
_sorted_json = json.JSONEncoder(sort_keys=True).encode


def _mapping_json(mapping: Mapping[str, str]) -> str:
    return _sorted_json(mapping) if mapping else "{}"


def save(
    conn: sqlite3.Connection,
    instances: Iterable[Instance],
    hashes: Mapping[str, str],
    now: datetime,
) -> int:
    """Upsert instances; a row already written from a later evaluation is kept (two
    groups may save the shared source-down instance in either order)."""
    rows = []
    for instance in instances:
        state = instance.state
        rows.append(
            (
                instance.rule,
                key_json(instance.key),
                _mapping_json(instance.labels),
                instance.fingerprint,
                state.state.value,
                _ts(state.since),
                _ts(state.pending_since),
                _ts(state.firing_since),
                _ts(state.clearing_since),
                state.value,
                _ts(state.evaluated_at),
                state.error,
                _ts(state.unavailable_since),
                _mapping_json(instance.annotations),
                json.dumps(instance.tracker.to_state()) if instance.tracker else None,
                hashes.get(instance.rule, ""),
                now.timestamp(),
            )
        )
    conn.executemany(
        """
        INSERT INTO daemon_instances (rule, instance_key, labels, fingerprint, state, since,
            pending_since, firing_since, clearing_since, value, evaluated_at, error,
            unavailable_since, annotations, tracker, rule_hash, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (rule, instance_key) DO UPDATE SET labels = excluded.labels,
            fingerprint = excluded.fingerprint, state = excluded.state, since = excluded.since,
            pending_since = excluded.pending_since, firing_since = excluded.firing_since,
            clearing_since = excluded.clearing_since, value = excluded.value,
            evaluated_at = excluded.evaluated_at, error = excluded.error,
            unavailable_since = excluded.unavailable_since,
            annotations = excluded.annotations, tracker = excluded.tracker,
            rule_hash = excluded.rule_hash, updated_at = excluded.updated_at
        WHERE excluded.evaluated_at IS NULL OR daemon_instances.evaluated_at IS NULL
            OR excluded.evaluated_at >= daemon_instances.evaluated_at
        """,
        rows,
    )
    return len(rows)


def record_samples(conn: sqlite3.Connection, instances: Iterable[Instance]) -> int:
    """One row per instance evaluated: its value and state at that evaluation, and the
    band an anomaly rule judged it against."""
    rows = []
    for i in instances:
        if i.state.evaluated_at is None:
            continue
        band = i.tracker.last if i.tracker is not None else None
        lower, upper = (band.lower, band.upper) if band is not None else (None, None)
        state = i.state
        rows.append(
            (i.fingerprint, _ts(state.evaluated_at), state.value, state.state.value, lower, upper)
        )
    conn.executemany(
        "INSERT OR REPLACE INTO daemon_samples (fingerprint, at, value, state, lower, upper) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    return len(rows)


def samples(
    conn: sqlite3.Connection, fingerprint: str, since: datetime | None = None
) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT at, value, state, lower, upper FROM daemon_samples "
        "WHERE fingerprint = ? AND at >= ? ORDER BY at",
        (fingerprint, _ts(since) or 0.0),
    ).fetchall()
    result = []
    for row in rows:
        sample = {"at": datetime.fromtimestamp(row["at"], UTC).isoformat()}
        sample.update(value=row["value"], state=row["state"])
        if row["lower"] is not None:
            sample.update(lower=row["lower"], upper=row["upper"])
        result.append(sample)
    return result


def instance_rows(conn: sqlite3.Connection, *, include_inactive: bool) -> list[sqlite3.Row]:
    """Instances for display: the worst states first, then by rule and fingerprint."""
    where = "" if include_inactive else "WHERE state != 'inactive'"
    return conn.execute(
        "SELECT rule, fingerprint, state, labels, value, since, pending_since, firing_since, "
        f"evaluated_at, error, annotations FROM daemon_instances {where} "
        "ORDER BY CASE state WHEN 'firing' THEN 0 WHEN 'error' THEN 1 WHEN 'nodata' THEN 2 "
        "WHEN 'pending' THEN 3 ELSE 4 END, rule, fingerprint"
    ).fetchall()


def load(conn: sqlite3.Connection) -> list[StoredInstance]:
    rows = conn.execute("SELECT * FROM daemon_instances ORDER BY rule, instance_key").fetchall()
    return [StoredInstance.from_row(row) for row in rows]


def restore(engine: Engine, stored: Iterable[StoredInstance]) -> tuple[int, int]:
    """Put stored instances back into the engine; returns (restored, skipped).

    Skipped: rules that are gone, disabled or whose definition changed since."""
    restored = skipped = 0
    for item in stored:
        rule = engine.rules.get(item.rule)
        if item.rule == SOURCE_DOWN:
            engine.restore(item.to_instance(None))
            restored += 1
        elif rule is not None and rule_hash(rule) == item.rule_hash:
            engine.restore(item.to_instance(rule))
            restored += 1
        else:
            skipped += 1
    return restored, skipped


def outdated(
    stored: Iterable[StoredInstance], engine: Engine, hashes: Mapping[str, str]
) -> tuple[list[StoredInstance], list[StoredInstance]]:
    """Stored rows whose rule is gone, and rows whose rule changed meaning since."""
    gone, changed = [], []
    for item in stored:
        if item.rule not in engine.rules and item.rule != engine.source_state.rule:
            gone.append(item)
        elif item.rule in engine.rules and item.rule_hash != hashes[item.rule]:
            changed.append(item)
    return gone, changed


def forget(conn: sqlite3.Connection, rows: Iterable[tuple[str, Any]]) -> None:
    """Delete the rows of these (rule, instance key) pairs."""
    conn.executemany(
        "DELETE FROM daemon_instances WHERE rule = ? AND instance_key = ?",
        [(rule, key_json(key)) for rule, key in rows],
    )


def audit(
    conn: sqlite3.Connection,
    now: datetime,
    actor: str,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    outcome: str = "ok",
) -> None:
    conn.execute(
        "INSERT INTO daemon_audit (at, actor, action, target, detail, outcome) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (now.timestamp(), actor, action, target, json.dumps(dict(detail or {})), outcome),
    )


def audit_rows(
    conn: sqlite3.Connection, limit: int = 100, target: str | None = None
) -> list[dict[str, Any]]:
    """The newest ``limit`` audit rows (of ``target`` only, when given), newest first,
    ready for JSON."""
    rows = conn.execute(
        "SELECT at, actor, action, target, detail, outcome FROM daemon_audit "
        "WHERE ? IS NULL OR target = ? ORDER BY at DESC, id DESC LIMIT ?",
        (target, target, limit),
    ).fetchall()
    return [
        {
            "at": datetime.fromtimestamp(row["at"], UTC).isoformat(),
            "actor": row["actor"],
            "action": row["action"],
            "target": row["target"],
            "detail": json.loads(row["detail"]),
            "outcome": row["outcome"],
        }
        for row in rows
    ]


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO daemon_meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM daemon_meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def prune(conn: sqlite3.Connection, cutoff: datetime, samples_cutoff: datetime) -> tuple[int, int]:
    """Forget quiet instances not evaluated since ``cutoff`` (their rule or their stack is
    gone), older audit rows and samples older than ``samples_cutoff``.
    Returns (instances, audit rows) deleted."""
    conn.execute("DELETE FROM daemon_samples WHERE at < ?", (samples_cutoff.timestamp(),))
    marks = ",".join("?" * len(_QUIET))
    instances = conn.execute(
        f"DELETE FROM daemon_instances WHERE state IN ({marks}) AND updated_at < ?",
        (*_QUIET, cutoff.timestamp()),
    ).rowcount
    audits = conn.execute("DELETE FROM daemon_audit WHERE at < ?", (cutoff.timestamp(),)).rowcount
    return instances, audits
