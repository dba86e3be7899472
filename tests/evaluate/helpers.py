"""Small builders shared by the evaluation tests."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.collect.models import Sample
from agent.evaluate.rules import Rule

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def rule(text: str) -> Rule:
    """A Rule from the body of one [[rule]] table written in TOML."""
    return Rule.model_validate(tomllib.loads(text))


def per_minute(
    metric: str, labels: dict[str, str], values: list[float | None], start: datetime = T0, **kw: Any
) -> list[Sample]:
    field = kw.get("field", "count")
    return [
        Sample(metric, start + i * MIN, dict(labels), {field: v})
        for i, v in enumerate(values)
        if v is not None
    ]


class CountingSource:
    """A MemorySource wrapper that records each request and can be told to fail."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.requests: list[Any] = []
        self.error: Exception | None = None

    def fetch(self, request: Any) -> list[Sample]:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return self.inner.fetch(request)
