"""Silences (ad hoc, persisted) and maintenance windows (recurring, from config).

Silenced alerts keep their state; they are only kept off the channels, and flagged
as silenced. When the silence ends on an alert still firing, the next flush
notifies it (its notification log has no entry for the episode yet).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from agent.notify.config import WEEKDAYS, MaintenanceWindowConfig
from agent.notify.matchers import Matcher, all_match, parse_matchers


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime

    def active_at(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all_match(parse_matchers(self.matchers), labels)

    def status(self, now: datetime) -> str:
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Silence:
        return cls(
            id=row["id"],
            matchers=tuple(json.loads(row["matchers"])),
            starts_at=datetime.fromtimestamp(row["starts_at"], UTC),
            ends_at=datetime.fromtimestamp(row["ends_at"], UTC),
            created_by=row["created_by"],
            comment=row["comment"],
            created_at=datetime.fromtimestamp(row["created_at"], UTC),
        )


def add_silence(
    conn: sqlite3.Connection,
    now: datetime,
    matchers: list[str],
    *,
    ends_at: datetime,
    starts_at: datetime | None = None,
    created_by: str,
    comment: str = "",
) -> Silence:
    if not matchers:
        raise ValueError("a silence needs at least one matcher (KEY=VALUE)")
    parse_matchers(matchers)  # reject bad syntax before storing
    starts = starts_at or now
    if ends_at <= starts:
        raise ValueError("a silence must end after it starts")
    silence = Silence(
        id=secrets.token_hex(4),
        matchers=tuple(matchers),
        starts_at=starts,
        ends_at=ends_at,
        created_by=created_by,
        comment=comment,
        created_at=now,
    )
    conn.execute(
        "INSERT INTO notify_silences (id, matchers, starts_at, ends_at, created_by, comment, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            silence.id,
            json.dumps(list(silence.matchers)),
            starts.timestamp(),
            ends_at.timestamp(),
            created_by,
            comment,
            now.timestamp(),
        ),
    )
    return silence


def list_silences(
    conn: sqlite3.Connection, now: datetime, *, include_expired: bool = False
) -> list[Silence]:
    query = "SELECT * FROM notify_silences"
    args: tuple = ()
    if not include_expired:
        query += " WHERE ends_at > ?"
        args = (now.timestamp(),)
    rows = conn.execute(query + " ORDER BY starts_at, id", args).fetchall()
    return [Silence.from_row(row) for row in rows]


def expire_silence(conn: sqlite3.Connection, now: datetime, silence_id: str) -> bool:
    """End a silence now; False if unknown or already over."""
    cursor = conn.execute(
        "UPDATE notify_silences SET ends_at = ? WHERE id = ? AND ends_at > ?",
        (now.timestamp(), silence_id, now.timestamp()),
    )
    return cursor.rowcount == 1


class MaintenanceWindow:
    def __init__(self, config: MaintenanceWindowConfig) -> None:
        self.name = config.name
        self._days = {WEEKDAYS.index(day) for day in config.weekdays}
        self._start = config.start
        self._end = config.end
        self._zone = ZoneInfo(config.timezone)
        self._matchers: list[Matcher] = parse_matchers(config.matchers)

    def active_at(self, now: datetime) -> bool:
        local = now.astimezone(self._zone)
        clock = local.time().replace(tzinfo=None)
        if self._start == self._end:  # the whole day
            return local.weekday() in self._days
        if self._start < self._end:
            return local.weekday() in self._days and self._start <= clock < self._end
        # Crosses midnight: the window belongs to the day it starts on.
        yesterday = (local - timedelta(days=1)).weekday()
        return (local.weekday() in self._days and clock >= self._start) or (
            yesterday in self._days and clock < self._end
        )

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all_match(self._matchers, labels)
