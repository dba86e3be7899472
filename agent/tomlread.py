"""Read a TOML file an operator wrote, whatever it holds: a document, or one clear problem.

The parser is tomli, the code the standard library's tomllib was taken from, for its
compiled wheels: a thousand rules parse in a third of tomllib's time. It recurses once
per level of nesting, and TOML numbers and strings have no bounds, so a file can hold
what breaks a reader further on: thousands of nested arrays, ``inf``
and ``nan``, a thirty-digit integer, a string of many megabytes, bytes that are not
UTF-8. Each of those becomes a ``TomlProblem`` (line, field, message) here, before any
model sees the document, so ``check`` prints it and a reload rejects it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli

from agent.tomlpos import locate, toml_error_line

#: far above any real config or rule file, far below what hurts
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 16
MAX_STRING_CHARS = 65_536
#: integers a float holds exactly; thresholds and counts stay far below it
MAX_INTEGER = 2**53


@dataclass(frozen=True)
class TomlProblem(Exception):
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.line}: {self.field}: {self.message}"


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """The file's text and document; raise TomlProblem for anything unreadable or unsafe."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise TomlProblem(1, "file", f"{size} bytes; the limit is {MAX_FILE_BYTES}")
        data = path.read_bytes()
    except OSError as error:
        raise TomlProblem(1, "file", f"cannot read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise TomlProblem(
            line, "file", f"not UTF-8 text (byte 0x{data[error.start]:02x})"
        ) from None
    return text, parse_toml(text)


def parse_toml(text: str) -> dict[str, Any]:
    try:
        document = tomli.loads(text)
    except tomli.TOMLDecodeError as error:
        raise TomlProblem(toml_error_line(error), "toml", f"syntax error: {error}") from None
    except RecursionError:
        raise TomlProblem(
            _most_nested_line(text), "toml", f"nested more than {MAX_DEPTH} levels deep"
        ) from None
    _check_values(document, text.splitlines())
    return document


def _check_values(document: dict[str, Any], lines: list[str]) -> None:
    """Depth, number and string bounds, walked without recursion; a document found to
    break one is walked again, keeping each value's location, to say where."""
    pending: list[tuple[int, Any]] = [(0, document)]
    while pending:
        depth, value = pending.pop()
        kind = type(value)
        if kind is dict:
            pending.extend((depth + 1, item) for item in value.values())
        elif kind is list:
            pending.extend((depth + 1, item) for item in value)
        elif kind is str and len(value) <= MAX_STRING_CHARS and depth <= MAX_DEPTH:
            continue
        if _value_problem(value, depth):
            _locate_problem(document, lines)


def _locate_problem(document: dict[str, Any], lines: list[str]) -> None:
    pending: list[tuple[tuple[Any, ...], Any]] = [((), document)]
    while pending:
        location, value = pending.pop()
        problem = _value_problem(value, len(location))
        if problem:
            raise TomlProblem(locate(lines, location), _field(location), problem)
        if isinstance(value, dict):
            pending.extend(((*location, key), item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend(((*location, index), item) for index, item in enumerate(value))


def _value_problem(value: Any, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        return f"nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a usable number"
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        return f"number too large (more than {len(str(MAX_INTEGER))} digits)"
    if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
        return f"text of {len(value)} characters; the limit is {MAX_STRING_CHARS}"
    return None


def _field(location: tuple[Any, ...]) -> str:
    """``rule[2].condition.value``; the first few levels only for a deep location."""
    shown = ""
    for part in location[:4]:
        shown += f"[{part}]" if isinstance(part, int) else f".{part}" if shown else str(part)
    return (shown + ("…" if len(location) > 4 else "")) or "document"


def _most_nested_line(text: str) -> int:
    lines = text.splitlines() or [""]
    counts = [line.count("[") + line.count("{") for line in lines]
    return counts.index(max(counts)) + 1
