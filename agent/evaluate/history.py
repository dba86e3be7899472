"""The fetched Analytics rows, kept once, as columns: what the daemon's rules read windows from.

One ``QueryHistory`` per query family (``planner.merge_key``: metric, granularity,
stack, params) holds one time axis of bucket starts and, per series (one set of row
labels: service, status, cache, ...), running sums of each value field and of the
rows present. A window ``(after, until]`` is two look-ups on the axis and a difference
per series, whatever its length; many rules over the same query share the columns.

Rows arrive whole days at a time (the API takes dates); a fetch only touches the
buckets from the last one held (which may have been incomplete) onwards. Buckets
before it are final, so a fetch that reaches no further back is merged, and one that
reaches further back than the columns rebuilds them. Retention is what the rules
look back over, per service: a service only short rules read (cma beside a week of cdn)
keeps its series' recent buckets only (``Series.first``).
"""

from __future__ import annotations

import bisect
from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from agent.collect.block import SampleBlock
from agent.collect.models import Sample
from agent.evaluate.rules import Filter
from agent.evaluate.values import InstanceKey, labels_match


@dataclass
class Series:
    labels: dict[str, str]
    #: running sum of rows present: ``present[i - first]`` rows in buckets before index i
    #: of the time axis
    present: array[int]
    #: field → running sum of the field, aligned like ``present``
    sums: dict[str, array[float]] = field(default_factory=dict)
    #: the first index of the time axis the arrays hold: a series whose readers look back
    #: less far than the others' (a service only short rules read) is trimmed further
    first: int = 0


class QueryHistory:
    def __init__(self) -> None:
        self.times: array[float] = array("d")
        self.series: list[Series] = []
        self._by_labels: dict[tuple[tuple[str, str], ...], Series] = {}
        self._splits: dict[tuple[tuple[str, ...], tuple[str, ...]], dict[InstanceKey, list[Series]]]
        self._splits = {}
        self._spans: dict[tuple[datetime, datetime], tuple[int, int]] = {}
        #: days wholly fetched after they ended: their rows will not change any more
        self.final_through: date | None = None
        #: the first day the columns hold completely, or (once retention has trimmed them)
        #: as far back into it as the rules that read them look
        self.covered_from: date | None = None
        #: changes whenever a series or a column is added or the columns are rebuilt (not
        #: when buckets are appended or dropped: the arrays are changed in place), so
        #: readers built over the columns know when to rebuild
        self.layout = 0

    # -- writing ----------------------------------------------------------------------------

    def merge(self, rows: Sequence[Sample], start: date, end: date, now: datetime) -> None:
        """Take a fetch of the days ``start..end`` made at ``now`` (rows without a date
        are not series: they are left out)."""
        block = SampleBlock.of(rows)
        if self.covered_from is None or start < self.covered_from:
            self._clear()
            self.covered_from = start
            keep_from = float("-inf")
        else:
            # the last bucket held may have been in progress: it is replaced
            keep_from = self.times[-1] if self.times else float("-inf")
        order = _in_time_order(block, keep_from)
        if order and keep_from != float("-inf"):
            self._truncate(bisect.bisect_left(self.times, block.stamps[order[0]]))
        self._take(block, order)
        self._spans = {}
        today = now.astimezone(UTC).date()
        final = min(end, today - timedelta(days=1))
        if final >= start and (self.final_through is None or final > self.final_through):
            self.final_through = final

    def _take(self, block: SampleBlock, order: Sequence[int]) -> None:
        """Append the rows ``order`` names (in time order), one bucket at a time."""
        stamps, labels_of, fields = block.stamps, block.labels_of, block.fields
        starts, value_fields, values = block.value_starts, block.value_fields, block.values
        series_of: dict[int, Series] = {}
        counted: dict[int, tuple[Series, dict[str, float]]] = {}
        current: float | None = None
        for index in order:
            stamp = stamps[index]
            if stamp != current:
                if current is not None:
                    self._append(current, counted)
                current, counted = stamp, {}
            label = labels_of[index]
            series = series_of.get(label)
            if series is None:
                series = series_of[label] = self._series(block.label_sets[label])
            entry = counted.get(label)
            if entry is None:
                entry = counted[label] = (series, {})
            sums = entry[1]
            for at in range(starts[index], starts[index + 1]):
                name = fields[value_fields[at]]
                sums[name] = sums.get(name, 0.0) + values[at]
            sums[""] = sums.get("", 0.0) + 1  # the row count
        if current is not None:
            self._append(current, counted)

    def _clear(self) -> None:
        self.times = array("d")
        self.series = []
        self._by_labels = {}
        self._splits = {}
        self.final_through = None
        self.layout += 1

    def _series(self, labels: dict[str, str]) -> Series:
        key = tuple(sorted(labels.items()))
        found = self._by_labels.get(key)
        if found is None:
            present = array("i", [0] * (len(self.times) + 1))
            found = self._by_labels[key] = Series(dict(labels), present)
            self.series.append(found)
            self._splits = {}
            self.layout += 1
        return found

    def _append(self, stamp: float, counted: dict[int, tuple[Series, dict[str, float]]]) -> None:
        """A bucket: per series that has rows in it, its sums and row count (``""``)."""
        found = {id(series): values for series, values in counted.values()}
        size = len(self.times)
        self.times.append(stamp)
        for series in self.series:
            values = found.get(id(series), {})
            series.present.append(series.present[-1] + int(values.get("", 0)))
            for name in values.keys() - series.sums.keys() - {""}:
                series.sums[name] = array("d", [0.0] * (size + 1 - series.first))
                self.layout += 1
            for name, column in series.sums.items():
                column.append(column[-1] + values.get(name, 0.0))

    def _truncate(self, index: int) -> None:
        """Drop the buckets from ``index`` on (a merge replaces the last one held at most,
        and no series starts after it: see ``forget_before``)."""
        del self.times[index:]
        for series in self.series:
            del series.present[index + 1 - series.first :]
            for column in series.sums.values():
                del column[index + 1 - series.first :]

    def forget_before(
        self, moment: datetime, by_service: Mapping[str, datetime] | None = None
    ) -> None:
        """Drop buckets that start before ``moment`` (retention: what the rules look back
        to); the running sums stay valid. The day ``moment`` falls in counts as covered:
        no rule reading these columns looks further back into it. ``by_service``: the
        later moments the readers of some services' series look back to; those series
        drop their buckets before it (the time axis stays as long as the longest)."""
        index = bisect.bisect_left(self.times, moment.timestamp())
        if _worth_trimming(index, len(self.times)):
            del self.times[:index]
            self._spans = {}
            for series in self.series:
                series.first -= index
                if series.first < 0:
                    _drop_front(series, -series.first)
                    series.first = 0
            day = moment.astimezone(UTC).date()
            if self.covered_from is None or day > self.covered_from:
                self.covered_from = day
        if not by_service:
            return
        for series in self.series:
            later = by_service.get(series.labels.get("service", ""))
            if later is None:
                continue
            # (the last bucket stays: a merge may replace it)
            own = min(bisect.bisect_left(self.times, later.timestamp()), len(self.times) - 1)
            if _worth_trimming(own - series.first, len(self.times) - series.first):
                _drop_front(series, own - series.first)
                series.first = own

    # -- reading ----------------------------------------------------------------------------

    def span(self, after: datetime, until: datetime) -> tuple[int, int]:
        """Indexes of the buckets in ``(after, until]``; every instance of every rule with
        this window asks, so the answer is kept until the columns change."""
        found = self._spans.get((after, until))
        if found is None:
            found = self._spans[(after, until)] = (
                bisect.bisect_right(self.times, after.timestamp()),
                bisect.bisect_right(self.times, until.timestamp()),
            )
        return found

    def split(
        self, group_by: tuple[str, ...], services: tuple[str, ...]
    ) -> dict[InstanceKey, list[Series]]:
        """Series per alert instance (once per query and split, not once per rule)."""
        key = (group_by, services)
        found = self._splits.get(key)
        if found is None:
            found = defaultdict(list)
            wanted = set(services)
            for series in self.series:
                service = series.labels.get("service")
                if wanted and service is not None and service not in wanted:
                    continue
                found[tuple((label, series.labels.get(label, "")) for label in group_by)].append(
                    series
                )
            self._splits[key] = found = dict(found)
        return found


def _worth_trimming(stale: int, held: int) -> bool:
    """Trimming is a copy: it is done once the stale part is worth it (every few hours)."""
    return stale >= max(64, held // 64)


def _drop_front(series: Series, count: int) -> None:
    del series.present[:count]
    for column in series.sums.values():
        del column[:count]


def _in_time_order(block: SampleBlock, keep_from: float) -> Sequence[int]:
    """The block's rows dated at or after ``keep_from``, in time order (rows of one bucket
    in the order they came)."""
    stamps = block.stamps
    if block.ordered and not block.undated:
        return range(bisect.bisect_left(stamps, keep_from), len(stamps))
    # (a row without a date is NaN, which no comparison admits)
    kept = [index for index in range(len(stamps)) if stamps[index] >= keep_from]
    return sorted(kept, key=stamps.__getitem__)


#: one query's series a filter selects for a field: the history (its time axis) and, per
#: series, the series and its column of the field
_Columns = tuple["QueryHistory", list[tuple[Series, "array[float]"]]]


class SeriesWindow:
    """A ``values.Window`` over the series of one alert instance, in one or more queries.

    Built once per instance and kept while the columns' layout holds: which columns a
    filter selects is worked out on first use, after that a window is two look-ups on
    the time axis and one difference per selected column. A window never reaches before
    a series' ``first`` bucket: its retention is what the rules reading it look back to.
    """

    # one per alert instance series: no attribute dict each
    __slots__ = ("_present", "_selected", "parts")

    def __init__(self, parts: Iterable[tuple[QueryHistory, list[Series]]]) -> None:
        self.parts = list(parts)
        self._present = [
            (history, [(s, s.present) for s in found]) for history, found in self.parts
        ]
        #: (field, id(filter)) → (the filter, per query the columns it selects)
        self._selected: dict[tuple[str, int], tuple[Filter, list[_Columns]]] = {}

    def _columns(self, field_name: str, where: Filter) -> list[_Columns]:
        selected = self._selected.get((field_name, id(where)))
        if selected is None or selected[0] is not where:
            chosen = [
                (
                    history,
                    [
                        (s, s.sums[field_name])
                        for s in found
                        if field_name in s.sums and labels_match(s.labels, where)
                    ],
                )
                for history, found in self.parts
            ]
            selected = self._selected[(field_name, id(where))] = (where, chosen)
        return selected[1]

    def rows(self, after: datetime, until: datetime) -> int:
        count = 0
        for history, presents in self._present:
            low, high = history.span(after, until)
            if low < high:
                for series, present in presents:
                    first = series.first
                    count += present[high - first] - present[low - first]
        return count

    def total(self, field_name: str, where: Filter, after: datetime, until: datetime) -> float:
        total = 0.0
        for history, columns in self._columns(field_name, where):
            low, high = history.span(after, until)
            if low < high:
                for series, column in columns:
                    first = series.first
                    total += column[high - first] - column[low - first]
        return total

    def last(
        self, field_name: str, where: Filter, after: datetime, until: datetime
    ) -> float | None:
        best: tuple[float, float] | None = None
        for history, columns in self._columns(field_name, where):
            low, high = history.span(after, until)
            for series, column in columns:
                present, first = series.present, series.first
                for index in range(high - 1, low - 1, -1):
                    at = index - first
                    if present[at + 1] > present[at]:
                        stamp = history.times[index]
                        if best is None or stamp > best[0]:
                            best = (stamp, column[at + 1] - column[at])
                        break
        return None if best is None else best[1]
