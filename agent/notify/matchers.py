"""Label matchers shared by routes, silences, inhibit rules and maintenance windows."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Op = Literal["=", "!=", "=~", "!~"]
_SYNTAX = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    name: str
    op: Op
    value: str

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as error:
                raise ValueError(f"invalid regex in matcher {self}: {error}") from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        # A missing label is the empty string, as in Alertmanager: ``team!=ops`` matches
        # alerts without ``team``, ``team=`` matches only those.
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


def parse_matcher(text: str) -> Matcher:
    """``KEY=VALUE``, ``KEY!=VALUE``, ``KEY=~REGEX`` or ``KEY!~REGEX`` (value may be quoted)."""
    found = _SYNTAX.match(text)
    if not found:
        raise ValueError(f"invalid matcher {text!r}; use KEY=VALUE, KEY!=VALUE or KEY=~REGEX")
    name, op, value = found.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return Matcher(name, op, value)  # type: ignore[arg-type]


def parse_matchers(texts: Iterable[str]) -> list[Matcher]:
    return [parse_matcher(text) for text in texts]


def all_match(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(matcher.matches(labels) for matcher in matchers)
