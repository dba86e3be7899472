"""From rows to numbers: split samples into alert instances and reduce each window to a value.

Pure functions over ``Sample`` lists; no I/O, no clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from agent.collect.models import Sample
from agent.evaluate.rules import Filter, ValueSpec

InstanceKey = tuple[tuple[str, str], ...]


def matches(sample: Sample, where: Filter) -> bool:
    for key, wanted in where.items():
        actual = sample.labels.get(key)
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


def in_window(samples: Iterable[Sample], after: datetime, until: datetime) -> list[Sample]:
    """Rows dated in ``(after, until]``; rows without a date (top URLs) always count."""
    return [s for s in samples if s.at is None or after < s.at <= until]


def reduce_window(spec: ValueSpec, samples: Sequence[Sample]) -> float | None:
    """The window's value, or None when there is nothing to measure.

    A count or sum over rows that exist but match nothing is 0; over no rows at all
    it is None (no data). A ratio whose denominator is below ``min_denominator`` is
    None: 1 error out of 2 requests is not a 50 % error rate worth a page.
    """
    if not samples:
        return None
    if spec.function == "ratio":
        numerator = _total(spec.field, (s for s in samples if matches(s, spec.numerator)))
        denominator = _total(spec.field, (s for s in samples if matches(s, spec.denominator)))
        if denominator < max(spec.min_denominator, 1e-12):
            return None
        return numerator / denominator
    selected = [s for s in samples if matches(s, spec.where)]
    if spec.function == "last":
        dated = [s for s in selected if spec.field in s.values]
        if not dated:
            return None
        latest = max(dated, key=lambda s: s.at.timestamp() if s.at else float("-inf"))
        return latest.values[spec.field]
    return _total(spec.field, selected)


def _total(field: str, samples: Iterable[Sample]) -> float:
    return sum(s.values.get(field, 0.0) for s in samples)
