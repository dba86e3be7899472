"""Reading a Retrieve Data answer row by row gives what ``json.loads`` gives, or refuses
what it refuses, small answers and a day of minute rows alike; a ``SampleBlock`` gives
back the Samples put into it."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from agent.collect.analytics.pages import read_page
from agent.collect.analytics.rows import RowReader, parse_rows
from agent.collect.block import SampleBlock
from agent.collect.models import AnalyticsQuery, Metric, Sample

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
others = st.dictionaries(st.text(max_size=6).filter(lambda k: k != "data"), values, max_size=3)


def read(body: bytes) -> tuple[Any, list[Any]]:
    rows: list[Any] = []
    return read_page(body, rows.append), rows


@given(
    rows=st.lists(values, max_size=6),
    before=others,
    after=others,
    indent=st.sampled_from([None, 0, 2]),
)
def test_rows_and_totals_are_those_json_loads_finds(
    rows: list[Any], before: dict[str, Any], after: dict[str, Any], indent: int | None
) -> None:
    document = {**before, "data": rows, **{k: v for k, v in after.items() if k not in before}}
    document["totalDocs"] = len(rows)
    info, found = read(json.dumps(document, indent=indent).encode())
    assert found == json.loads(json.dumps(rows))
    assert info is not None
    assert info.rows == len(rows)
    assert info.total_rows() == len(rows)


@pytest.mark.parametrize(
    ("body", "rows"),
    [
        (b'{"data": {"count": 1}}', [{"count": 1}]),  # one object is one row
        (b'\xef\xbb\xbf{"data": []}', []),  # a UTF-8 byte order mark
        ('{"data": ["é"]}'.encode("utf-16"), ["é"]),
    ],
)
def test_forms_json_loads_reads(body: bytes, rows: list[Any]) -> None:
    info, found = read(body)
    assert info is not None
    assert found == rows


@pytest.mark.parametrize("body", [b'{"meta": {}}', b'{"data": null}', b"{}"])
def test_no_data_yet_is_none(body: bytes) -> None:
    assert read(body) == (None, [])


@pytest.mark.parametrize(
    "body",
    [
        b"<html>gateway</html>",
        b"",
        b"[1, 2]",
        b'"text"',
        b'{"data": "rows"}',
        b'{"data": [1, 2}',
        b'{"data": [1, 2]',
        b'{"data": [1 2]}',
        b'{"data": [1], "data": [2]}',
        b'{"data": [1]} trailing',
        b"{data: [1]}",
        b'{"data" [1]}',
        b"\xff\xfe\xfd",
        b'{"data": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
    ],
)
def test_what_is_not_an_object_of_rows_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        read(body)


@given(st.binary(max_size=40))
def test_junk_gives_rows_or_a_value_error(body: bytes) -> None:
    try:
        expected = json.loads(body)
    except (ValueError, RecursionError):
        expected = ValueError
    try:
        info, found = read(body)
    except ValueError:
        assert (
            expected is ValueError
            or not isinstance(expected, dict)
            or (expected.get("data") is not None and not isinstance(expected["data"], list | dict))
        )
        return
    assert isinstance(expected, dict)
    data = expected.get("data")
    assert found == ([] if data is None else [data] if isinstance(data, dict) else data)
    assert (info is None) == (data is None)


def day_of_rows(rng: random.Random) -> list[Any]:
    """A day of status-code rows at minute granularity, in the forms answers take: statuses
    as the documented text and as numbers, counts as text, escaped and non-ASCII labels,
    rows with a date only, a few junk rows."""
    start = datetime(2024, 3, 9, tzinfo=UTC)
    rows: list[Any] = []
    for minute in range(rng.randint(1000, 1440)):
        at = (start + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        for status in rng.sample(["200", "304", "404", "503", "5xx", 404, 200.0, 'é\\u00e9"x'], 3):
            count: Any = rng.choice([rng.randint(0, 10**6), rng.random() * 1e3, str(minute)])
            rows.append(
                {"date": at, "type": rng.choice(["cdn", "cma"]), "status": status, "count": count}
            )
        if rng.random() < 0.01:
            rows.append(
                rng.choice([{"date": at}, None, "row", [1, {"a": []}], {"date": at, "count": "x"}])
            )
    return rows


# (a seed does not shrink into a smaller day: a failure is reported as found)
@settings(max_examples=10, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(
    seed=st.integers(0, 2**32),
    indent=st.sampled_from([None, 1]),
    ascii_only=st.booleans(),
)
def test_a_day_of_rows_read_row_by_row_gives_the_samples_json_loads_gives(
    seed: int, indent: int | None, ascii_only: bool
) -> None:
    rows = day_of_rows(random.Random(seed))
    document = {"meta": {"jobId": "j1"}, "data": rows, "totalDocs": len(rows)}
    body = json.dumps(document, indent=indent, ensure_ascii=ascii_only).encode()
    query = AnalyticsQuery(Metric.HTTP_STATUSES, date(2024, 3, 9), date(2024, 3, 9), api_key="blt1")
    reader = RowReader(query)
    info = read_page(body, reader.take)
    assert info is not None and info.rows == len(rows) == info.total_rows()
    assert list(reader.finish()) == list(parse_rows(query, json.loads(body)["data"]))


def test_a_block_gives_back_its_samples() -> None:
    at = datetime(2024, 3, 1, 12, 5, tzinfo=UTC)
    samples = [
        Sample("usage", at, {"stack": "a"}, {"total_cdn_count": 5.0, "total_api_count": 2.0}),
        Sample("usage", None, {"stack": "a", "url": "/x"}, {"count": 1.0}),
        Sample("usage", at.replace(minute=1), {"stack": "a"}, {}),
    ]
    block = SampleBlock.of(samples)
    assert list(block) == samples
    assert block[-1] == samples[-1]
    assert block[1:] == samples[1:]
    assert (block.undated, block.ordered) == (1, False)
    assert SampleBlock.of(block) is block
    with pytest.raises(IndexError):
        block[3]
