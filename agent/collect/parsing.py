"""Lenient parsing of the scalar forms the APIs are known (or suspected) to send."""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, date, datetime, timedelta

#: epoch values at or above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_MILLIS_THRESHOLD = 1e11
_NUMERIC = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
# ISO 8601 with a 'T' or a space, optional fraction of any length, optional Z or offset
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_number(value: object) -> float:
    """A finite number from an int, float or numeric string; ValueError otherwise.

    Booleans are refused although Python counts them as ints: ``true`` is not a count.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int):
        result = float(value)
    elif isinstance(value, float):
        result = value
    elif isinstance(value, str) and _NUMERIC.match(value.strip()):
        result = float(value.strip())
    else:
        raise ValueError(f"not a number: {_short(value)}")
    if not math.isfinite(result):
        raise ValueError(f"not a finite number: {_short(value)}")
    return result


def parse_timestamp(value: object) -> datetime:
    """``read_timestamp``, remembered per text: a day of minute rows repeats the same
    1,440 dates in every query. (2,048: a day's dates and some. The cache lives as long as
    the process; at 8,192 it kept a week's dates, 2 MB, for the 7-day queries, whose rows
    come date after date, so their repeats are served by the smaller cache too.)"""
    if type(value) is str:
        return _timestamp_of_text(value)
    return read_timestamp(value)


@functools.lru_cache(maxsize=2048)
def _timestamp_of_text(value: str) -> datetime:
    return read_timestamp(value)


def read_timestamp(value: object) -> datetime:
    """An aware UTC datetime from any documented or suspected date form.

    Accepted: ``YYYY-MM-DD`` (midnight UTC), ``YYYY-MM`` (month buckets), ISO datetimes
    with ``T`` or a space, with or without seconds, fraction, ``Z`` or offset (naive means
    UTC), and epoch seconds or milliseconds as a number or a numeric string.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a date: {value!r}")
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        raise ValueError(f"not a date: {_short(value)}")
    text = value.strip()
    if _NUMERIC.match(text):
        return _from_epoch(float(text))
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a date: {_short(value)}") from None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    match = _YEAR_MONTH.match(text)
    if match:
        return _build(int(match.group(1)), int(match.group(2)), 1)
    match = _DATETIME.match(text)
    if match:
        return _from_datetime_match(match, value)
    raise ValueError(f"not a date: {_short(value)}")


def _from_datetime_match(match: re.Match[str], original: object) -> datetime:
    year, month, day, hour, minute = (int(match.group(i)) for i in range(1, 6))
    second = int(match.group(6) or 0)
    fraction = match.group(7) or ""
    # round down to microseconds: some servers send nanoseconds, which datetime cannot hold
    micro = int((fraction + "000000")[:6])
    try:
        when = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError:
        raise ValueError(f"not a date: {_short(original)}") from None
    zone = match.group(8)
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            raise ValueError(f"bad UTC offset in {_short(original)}")
        try:
            when -= sign * timedelta(hours=hours, minutes=minutes)
        except OverflowError:
            raise ValueError(f"date out of range: {_short(original)}") from None
    return when


def _build(year: int, month: int, day: int) -> datetime:
    try:
        return datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        raise ValueError(f"not a date: {year:04d}-{month:02d}-{day:02d}") from None


def _from_epoch(seconds: float) -> datetime:
    if not math.isfinite(seconds):
        raise ValueError("epoch value is not finite")
    if abs(seconds) >= _MILLIS_THRESHOLD:
        seconds /= 1000.0
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"epoch value out of range: {seconds!r}") from None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
