"""Durations written the way operators write them: ``30s``, ``5m``, ``1h``, ``1d``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
#: longer than any window, retention or timer makes sense for, and far from the point
#: where date arithmetic overflows (``now + duration``)
MAX_DURATION = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """Parse ``"90s"``, ``"5m"``, ``"1h30m"``; raise ValueError with a readable message."""
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string such as '5m', got {text!r}")
    return _parse(text)


@lru_cache(maxsize=1024)
def _parse(text: str) -> timedelta:
    """(cached: a thousand rules write the same few durations, and a timedelta is a value)"""
    cleaned = text.strip().lower()
    if not cleaned:
        raise ValueError("empty duration; use e.g. '30s', '5m', '1h', '1d'")
    position = 0
    total = 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(cleaned):
        raise ValueError(f"invalid duration {text!r}; use e.g. '30s', '5m', '1h', '1d'")
    return _bounded(total)


def _bounded(seconds: float) -> timedelta:
    if not abs(seconds) <= MAX_DURATION.total_seconds():  # also false for nan
        raise ValueError(f"duration too long; at most {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """Shortest readable form: ``timedelta(minutes=90)`` → ``"1h30m"``."""
    seconds = round(delta.total_seconds())
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def strict_duration(value: object) -> object:
    """pydantic before-validator for rule files: durations must carry a unit."""
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("durations are strings with a unit, such as '30s', '5m', '1h', '1d'")
    return value


def lenient_duration(value: object) -> object:
    """pydantic before-validator for config files: a bare number means seconds."""
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _bounded(value)
    return value
