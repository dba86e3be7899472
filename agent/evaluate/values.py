"""From rows to numbers: split samples into alert instances and reduce each window to a value.

Pure functions over windows of rows (``Window``); no I/O, no clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from agent.collect.models import Sample
from agent.evaluate.rules import Filter, ValueSpec

InstanceKey = tuple[tuple[str, str], ...]


def matches(sample: Sample, where: Filter) -> bool:
    return labels_match(sample.labels, where)


def labels_match(labels: Mapping[str, str], where: Filter) -> bool:
    for key, wanted in where.items():
        actual = labels.get(key)
        if actual is None:
            return False
        options = wanted if isinstance(wanted, list) else [wanted]
        if not any(_label_matches(key, actual, option) for option in options):
            return False
    return True


def _label_matches(key: str, actual: str, wanted: str) -> bool:
    if wanted.startswith("!"):
        return not _label_matches(key, actual, wanted[1:])
    if key == "status":
        if wanted.endswith("xx") and len(wanted) == 3:
            return actual[:1] == wanted[0] and len(actual) == 3
        if "-" in wanted:
            low, high = wanted.split("-", 1)
            return actual.isdigit() and int(low) <= int(actual) <= int(high)
    return actual.lower() == wanted.lower()


def instance_key(sample: Sample, group_by: Sequence[str]) -> InstanceKey:
    return tuple((label, sample.labels.get(label, "")) for label in group_by)


def split_instances(
    samples: Iterable[Sample], group_by: Sequence[str]
) -> dict[InstanceKey, list[Sample]]:
    groups: dict[InstanceKey, list[Sample]] = defaultdict(list)
    for sample in samples:
        groups[instance_key(sample, group_by)].append(sample)
    return groups


class Window(Protocol):
    """The rows of one alert instance, read by time range ``(after, until]``.

    Two readers answer it: ``SampleWindow`` over a list of rows (rule tests, backtests,
    execution logs) and ``agent.evaluate.history``'s columnar series (the daemon).
    """

    def rows(self, after: datetime, until: datetime) -> int:
        """How many rows lie in the range (rows without a date always count)."""
        ...

    def total(self, field: str, where: Filter, after: datetime, until: datetime) -> float:
        """The sum of ``field`` over the rows in the range that match ``where``."""
        ...

    def last(self, field: str, where: Filter, after: datetime, until: datetime) -> float | None:
        """``field`` of the latest matching row in the range that has it."""
        ...


class SampleWindow:
    def __init__(self, samples: Sequence[Sample]) -> None:
        self.samples = samples

    def _in(self, after: datetime, until: datetime) -> list[Sample]:
        """Rows dated in ``(after, until]``; rows without a date (top URLs) always count."""
        return [s for s in self.samples if s.at is None or after < s.at <= until]

    def rows(self, after: datetime, until: datetime) -> int:
        return len(self._in(after, until))

    def total(self, field: str, where: Filter, after: datetime, until: datetime) -> float:
        return sum(s.values.get(field, 0.0) for s in self._in(after, until) if matches(s, where))

    def last(self, field: str, where: Filter, after: datetime, until: datetime) -> float | None:
        dated = [s for s in self._in(after, until) if matches(s, where) and field in s.values]
        if not dated:
            return None
        latest = max(dated, key=lambda s: s.at.timestamp() if s.at else float("-inf"))
        return latest.values[field]


def reduce_window(
    spec: ValueSpec, window: Window, after: datetime, until: datetime
) -> float | None:
    """The value of the window ``(after, until]``, or None when there is nothing to measure.

    A count or sum over rows that exist but match nothing is 0; over no rows at all
    it is None (no data). A ratio whose denominator is below ``min_denominator`` is
    None: 1 error out of 2 requests is not a 50 % error rate worth a page.
    """
    if not window.rows(after, until):
        return None
    if spec.function == "ratio":
        numerator = window.total(spec.field, spec.numerator, after, until)
        denominator = window.total(spec.field, spec.denominator, after, until)
        if denominator < max(spec.min_denominator, 1e-12):
            return None
        return numerator / denominator
    if spec.function == "last":
        return window.last(spec.field, spec.where, after, until)
    return window.total(spec.field, spec.where, after, until)


class SharedValues:
    """``reduce_window`` for many rules at once: rules that read the same instance's
    window with the same value over the same range (the 5xx share over 5 minutes, in
    rules with different thresholds) compute it once. Valid while the rows stay as they
    are: the owner calls ``clear`` before they change (the windows are held until then,
    so an id is never reused for another window)."""

    def __init__(self) -> None:
        #: (value spec, range) → id(window) → (the window, its value); spec "" counts rows
        self._found: dict[tuple[str, datetime, datetime], dict[int, tuple[Window, float | None]]]
        self._found = {}
        #: (value spec, range, the windows' ids) → (the windows, their values): rules of one
        #: shape ask for the same windows in the same order
        self._lists: dict[tuple[object, ...], tuple[Sequence[Window], list[float | None]]]
        self._lists = {}

    def clear(self) -> None:
        self._found.clear()
        self._lists.clear()

    def values(
        self,
        spec: ValueSpec,
        spec_key: str,
        windows: Sequence[Window],
        after: datetime,
        until: datetime,
    ) -> list[float | None]:
        """The value of each window over ``(after, until]``; ``spec_key`` is the canonical
        form of ``spec``. (The list may be shared with other callers: read only.)"""
        return self._measured(
            spec_key, windows, after, until, lambda w: reduce_window(spec, w, after, until)
        )

    def rows(
        self, windows: Sequence[Window], after: datetime, until: datetime
    ) -> list[float | None]:
        """How many rows each window has in ``(after, until]`` (read only, as ``values``)."""
        return self._measured("", windows, after, until, lambda w: w.rows(after, until))

    def _measured(
        self,
        spec_key: str,
        windows: Sequence[Window],
        after: datetime,
        until: datetime,
        measure: Callable[[Window], float | None],
    ) -> list[float | None]:
        whole = (spec_key, after, until, tuple(map(id, windows)))
        hit = self._lists.get(whole)
        if hit is not None:
            return hit[1]
        found = self._found.setdefault((spec_key, after, until), {})
        values: list[float | None] = []
        for window in windows:
            known = found.get(id(window))
            if known is None:
                known = found[id(window)] = (window, measure(window))
            values.append(known[1])
        self._lists[whole] = (windows, values)
        return values
