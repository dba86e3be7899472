"""The columnar history answers every window exactly as a scan over the rows would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.collect.models import Sample
from agent.evaluate.conditions import lookback
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


def status_rule(name: str, services: list[str], window: str, extra: str = "") -> str:
    listed = ", ".join(f'"{s}"' for s in services)
    return f"""
name = "{name}"
[query]
metric = "status_codes"
services = [{listed}]
window = "{window}"
{extra}
[value]
function = "count"
[condition]
type = "threshold"
op = "<"
value = 1
"""


WEEK_ON_CDN = """
name = "cdn-against-yesterday"
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


def test_a_cycle_fetches_only_the_days_not_yet_final():
    start = T0 - timedelta(days=2)
    rows = per_minute(
        "http-statuses", {"status": "200", "service": "cdn"}, [3.0] * 4000, start=start
    )
    source = CountingSource(MemorySource(rows))
    engine = Engine([rule(WEEK_ON_CDN)], source, watch_source=False)
    engine.evaluate(T0)
    engine.evaluate(T0 + MIN)
    first, second = source.requests
    assert first.start == DAY - timedelta(days=1)
    assert second.start == DAY  # yesterday was fetched whole after it ended
    instance = engine.all_instances()[0]
    assert instance.state.value == 0.0  # the same traffic as a day before


def test_a_rule_set_looking_further_back_fetches_the_trimmed_columns_anew():
    start = T0.replace(hour=0)
    rows = per_minute(
        "http-statuses", {"status": "200", "service": "cdn"}, [2.0] * 721, start=start
    )
    engine = Engine(
        [rule(status_rule("traffic-1h", ["cdn"], "1h"))], MemorySource(rows), watch_source=False
    )
    engine.evaluate(T0)
    (history,) = engine.history.values()
    assert history.times[0] > start.timestamp()  # trimmed to what the 1h rule reads
    engine.set_rules([rule(status_rule("traffic-6h", ["cdn"], "6h"))])
    engine.evaluate(T0)
    (instance,) = engine.all_instances()
    assert instance.state.value == 6 * 60 * 2.0


#: (service, status) → the rows' count every minute
COUNTS = {("cdn", "200"): 10.0, ("cdn", "500"): 1.0, ("cma", "200"): 4.0, ("cma", "500"): 2.0}


@pytest.mark.parametrize("cma_for_6h", [False, True])
def test_each_series_is_kept_as_far_back_as_the_rules_reading_it_look(cma_for_6h):
    """Retention per service: the cdn series stay for the rule looking a day back, the
    cma series only as far back as the rules reading cma look."""
    texts = [
        WEEK_ON_CDN,
        status_rule("cma-traffic", ["cma"], "30m"),
        status_rule("per-service", ["cdn", "cma"], "1h", 'group_by = ["service"]'),
    ]
    if cma_for_6h:
        texts.append(status_rule("cma-6h", ["cma"], "6h"))
    start = T0.replace(hour=0) - timedelta(days=1)
    minutes = int((T0 + 2 * timedelta(hours=1) - start) / MIN)
    rows = [
        row
        for (service, status), count in COUNTS.items()
        for row in per_minute(
            "http-statuses", {"service": service, "status": status}, [count] * minutes, start
        )
    ]
    engine = Engine([rule(text) for text in texts], MemorySource(rows), watch_source=False)
    for now in (T0, T0 + 10 * MIN, T0 + 90 * MIN):
        engine.evaluate(now)
        (history,) = engine.history.values()
        for read in engine.rules.values():
            after = (now - lookback(read)).timestamp()
            wanted = set(read.query.services)
            for series in history.series:
                if not wanted or series.labels["service"] in wanted:
                    assert history.times[series.first] <= after, (read.name, series.labels)
    values = {(i.rule, i.key): i.state.value for i in engine.all_instances()}
    assert values[("cma-traffic", ())] == 30 * (4.0 + 2.0)
    assert values[("per-service", (("service", "cma"),))] == 60 * (4.0 + 2.0)
    assert values[("per-service", (("service", "cdn"),))] == 60 * (10.0 + 1.0)
    cma = [s for s in history.series if s.labels["service"] == "cma"]
    held_back = T0 + 90 * MIN - (timedelta(hours=7) if cma_for_6h else timedelta(hours=2))
    assert all(history.times[s.first] >= held_back.timestamp() for s in cma)


def test_a_rule_looking_further_back_into_a_trimmed_service_fetches_it_anew():
    start = T0.replace(hour=0) - timedelta(days=1)
    rows = [
        row
        for (service, status), count in COUNTS.items()
        for row in per_minute(
            "http-statuses", {"service": service, "status": status}, [count] * 2200, start
        )
    ]
    short = [rule(WEEK_ON_CDN), rule(status_rule("cma-traffic", ["cma"], "30m"))]
    engine = Engine(short, MemorySource(rows), watch_source=False)
    engine.evaluate(T0)
    engine.set_rules([*short, rule(status_rule("cma-6h", ["cma"], "6h"))])
    engine.evaluate(T0)
    values = {i.rule: i.state.value for i in engine.all_instances()}
    assert values["cma-6h"] == 6 * 60 * (4.0 + 2.0)
