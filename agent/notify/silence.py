"""Silences (ad hoc, persisted) and maintenance windows (recurring, from config).

Silenced alerts keep their state; they are only kept off the channels, and flagged
as silenced. When the silence ends on an alert still firing, the next flush
notifies it (its notification log has no entry for the episode yet).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
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


def new_silence(
    now: datetime,
    matchers: list[str],
    *,
    ends_at: datetime,
    starts_at: datetime | None = None,
    created_by: str,
    comment: str = "",
) -> Silence:
    """A checked new silence (raises ValueError for bad matchers or times)."""
    if not matchers:
        raise ValueError("a silence needs at least one matcher (KEY=VALUE)")
    parse_matchers(matchers)  # reject bad syntax before storing
    starts = starts_at or now
    if ends_at <= starts:
        raise ValueError("a silence must end after it starts")
    return Silence(
        id=secrets.token_hex(4),
        matchers=tuple(matchers),
        starts_at=starts,
        ends_at=ends_at,
        created_by=created_by,
        comment=comment,
        created_at=now,
    )


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
