"""The columnar history answers every window exactly as a scan over the rows would."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.collect.models import Sample
from agent.evaluate.engine import Engine
from agent.evaluate.history import QueryHistory, SeriesWindow
from agent.evaluate.rules import ValueSpec
from agent.evaluate.sources import MemorySource
from agent.evaluate.values import SampleWindow, reduce_window, split_instances
from tests.evaluate.helpers import MIN, T0, CountingSource, per_minute, rule

DAY = T0.date()
STATUSES = ["200", "404", "500", "503"]
SERVICES = ["cdn", "cma"]
SPECS = [
    ValueSpec(function="count"),
    ValueSpec(function="count", where={"status": "5xx"}),
    ValueSpec(function="ratio", numerator={"status": "5xx"}, min_denominator=10),
    ValueSpec(function="ratio", numerator={"status": ["404", "!200"]}),
    ValueSpec(function="last", where={"status": "200"}),
]

rows_strategy = st.lists(
    st.tuples(
        st.integers(0, 40),
        st.sampled_from(STATUSES),
        st.sampled_from(SERVICES),
        st.integers(0, 500),
    ),
    max_size=120,
    unique_by=lambda row: row[:3],
)


def samples(rows: list[tuple[int, str, str, int]], upto: int) -> list[Sample]:
    return [
        Sample("http-statuses", T0 + minute * MIN, {"status": s, "service": v}, {"count": c})
        for minute, s, v, c in rows
        if minute <= upto
    ]


@settings(max_examples=60, deadline=None)
@given(
    rows=rows_strategy,
    fetches=st.lists(st.integers(0, 40), min_size=1, max_size=5),
    spec=st.sampled_from(SPECS),
    group_by=st.sampled_from([(), ("service",), ("status",)]),
    window=st.tuples(st.integers(-2, 42), st.integers(0, 30)),
)
def test_windows_equal_a_scan_of_the_rows(rows, fetches, spec, group_by, window):
    history = QueryHistory()
    # each fetch sees the minutes up to its time; the last one held is in progress
    for upto in sorted(fetches):
        partial = [(m, s, v, c // 2 if m == upto else c) for m, s, v, c in rows if m <= upto]
        history.merge(samples(partial, upto), DAY, DAY, T0 + upto * MIN)
    final = max(fetches)
    history.merge(samples(rows, final), DAY, DAY, T0 + final * MIN)
    expected = split_instances(samples(rows, final), group_by)
    actual = history.split(group_by, ())
    end, length = window
    after, until = T0 + (end - length) * MIN, T0 + end * MIN
    for key in set(expected) | set(actual):
        by_scan = reduce_window(spec, SampleWindow(expected.get(key, [])), after, until)
        by_columns = reduce_window(
            spec, SeriesWindow([(history, actual.get(key, []))]), after, until
        )
        assert (by_columns is None) == (by_scan is None), key
        if by_scan is not None and by_columns is not None:
            assert abs(by_columns - by_scan) <= 1e-9 * max(1.0, abs(by_scan))


def test_a_fetch_reaching_further_back_rebuilds_the_columns():
    history = QueryHistory()
    today = per_minute("http-statuses", {"status": "200"}, [5.0] * 10, start=T0)
    history.merge(today, DAY, DAY, T0 + 10 * MIN)
    earlier = per_minute("http-statuses", {"status": "200"}, [1.0] * 10, start=T0 - 10 * MIN)
    history.merge(earlier + today, DAY - timedelta(days=1), DAY, T0 + 10 * MIN)
    window = SeriesWindow([(history, history.split((), ())[()])])
    assert window.total("count", {}, T0 - 11 * MIN, T0 + 9 * MIN) == 10 * 1.0 + 10 * 5.0
    assert history.covered_from == DAY - timedelta(days=1)


def test_retention_drops_the_buckets_the_rules_no_longer_read():
    history = QueryHistory()
    start = T0 - timedelta(days=3)
    rows = per_minute("http-statuses", {"status": "200"}, [1.0] * (3 * 1440 + 1), start=start)
    history.merge(rows, start.date(), DAY, T0)
    moment = T0 - timedelta(days=1, hours=2)
    history.forget_before(moment)
    assert history.times[0] == moment.timestamp()
    assert history.covered_from == moment.date()
    window = SeriesWindow([(history, history.split((), ())[()])])
    assert window.total("count", {}, T0 - 60 * MIN, T0) == 60.0
    assert window.total("count", {}, moment - MIN, moment + 59 * MIN) == 60.0


def test_a_cycle_fetches_only_the_days_not_yet_final():
    text = """
name = "errors"
[query]
metric = "status_codes"
services = ["cdn"]
window = "1h"
[value]
function = "count"
[condition]
type = "change"
reference = "1d"
op = ">"
value = 50
"""
    start = T0 - timedelta(days=2)
    rows = per_minute(
        "http-statuses", {"status": "200", "service": "cdn"}, [3.0] * 4000, start=start
    )
    source = CountingSource(MemorySource(rows))
    engine = Engine([rule(text)], source, watch_source=False)
    engine.evaluate(T0)
    engine.evaluate(T0 + MIN)
    first, second = source.requests
    assert first.start == DAY - timedelta(days=1)
    assert second.start == DAY  # yesterday was fetched whole after it ended
    instance = engine.all_instances()[0]
    assert instance.state.value == 0.0  # the same traffic as a day before


def test_a_rule_set_looking_further_back_fetches_the_trimmed_columns_anew():
    def counting(window: str) -> str:
        return f"""
name = "traffic-{window}"
[query]
metric = "status_codes"
services = ["cdn"]
window = "{window}"
[value]
function = "count"
[condition]
type = "threshold"
op = "<"
value = 1
"""

    start = T0.replace(hour=0)
    rows = per_minute(
        "http-statuses", {"status": "200", "service": "cdn"}, [2.0] * 721, start=start
    )
    engine = Engine([rule(counting("1h"))], MemorySource(rows), watch_source=False)
    engine.evaluate(T0)
    (history,) = engine.history.values()
    assert history.times[0] > start.timestamp()  # trimmed to what the 1h rule reads
    engine.set_rules([rule(counting("6h"))])
    engine.evaluate(T0)
    (instance,) = engine.all_instances()
    assert instance.state.value == 6 * 60 * 2.0
