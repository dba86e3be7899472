"""Row and date parsing: every documented quirk, and junk never raises anything but BadRow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.collect.analytics import BadRow, parse_row
from agent.collect.models import Metric
from agent.collect.parsing import parse_number, parse_timestamp

FEB5 = datetime(2024, 2, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-02-05", FEB5),
        ("2024-02-05T00:00:00Z", FEB5),
        ("2024-02-05T00:00:00", FEB5),
        ("2024-02-05T00:00", FEB5),
        ("2024-02-05T00:00:00.000Z", FEB5),
        ("2024-02-05T00:00:00.123456789Z", FEB5.replace(microsecond=123456)),
        ("2024-02-05T01:30:00+01:30", FEB5),
        ("2024-02-04T19:00:00-0500", FEB5),
        ("2024-02-05 00:00:00", FEB5),
        ("2024-02-05 13:45:10", datetime(2024, 2, 5, 13, 45, 10, tzinfo=UTC)),
        (1707091200, FEB5),
        (1707091200.0, FEB5),
        ("1707091200", FEB5),
        (1707091200000, FEB5),
        ("1707091200000", FEB5),
        ("2024-02", datetime(2024, 2, 1, tzinfo=UTC)),
    ],
)
def test_date_forms(raw: Any, expected: datetime) -> None:
    parsed = parse_timestamp(raw)
    assert parsed == expected
    assert parsed.tzinfo is not None
    assert parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "raw",
    ["", "yesterday", "2024-13-01", "2024-02-30", "2024-02-05T25:00:00", True, None, [1], 1e300],
)
def test_bad_dates(raw: Any) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(raw)


@pytest.mark.parametrize(
    ("raw", "expected"), [(7, 7.0), ("1", 1.0), (" 12 ", 12.0), ("2.5", 2.5), (0, 0.0)]
)
def test_numbers(raw: Any, expected: float) -> None:
    assert parse_number(raw) == expected


@pytest.mark.parametrize("raw", [True, "ten", "", "nan", "inf", float("nan"), None, {}, "1,000"])
def test_bad_numbers(raw: Any) -> None:
    with pytest.raises(ValueError):
        parse_number(raw)


def test_status_code_row() -> None:
    row = {"count": 63, "type": "cma", "status": "200", "date": "2024-02-05"}
    sample = parse_row(Metric.HTTP_STATUSES, row, stack="blt1")
    assert sample.at == FEB5
    assert sample.labels == {"service": "cma", "status": "200", "stack": "blt1"}
    assert sample.values == {"count": 63.0}


def test_cache_row() -> None:
    row = {"count": 7, "type": "cdn", "status": "miss", "date": "2024-02-09"}
    sample = parse_row(Metric.CACHE, row)
    assert sample.labels == {"service": "cdn", "cache": "MISS"}


def test_usage_row() -> None:
    row = {
        "total_api_bandwidth": 94685,
        "total_api_count": 26,
        "total_cdn_bandwidth": 0,
        "total_cdn_count": "0",
        "date": "2024-03-04",
    }
    sample = parse_row(Metric.USAGE, row)
    assert sample.values == {
        "total_api_bandwidth": 94685.0,
        "total_api_count": 26.0,
        "total_cdn_bandwidth": 0.0,
        "total_cdn_count": 0.0,
    }
    assert sample.labels == {}


def test_devices_and_sdk_rows() -> None:
    device = parse_row(
        Metric.DEVICES,
        {"count": 164, "type": "cma", "device": "sdk x; platform y; os z;", "date": "2024-02-05"},
    )
    assert device.labels == {"service": "cma", "device": "sdk x; platform y; os z;"}
    sdk = parse_row(
        Metric.SDK,
        {"count": 7, "type": "cdn", "sdk": "cda-collection/v9.31.0", "date": "2024-02-05"},
    )
    assert sdk.labels == {"service": "cdn", "sdk": "cda-collection/v9.31.0"}


def test_top_url_row_has_string_count_and_no_date() -> None:
    sample = parse_row(Metric.TOP_URLS, {"url": "/v3/content_types", "type": "cdn", "count": "1"})
    assert sample.at is None
    assert sample.values == {"count": 1.0}
    assert sample.labels == {"service": "cdn", "url": "/v3/content_types"}


@pytest.mark.parametrize("metric", [Metric.HTTP_STATUSES, Metric.CACHE, Metric.SDK])
def test_date_only_row_is_a_zero_sample(metric: Metric) -> None:
    sample = parse_row(metric, {"date": "2024-02-05"}, default_service="cdn")
    assert sample.at == FEB5
    assert sample.values == {"count": 0.0}
    assert sample.labels == {"service": "cdn"}


def test_date_only_usage_row_is_all_zero() -> None:
    sample = parse_row(Metric.USAGE, {"date": "2024-02-05"})
    assert set(sample.values.values()) == {0.0}
    assert len(sample.values) == 4


def test_unknown_fields_are_ignored() -> None:
    row = {"count": 1, "type": "cdn", "status": "200", "date": "2024-02-05", "region": "eu"}
    assert parse_row(Metric.HTTP_STATUSES, row).labels == {"service": "cdn", "status": "200"}


def test_subscription_keeps_numeric_fields() -> None:
    row = {"bandwidth": "12", "builds": 3, "plan": "pro"}
    assert parse_row(Metric.SUBSCRIPTION, row).values == {"bandwidth": 12.0, "builds": 3.0}


@pytest.mark.parametrize(
    "row",
    [
        {"count": "abc", "date": "2024-02-05"},
        {"count": True, "date": "2024-02-05"},
        {"count": [1], "date": "2024-02-05"},
        {"count": 1, "date": "31/12/2024"},
        {"count": 1, "date": {"$date": 1}},
        "row",
        None,
        [1, 2],
    ],
)
def test_bad_rows_raise_bad_row(row: Any) -> None:
    with pytest.raises(BadRow):
        parse_row(Metric.HTTP_STATUSES, row)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**45)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
row_like = st.fixed_dictionaries(
    {},
    optional={
        "count": json_values | st.from_regex(r"\A-?\d{1,12}(\.\d+)?\Z"),
        "date": json_values
        | st.datetimes().map(lambda d: d.isoformat())
        | st.from_regex(r"\A\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?\Z"),
        "type": json_values,
        "status": json_values,
        "url": json_values,
        "total_api_count": json_values,
    },
)


@given(metric=st.sampled_from(list(Metric)), row=row_like | json_values)
def test_row_parser_never_raises_anything_but_bad_row(metric: Metric, row: Any) -> None:
    try:
        sample = parse_row(metric, row, stack="s", default_service="cdn")
    except BadRow:
        return
    assert all(isinstance(v, float) for v in sample.values.values())
    assert all(isinstance(v, str) for v in sample.labels.values())
    assert sample.at is None or sample.at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@given(st.one_of(st.text(max_size=40), st.integers(), st.floats()))
def test_date_parser_raises_only_value_error(raw: Any) -> None:
    try:
        parsed = parse_timestamp(raw)
    except ValueError:
        return
    assert parsed.tzinfo is not None
