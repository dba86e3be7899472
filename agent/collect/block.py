"""One answer's rows, stored compactly: what a day or a week of minute rows is parsed into.

A week of one stack's status codes is some 60,000 rows. As ``Sample`` objects (two dicts,
a datetime and the dataclass each) they take about 40 MB for a moment, and a daemon that
parses them at the same time as it builds its long-lived state keeps much of that heap
for good (free memory stranded between live objects). A ``SampleBlock`` keeps the same
rows in a few flat arrays (under 30 bytes a row) and hands out ``Sample``s on demand,
so readers that want rows still get rows, and the engine's columns read the arrays.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import overload

from agent.collect.models import Sample

_UNDATED = math.nan


class SampleBlock(Sequence[Sample]):
    """Rows of one metric; each row is a bucket time (or none), a label set and values."""

    __slots__ = (
        "_field_index",
        "_label_index",
        "_last_dated",
        "fields",
        "label_sets",
        "labels_of",
        "metric",
        "ordered",
        "stamps",
        "undated",
        "value_fields",
        "value_starts",
        "values",
    )

    def __init__(self, metric: str) -> None:
        self.metric = metric
        #: per row: its bucket start (epoch seconds), NaN for a row without a date
        self.stamps = array("d")
        #: the distinct label sets, and per row the index of its own
        self.label_sets: list[dict[str, str]] = []
        self.labels_of = array("i")
        #: the distinct value names; per row its values are
        #: ``values[value_starts[i]:value_starts[i + 1]]``, named by ``value_fields``
        self.fields: list[str] = []
        self.value_starts = array("i", [0])
        self.value_fields = array("i")
        self.values = array("d")
        #: rows without a date
        self.undated = 0
        #: whether the dated rows come in time order (the API sends them so)
        self.ordered = True
        self._label_index: dict[tuple[tuple[str, str], ...], int] = {}
        self._field_index: dict[str, int] = {}
        self._last_dated = -math.inf

    @classmethod
    def of(cls, samples: Iterable[Sample], metric: str | None = None) -> SampleBlock:
        """A block holding ``samples`` (itself when it is one already); its metric is the
        first sample's unless given."""
        if isinstance(samples, SampleBlock):
            return samples
        rows = samples if isinstance(samples, Sequence) else list(samples)
        block = cls(metric if metric is not None else (rows[0].metric if rows else ""))
        for sample in rows:
            block.add(sample.at, sample.labels, sample.values)
        return block

    def add(self, at: datetime | None, labels: dict[str, str], values: dict[str, float]) -> None:
        if at is None:
            stamp = _UNDATED
            self.undated += 1
        else:
            stamp = at.timestamp()
            if stamp < self._last_dated:
                self.ordered = False
            self._last_dated = stamp
        self.stamps.append(stamp)
        key = tuple(sorted(labels.items()))
        index = self._label_index.get(key)
        if index is None:
            index = self._label_index[key] = len(self.label_sets)
            self.label_sets.append(dict(labels))
        self.labels_of.append(index)
        for name, value in values.items():
            field = self._field_index.get(name)
            if field is None:
                field = self._field_index[name] = len(self.fields)
                self.fields.append(name)
            self.value_fields.append(field)
            self.values.append(value)
        self.value_starts.append(len(self.values))

    def parts(self, index: int) -> tuple[datetime | None, dict[str, str], dict[str, float]]:
        """Row ``index`` as (bucket time, labels, values): the labels are shared, not copied."""
        stamp = self.stamps[index]
        at = None if math.isnan(stamp) else datetime.fromtimestamp(stamp, UTC)
        low, high = self.value_starts[index], self.value_starts[index + 1]
        fields = self.fields
        values = {fields[self.value_fields[k]]: self.values[k] for k in range(low, high)}
        return at, self.label_sets[self.labels_of[index]], values

    def __len__(self) -> int:
        return len(self.stamps)

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("row index out of range")
        at, labels, values = self.parts(index)
        return Sample(self.metric, at, dict(labels), values)

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self)):
            yield self[index]


def samples_of(rows: Sequence[Sample]) -> list[Sample]:
    """Rows as a plain list of Samples (a block's are built here)."""
    return rows if isinstance(rows, list) else list(rows)
