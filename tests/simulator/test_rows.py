"""Row shapes, filters, ordering, date formats and quirks of the Analytics answers."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from agent.simulator import Quirks, Simulator
from tests.simulator.helpers import NOW, STACK_A, STACK_B, TODAY, Api, count, day_before

NO_QUIRKS = Quirks(
    string_counts=False, date_only_rows=False, extra_fields=False, include_count_as_string=False
)
ISO_MINUTE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00\.000Z$")


@pytest.fixture
def plain(make_sim, make_api) -> Api:
    """A simulator without quirks, for exact shape checks."""
    return make_api(make_sim(quirks=NO_QUIRKS))


def test_status_code_rows(plain: Api) -> None:
    rows = plain.job("http-statuses", duration="day", services=["cdn", "cma"])["data"]
    assert rows
    for row in rows:
        assert set(row) == {"count", "type", "status", "date"}
        assert isinstance(row["count"], int) and row["count"] > 0
        assert isinstance(row["status"], str) and row["status"].isdigit()
        assert row["date"] == TODAY
    assert {r["type"] for r in rows} == {"cdn", "cma"}
    assert {"200", "304", "404"} <= {r["status"] for r in rows}


def test_status_code_filter(plain: Api) -> None:
    rows = plain.job("http-statuses", duration="hour", services=["cdn"], httpStatusCode="5xx")
    assert rows["data"] and {r["status"][0] for r in rows["data"]} == {"5"}
    only = plain.job("http-statuses", duration="hour", services=["cdn"], httpStatusCode="404")
    assert {r["status"] for r in only["data"]} == {"404"}


def test_cache_rows_and_filter(plain: Api) -> None:
    rows = plain.job("hit-miss-ratio", duration="day", services=["cdn", "cma"])["data"]
    assert {r["status"] for r in rows} == {"HIT", "MISS"}
    assert {r["type"] for r in rows} == {"cdn"}  # the CMA is not cached
    for row in rows:
        assert set(row) == {"count", "type", "status", "date"}
    hits = sum(count(r) for r in rows if r["status"] == "HIT")
    assert 0.8 < hits / sum(count(r) for r in rows) < 0.95
    misses = plain.job("hit-miss-ratio", duration="day", services=["cdn"], cache="MISS")["data"]
    assert {r["status"] for r in misses} == {"MISS"}


def test_usage_rows(plain: Api) -> None:
    rows = plain.job("usage", duration="hour", services=["cdn", "cma"])["data"]
    assert len(rows) == 13
    for row in rows:
        assert set(row) == {
            "total_api_bandwidth",
            "total_api_count",
            "total_cdn_bandwidth",
            "total_cdn_count",
            "date",
        }
        assert row["total_cdn_count"] > row["total_api_count"] > 0
        assert row["total_cdn_bandwidth"] > row["total_cdn_count"]
    cdn_only = plain.job("usage", duration="hour", services=["cdn"])["data"]
    assert all(r["total_api_count"] == 0 for r in cdn_only)


def test_device_and_sdk_rows(plain: Api) -> None:
    devices = plain.rows("devices", duration="day", services=["cdn"], includeCount="true")
    assert devices
    for row in devices:
        assert set(row) == {"count", "type", "device", "date"}
        assert re.match(r"^sdk .+; platform .+; os .+;$", row["device"])
    sdks = plain.rows("sdk", duration="day", services=["cdn", "cma"], includeCount="true")
    for row in sdks:
        assert set(row) == {"count", "type", "sdk", "date"}
    assert "cda-collection/v9.31.0" in {r["sdk"] for r in sdks}


def test_sdk_limit_skip_and_order(plain: Api) -> None:
    params = {"duration": "hour", "services": ["cdn", "cma"], "includeCount": "true"}
    everything = plain.rows("sdk", orderBy="-1", **params)
    counts = [count(r) for r in everything]
    assert counts == sorted(counts, reverse=True)
    window = plain.job("sdk", orderBy="-1", limit="5", skip="2", **params)
    assert window["totalDocs"] == 5
    assert window["data"] == everything[2:7]
    ascending = [count(r) for r in plain.rows("sdk", orderBy="1", **params)]
    assert ascending == sorted(ascending)


def test_top_url_rows(plain: Api) -> None:
    body = plain.job("url", includeTotalCount="true", services=["cdn"])
    assert body["urlDataSource"]
    assert body["totalDocs"] >= len(body["data"]) > 0
    for row in body["data"]:
        assert set(row) == {"url", "type", "count"}
        assert isinstance(row["count"], str) and row["count"].isdigit()
        assert row["url"].startswith("/v3/")
    counts = [int(r["count"]) for r in body["data"]]
    assert counts == sorted(counts, reverse=True)


def test_subscription_rows(plain: Api) -> None:
    rows = plain.job("subscription")["data"]
    assert len(rows) == 1 and "total_requests" in rows[0]


def test_api_key_restricts_to_one_stack(plain: Api) -> None:
    def total(**params) -> int:
        rows = plain.job("usage", duration="day", services=["cdn"], **params)["data"]
        return sum(r["total_cdn_count"] for r in rows)

    both, a, b = total(), total(apiKey=STACK_A), total(apiKey=STACK_B)
    assert both == a + b
    assert a > b > 0  # stack B has half the weight


def test_only_started_buckets_are_returned(plain: Api) -> None:
    rows = plain.job("usage", duration="minute", services=["cdn"])["data"]
    assert len(rows) == 12 * 60 + 1  # 00:00 .. 12:00 inclusive
    assert rows[-1]["date"] == "2024-02-05T12:00:00.000Z"
    assert all(ISO_MINUTE.match(r["date"]) for r in rows)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("iso", "2024-02-05T10:00:00.000Z"),
        ("space", "2024-02-05 10:00:00"),
        ("epoch", int(datetime(2024, 2, 5, 10, tzinfo=UTC).timestamp())),
        ("epoch_ms", int(datetime(2024, 2, 5, 10, tzinfo=UTC).timestamp()) * 1000),
    ],
)
def test_subday_date_formats(make_sim, make_api, fmt: str, expected) -> None:
    api = make_api(make_sim(subday_date_format=fmt, quirks=NO_QUIRKS))
    rows = api.job("usage", duration="hour", services=["cdn"])["data"]
    assert rows[10]["date"] == expected
    day_rows = api.job("usage", duration="day", services=["cdn"])["data"]
    assert day_rows[0]["date"] == TODAY  # day and coarser are always YYYY-MM-DD


def test_second_buckets(plain: Api) -> None:
    plain.clock.set(NOW.replace(hour=0, minute=2))  # keep the answer small
    rows = plain.job("usage", duration="sec", services=["cdn"])["data"]
    assert len(rows) == 121
    assert rows[1]["date"] == "2024-02-05T00:00:01.000Z"
    assert rows[-1]["date"] == "2024-02-05T00:02:00.000Z"


@pytest.mark.parametrize(
    ("duration", "first", "dates"),
    [
        ("week", "2024-01-20", ["2024-01-15", "2024-01-22", "2024-01-29", "2024-02-05"]),
        ("month", "2024-01-20", ["2024-01-01", "2024-02-01"]),
        ("year", "2024-01-20", ["2024-01-01"]),
        ("historic", "2024-01-20", ["2024-01-20"]),
    ],
)
def test_coarse_buckets_are_dated_by_their_first_day(
    plain: Api, duration: str, first: str, dates: list[str]
) -> None:
    rows = plain.job("usage", duration=duration, services=["cdn"], **{"from": first})["data"]
    assert [r["date"] for r in rows] == dates


def test_week_bucket_counts_only_the_requested_days(plain: Api) -> None:
    params = {"services": ["cdn"], "from": day_before(2), "to": day_before(1)}
    days = plain.job("usage", duration="day", **params)["data"]
    weeks = plain.job("usage", duration="week", **params)["data"]
    assert sum(r["total_cdn_count"] for r in weeks) == sum(r["total_cdn_count"] for r in days)


def test_quirks_are_on_by_default(api: Api) -> None:
    body = api.job("sdk", duration="minute", services=["cdn", "cma"], includeCount="true")
    assert body["meta"]["includeCount"] == "true"
    rows = api.rows("http-statuses", duration="minute", services=["cdn", "cma"])
    assert any(set(r) == {"date"} for r in rows)  # a bare {"date": ...} row
    assert all("_src" in r for r in rows if "count" in r)  # an undocumented field


def test_string_counts_quirk(make_sim, make_api) -> None:
    api = make_api(make_sim(quirks=Quirks(string_counts=True)))
    rows = api.job("http-statuses", duration="hour", services=["cdn"])["data"]
    kinds = {type(r["count"]) for r in rows if "count" in r}
    assert kinds == {int, str}


def test_include_count_is_boolean_without_quirk(plain: Api) -> None:
    body = plain.job("sdk", duration="day", services=["cdn"], includeCount="true")
    assert body["meta"]["includeCount"] is True


def test_quirks_from_the_scenario(make_sim, make_api) -> None:
    from tests.simulator.helpers import make_scenario

    sim: Simulator = make_sim(make_scenario(quirks=NO_QUIRKS, subday_date_format="space"))
    api = make_api(sim)
    rows = api.job("usage", duration="hour", services=["cdn"])["data"]
    assert rows[0]["date"] == "2024-02-05 00:00:00" and "_src" not in rows[0]
