"""Positions in TOML text, for messages: the TOML parser reports none for values.

``locate`` walks a file's text to the table, sub-table and key a validation error
names, so problems read ``FILE:LINE: field: message``. It never parses values.
"""

from __future__ import annotations

import re
from typing import Any

import tomli

_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")


def toml_error_line(error: tomli.TOMLDecodeError) -> int:
    """The line a TOML syntax error points at (Python 3.11 only says it in the message)."""
    match = re.search(r"at line (\d+)", str(error))
    return int(match.group(1)) if match else 1


def locate(lines: list[str], location: tuple[Any, ...]) -> int:
    """Best line number (1-based) for a location such as ("rule", 2, "query", "window")."""
    keys = [part for part in location if isinstance(part, str) and part not in _UNION_TAGS]
    if not keys:
        return 1
    top = keys[0]
    index = next((part for part in location if isinstance(part, int)), None)
    starts = [i for i, line in enumerate(lines) if line.strip().startswith(f"[[{top}]]")]
    if index is not None and starts:
        # an element of an array of tables, e.g. the third [[rule]]
        if index >= len(starts):
            return 1
        start = starts[index]
        end = starts[index + 1] if index + 1 < len(starts) else len(lines)
        best, table, cursor, rest = start + 1, top, start, keys[1:]
    else:
        start, end, best, table, cursor, rest = 0, len(lines), 1, "", 0, keys
    for key in rest:
        key = "for" if key == "for_" else key
        dotted = f"{table}.{key}" if table else key
        header = _find_header(lines, dotted, start, end)
        if header:
            best = header
            table = dotted
            cursor = header - 1
            continue
        found = _find_key(lines, cursor, _table_end(lines, cursor, end), key)
        if found:
            best = found
            cursor = found - 1
        break
    return best


_UNION_TAGS = {"threshold", "change", "nodata", "anomaly"}


def _table_end(lines: list[str], table_start: int, limit: int) -> int:
    for number in range(table_start + 1, limit):
        if _HEADER.match(lines[number]):
            return number
    return limit


def _find_header(lines: list[str], dotted: str, start: int = 0, end: int | None = None) -> int:
    for number in range(start, len(lines) if end is None else end):
        match = _HEADER.match(lines[number])
        if match and match.group(1).replace(" ", "") == dotted:
            return number + 1
    return 0


def _find_key(lines: list[str], start: int, end: int, key: str) -> int:
    pattern = re.compile(rf"(^|[{{,\s])[\"']?{re.escape(key)}[\"']?\s*=")
    for number in range(start, end):
        if pattern.search(lines[number].split("#", 1)[0]):
            return number + 1
    return 0
