"""Analytics rows → Samples: one row at a time into a ``SampleBlock``, bad rows skipped,
split ranges merged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog

from agent.collect.block import SampleBlock
from agent.collect.models import AnalyticsQuery, Metric, Sample
from agent.collect.parsing import parse_number, parse_timestamp

log = structlog.get_logger("agent.collect.analytics")

#: keys tried, in order, for a row's bucket time (only ``date`` is documented).
_DATE_KEYS = ("date", "datetime", "timestamp", "time")
#: row field → label, per metric; ``type`` → ``service`` applies to all.
_LABEL_FIELDS: dict[Metric, tuple[tuple[str, str], ...]] = {
    Metric.HTTP_STATUSES: (("status", "status"), ("httpStatusCode", "status")),
    Metric.CACHE: (("status", "cache"), ("cache", "cache")),
    Metric.DEVICES: (("device", "device"),),
    Metric.SDK: (("sdk", "sdk"),),
    Metric.TOP_URLS: (("url", "url"),),
}
USAGE_TOTALS = ("total_api_count", "total_cdn_count", "total_api_bandwidth", "total_cdn_bandwidth")


class BadRow(ValueError):
    """A row that cannot become a Sample; it is skipped with a warning."""


def assemble(
    query: AnalyticsQuery,
    answers: Sequence[Sequence[Any] | Exception],
    held: Mapping[AnalyticsQuery, datetime],
) -> SampleBlock | Exception:
    """One query's rows from its jobs' answers (blocks read already, or raw rows), or the
    first error among them."""
    blocks: list[SampleBlock] = []
    for answer in answers:
        if isinstance(answer, Exception):
            return answer
        if isinstance(answer, SampleBlock):
            blocks.append(answer)
        else:
            blocks.append(parse_rows(query, answer, held.get(query)))
    if len(blocks) == 1:
        return blocks[0]
    merged = _merge_dateless([sample for block in blocks for sample in block])
    return SampleBlock.of(merged, query.metric.value)


class RowReader:
    """One job's rows parsed as they are read (those dated before ``newer_than`` left out);
    bad rows are skipped and reported in one warning by ``finish``."""

    def __init__(self, query: AnalyticsQuery, newer_than: datetime | None = None) -> None:
        self.query = query
        self.newer_than = newer_than
        self.block = SampleBlock(query.metric.value)
        self.problems: list[str] = []
        self._service = query.services[0] if len(query.services) == 1 else None

    def take(self, row: Any) -> None:
        if self.newer_than is not None and _dated_before(row, self.newer_than):
            return
        try:
            self.block.add(*_parts(self.query.metric, row, self.query.api_key, self._service))
        except BadRow as problem:
            self.problems.append(str(problem))

    def finish(self) -> SampleBlock:
        if self.problems:
            log.warning(
                "analytics.rows.skipped",
                metric=self.query.metric.value,
                skipped=len(self.problems),
                examples=self.problems[:3],
            )
        return self.block


def parse_rows(
    query: AnalyticsQuery, rows: Sequence[Any], newer_than: datetime | None = None
) -> SampleBlock:
    """Samples from rows (those dated before ``newer_than`` left out); bad rows are
    skipped and reported in one warning."""
    reader = RowReader(query, newer_than)
    for row in rows:
        reader.take(row)
    return reader.finish()


def parse_row(
    metric: Metric,
    row: Any,
    *,
    stack: str | None = None,
    default_service: str | None = None,
) -> Sample:
    """One row → one Sample; raises BadRow (never anything else) for junk.

    A row without a count (the documented ``{"date": ...}`` form) becomes a zero
    sample rather than being dropped, so rules can tell "no traffic" from "no data";
    it gets the ``service`` label when the query asked for exactly one service.
    A count that is present but not a finite number (or a boolean) makes the row bad.
    """
    at, labels, values = _parts(metric, row, stack, default_service)
    return Sample(metric=metric.value, at=at, labels=labels, values=values)


_Parts = tuple[datetime | None, dict[str, str], dict[str, float]]


def _parts(metric: Metric, row: Any, stack: str | None, default_service: str | None) -> _Parts:
    """A row's bucket time, labels and values; raises BadRow (never anything else)."""
    try:
        return _parse_row(metric, row, stack, default_service)
    except BadRow:
        raise
    except Exception as error:  # the last line of defence: junk must not crash collection
        raise BadRow(f"unreadable row ({type(error).__name__})") from None


def _parse_row(metric: Metric, row: Any, stack: str | None, default_service: str | None) -> _Parts:
    if not isinstance(row, dict):
        raise BadRow(f"row is a {type(row).__name__}, not an object")
    at = None
    for key in _DATE_KEYS:
        if row.get(key) is not None:
            try:
                at = parse_timestamp(row[key])
            except ValueError as error:
                raise BadRow(str(error)) from None
            break

    labels: dict[str, str] = {}
    service = _label(row.get("type")) or default_service
    if service:
        labels["service"] = service
    for field_name, label in _LABEL_FIELDS.get(metric, ()):
        value = _label(row.get(field_name))
        if value is not None and label not in labels:
            labels[label] = value.upper() if label == "cache" else value
    if stack:
        labels["stack"] = stack

    values: dict[str, float] = {}
    if metric is Metric.USAGE:
        for key in USAGE_TOTALS:
            values[key] = _number(row, key)
        for key in row:
            if isinstance(key, str) and key.startswith("total_") and key not in values:
                values[key] = _number(row, key)
    elif metric is Metric.SUBSCRIPTION:
        # shape undocumented: keep every numeric field, ignore the rest
        for key, raw in row.items():
            if isinstance(key, str) and key not in _DATE_KEYS:
                try:
                    values[key] = parse_number(raw)
                except ValueError:
                    continue
    else:
        values["count"] = _number(row, "count")
    return at, labels, values


def _dated_before(row: Any, moment: datetime) -> bool:
    if not isinstance(row, dict):
        return False
    for key in _DATE_KEYS:
        if row.get(key) is not None:
            try:
                return parse_timestamp(row[key]) < moment
            except ValueError:
                return False  # reported as a bad row by the full parse
    return False


def _number(row: dict[str, Any], key: str) -> float:
    raw = row.get(key)
    if raw is None:
        return 0.0
    try:
        return parse_number(raw)
    except ValueError as error:
        raise BadRow(f"{key}: {error}") from None


def _label(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        # a status sent as a number: 200 and 200.0 are both "200"
        return str(int(value)) if float(value).is_integer() else str(value)
    return None


def _merge_dateless(samples: list[Sample]) -> list[Sample]:
    """Sum dateless rows (top URLs) with equal labels: each split job counted its own part."""
    merged: dict[tuple[tuple[str, str], ...], Sample] = {}
    result: list[Sample] = []
    for sample in samples:
        if sample.at is not None:
            result.append(sample)
            continue
        key = tuple(sorted(sample.labels.items()))
        existing = merged.get(key)
        if existing is None:
            merged[key] = Sample(sample.metric, None, dict(sample.labels), dict(sample.values))
            result.append(merged[key])
        else:
            for name, value in sample.values.items():
                existing.values[name] = existing.values.get(name, 0.0) + value
    return result
