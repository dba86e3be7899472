"""Notify's tables: their migrations (append-only) and what retention deletes.

The statements that read and write them are in ``storage``.
"""

from __future__ import annotations

COMPONENT = "notify"

MIGRATIONS: tuple[str, ...] = (
    """
    -- Last known state of every alert instance notify has heard of.
    CREATE TABLE notify_alerts (
        fingerprint TEXT PRIMARY KEY,
        rule TEXT NOT NULL,
        labels TEXT NOT NULL,
        annotations TEXT NOT NULL,
        state TEXT NOT NULL,
        value REAL,
        threshold REAL,
        -- the current episode: incremented each time the alert becomes active again.
        episode INTEGER NOT NULL DEFAULT 0,
        active_since REAL,
        resolved_at REAL,
        changed_at REAL NOT NULL,
        routes TEXT NOT NULL DEFAULT '[]',
        -- why it was muted at the last flush (silence:ID, maintenance:NAME, inhibited:...).
        suppressed TEXT
    );
    CREATE TABLE notify_groups (
        id INTEGER PRIMARY KEY,
        route_id TEXT NOT NULL,
        group_key TEXT NOT NULL,
        group_labels TEXT NOT NULL,
        created_at REAL NOT NULL,
        next_flush_at REAL,
        last_flush_at REAL,
        UNIQUE (route_id, group_key)
    );
    CREATE INDEX notify_groups_due ON notify_groups (next_flush_at);
    CREATE TABLE notify_group_alerts (
        group_id INTEGER NOT NULL REFERENCES notify_groups (id) ON DELETE CASCADE,
        fingerprint TEXT NOT NULL REFERENCES notify_alerts (fingerprint) ON DELETE CASCADE,
        PRIMARY KEY (group_id, fingerprint)
    );
    CREATE INDEX notify_group_alerts_fp ON notify_group_alerts (fingerprint);
    -- What each channel was last told about each alert: dedupe and repeat.
    CREATE TABLE notify_log (
        channel TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        episode INTEGER NOT NULL,
        state TEXT NOT NULL,
        sent_at REAL NOT NULL,
        PRIMARY KEY (channel, fingerprint)
    );
    CREATE TABLE notify_silences (
        id TEXT PRIMARY KEY,
        matchers TEXT NOT NULL,
        starts_at REAL NOT NULL,
        ends_at REAL NOT NULL,
        created_by TEXT NOT NULL,
        comment TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE TABLE notify_acks (
        fingerprint TEXT NOT NULL,
        episode INTEGER NOT NULL,
        acked_by TEXT NOT NULL,
        comment TEXT NOT NULL DEFAULT '',
        acked_at REAL NOT NULL,
        PRIMARY KEY (fingerprint, episode)
    );
    CREATE TABLE notify_escalations (
        fingerprint TEXT NOT NULL,
        episode INTEGER NOT NULL,
        policy TEXT NOT NULL,
        started_at REAL NOT NULL,
        -- index of the last tier reached, -1 before the first.
        tier INTEGER NOT NULL DEFAULT -1,
        PRIMARY KEY (fingerprint, episode)
    );
    CREATE TABLE notify_outbox (
        id INTEGER PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        channel TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | dead
        created_at REAL NOT NULL,
        next_attempt_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        claimed_by TEXT,
        claimed_until REAL,
        delivered_parts TEXT NOT NULL DEFAULT '[]',
        delivered_at REAL,
        last_error TEXT
    );
    CREATE INDEX notify_outbox_due ON notify_outbox (status, next_attempt_at);
    CREATE TABLE notify_dead_letters (
        id INTEGER PRIMARY KEY,
        outbox_id INTEGER NOT NULL REFERENCES notify_outbox (id),
        channel TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_error TEXT,
        created_at REAL NOT NULL,
        died_at REAL NOT NULL
    );
    """,
    """
    -- The fingerprints of the alerts a row is about (space-separated): a channel hears
    -- the notifications of one alert in the order they were queued.
    ALTER TABLE notify_outbox ADD COLUMN subjects TEXT NOT NULL DEFAULT '';
    """,
)

#: run by ``storage.housekeep``: what is older than the retention and no longer in use.
HOUSEKEEPING: tuple[str, ...] = (
    "DELETE FROM notify_dead_letters WHERE died_at < :cutoff",
    "DELETE FROM notify_outbox WHERE status != 'pending' AND created_at < :cutoff "
    "AND id NOT IN (SELECT outbox_id FROM notify_dead_letters)",
    "DELETE FROM notify_alerts WHERE state NOT IN ('firing', 'nodata', 'error') "
    "AND changed_at < :cutoff "
    "AND fingerprint NOT IN (SELECT fingerprint FROM notify_group_alerts)",
    "DELETE FROM notify_log WHERE fingerprint NOT IN (SELECT fingerprint FROM notify_alerts)",
    "DELETE FROM notify_escalations WHERE NOT EXISTS (SELECT 1 FROM notify_alerts a "
    "WHERE a.fingerprint = notify_escalations.fingerprint "
    "AND a.episode = notify_escalations.episode)",
    "DELETE FROM notify_acks WHERE NOT EXISTS (SELECT 1 FROM notify_alerts a "
    "WHERE a.fingerprint = notify_acks.fingerprint AND a.episode = notify_acks.episode)",
    "DELETE FROM notify_silences WHERE ends_at < :cutoff",
)
