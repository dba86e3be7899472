"""Time buckets for the Analytics ``duration`` parameter, and how their dates are written.

Buckets are UTC. Weeks start on Monday; week, month and year buckets are dated by
their calendar first day even when the requested range starts later (the counts only
cover the requested range). ``historic`` is a single bucket dated by ``from``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

SUBDAY = {"sec": 1, "minute": 60, "hour": 3600}
_DAY = 86400
_EPOCH_DAY = date(1970, 1, 1)


@dataclass(frozen=True)
class Bucket:
    #: what goes into the row's ``date`` field.
    label: str | int
    #: the part of the bucket inside the requested range, epoch seconds, half-open.
    start: int
    end: int


def epoch(moment: datetime) -> int:
    return int(moment.timestamp() // 1)


def day_epoch(day: date) -> int:
    return epoch(datetime(day.year, day.month, day.day, tzinfo=UTC))


def format_subday(seconds: int, fmt: str) -> str | int:
    """The sub-day ``date`` field; which form the real API uses is unverified."""
    if fmt == "epoch":
        return seconds
    if fmt == "epoch_ms":
        return seconds * 1000
    # Integer arithmetic instead of strftime: a day of minutes or seconds formats fast.
    days, rest = divmod(seconds, _DAY)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    day = _day_text(days)
    if fmt == "space":
        return f"{day} {hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{day}T{hours:02d}:{minutes:02d}:{secs:02d}.000Z"


@lru_cache(maxsize=4096)
def _day_text(days_since_epoch: int) -> str:
    return (_EPOCH_DAY + timedelta(days=days_since_epoch)).isoformat()


def _calendar_start(day: date, granularity: str) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    if granularity == "year":
        return day.replace(month=1, day=1)
    return day


def _next_calendar(day: date, granularity: str) -> date:
    if granularity == "week":
        return day + timedelta(days=7)
    if granularity == "month":
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    if granularity == "year":
        return date(day.year + 1, 1, 1)
    return day + timedelta(days=1)


def make_buckets(
    granularity: str, first: date, last: date, now: datetime, subday_format: str
) -> list[Bucket]:
    """Buckets covering the inclusive day range [first, last] that have started by ``now``."""
    range_start = day_epoch(first)
    range_end = day_epoch(last) + _DAY
    now_s = epoch(now)
    if granularity == "historic":
        end = min(range_end, now_s + 1)
        return [Bucket(first.isoformat(), range_start, end)] if range_start < end else []
    if granularity in SUBDAY:
        step = SUBDAY[granularity]
        stop = min(range_end, now_s + 1)
        return [
            Bucket(format_subday(s, subday_format), s, s + step)
            for s in range(range_start, stop, step)
        ]
    buckets = []
    day = _calendar_start(first, granularity)
    while True:
        natural = day_epoch(day)
        if natural >= range_end or natural > now_s:
            break
        following = _next_calendar(day, granularity)
        start = max(natural, range_start)
        end = min(day_epoch(following), range_end)
        buckets.append(Bucket(day.isoformat(), start, end))
        day = following
    return buckets
