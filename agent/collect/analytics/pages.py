"""A Retrieve Data answer read row by row, so a week of rows never exists as one list.

``json.loads`` would build every row of a big answer at once (a week of one stack's
minute rows is some 25 MB of dicts) before the first is parsed; here the top-level
object is read key by key with the standard decoder and each element of ``data`` is
decoded and handed over on its own, then dropped. What is accepted is what
``json.loads`` accepts: the same decoder reads every value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.collect.parsing import parse_number

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True)
class PageInfo:
    """What a page says besides its rows."""

    #: rows handed over
    rows: int
    total_docs: Any = None
    total: Any = None

    def total_rows(self) -> int | None:
        for candidate in (self.total_docs, self.total):
            try:
                return int(parse_number(candidate))
            except ValueError:
                continue
        return None


def read_page(body: bytes, take_row: Callable[[Any], None]) -> PageInfo | None:
    """Hand each row of ``data`` to ``take_row``; None when there is no ``data`` yet (the
    job still runs). A ``data`` that is one object is one row. ValueError when the body
    is not a JSON object or ``data`` is neither a list nor an object (rows handed over
    by then are the caller's to drop)."""
    try:
        text = body.decode(json.detect_encoding(body))
        return _read(text.removeprefix("\ufeff"), take_row)
    except (UnicodeDecodeError, IndexError) as error:
        raise ValueError(f"not JSON ({type(error).__name__})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _read(text: str, take_row: Callable[[Any], None]) -> PageInfo | None:
    at = _skip(text, 0)
    if text[at] != "{":
        raise ValueError("the answer is not a JSON object")
    at = _skip(text, at + 1)
    found: dict[str, Any] = {}
    rows: int | None = None
    if text[at] == "}":
        return _end(text, at, None, found, take_row)
    while True:
        if text[at] != '"':
            raise ValueError("not JSON: a key expected")
        key, at = _DECODER.raw_decode(text, at)
        at = _skip(text, at)
        if text[at] != ":":
            raise ValueError("not JSON: ':' expected")
        at = _skip(text, at + 1)
        if key == "data" and text[at] == "[" and rows is None:
            rows, at = _rows(text, at, take_row)
        else:
            if key == "data" and rows is not None:
                raise ValueError("'data' given twice")
            found[key], at = _DECODER.raw_decode(text, at)
        at = _skip(text, at)
        if text[at] == "}":
            return _end(text, at, rows, found, take_row)
        if text[at] != ",":
            raise ValueError("not JSON: ',' or '}' expected")
        at = _skip(text, at + 1)


def _rows(text: str, at: int, take_row: Callable[[Any], None]) -> tuple[int, int]:
    """The elements of the array at ``at``, each handed over as it is decoded."""
    count = 0
    at = _skip(text, at + 1)
    if text[at] == "]":
        return count, at + 1
    while True:
        row, at = _DECODER.raw_decode(text, at)
        take_row(row)
        count += 1
        if text[at] != ",":
            at = _skip(text, at)
        if text[at] == "]":
            return count, at + 1
        if text[at] != ",":
            raise ValueError("not JSON: ',' or ']' expected")
        at = _skip(text, at + 1)


def _end(
    text: str,
    at: int,
    rows: int | None,
    found: dict[str, Any],
    take_row: Callable[[Any], None],
) -> PageInfo | None:
    if _skip(text, at + 1) != len(text):
        raise ValueError("not JSON: extra data after the object")
    if rows is None:
        data = found.get("data")
        if data is None:
            return None
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise ValueError("'data' is not a list of rows")
        for row in data:
            take_row(row)
        rows = len(data)
    return PageInfo(rows, found.get("totalDocs"), found.get("total"))


def _skip(text: str, at: int) -> int:
    match = _SPACE.match(text, at)
    assert match is not None  # (the pattern matches the empty string)
    return match.end()
