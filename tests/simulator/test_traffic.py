"""The traffic model: determinism, aggregation consistency, incidents, cost."""

from __future__ import annotations

from collections import defaultdict

from agent.simulator import Scenario, Stack
from agent.simulator.traffic import TrafficModel
from tests.simulator.helpers import NOW, STACK_A, STACK_B, Api, count, day_before


def _five_share(rows: list[dict], hour_from: int, hour_to: int) -> float:
    total = errors = 0
    for row in rows:
        if "count" not in row:
            continue
        hour = int(row["date"][11:13])
        if hour_from <= hour < hour_to:
            total += count(row)
            errors += count(row) if row["status"].startswith("5") else 0
    return errors / total


def test_same_seed_same_numbers_other_seed_other_numbers(make_sim, make_api) -> None:
    from tests.simulator.helpers import make_scenario

    first = make_api(make_sim()).job("http-statuses", duration="hour", services=["cdn"])
    again = make_api(make_sim()).job("http-statuses", duration="hour", services=["cdn"])
    other = make_api(make_sim(make_scenario(seed=2))).job(
        "http-statuses", duration="hour", services=["cdn"]
    )
    assert first["data"] == again["data"]
    assert first["data"] != other["data"]


def test_hour_equals_sum_of_its_minutes_and_day_sum_of_hours(api: Api) -> None:
    params = {"services": ["cdn", "cma"], "from": day_before(1), "to": day_before(1)}
    minutes = api.job("usage", duration="minute", **params)["data"]
    hours = api.job("usage", duration="hour", **params)["data"]
    days = api.job("usage", duration="day", **params)["data"]
    by_hour: dict[str, int] = defaultdict(int)
    for row in minutes:
        by_hour[row["date"][:13]] += row["total_cdn_count"] + row["total_api_count"]
    assert len(hours) == 24 and len(minutes) == 1440
    for row in hours:
        assert by_hour[row["date"][:13]] == row["total_cdn_count"] + row["total_api_count"]
    assert days[0]["total_cdn_count"] == sum(r["total_cdn_count"] for r in hours)
    assert days[0]["total_api_bandwidth"] == sum(r["total_api_bandwidth"] for r in hours)


def test_status_counts_agree_across_granularities_up_to_rounding(api: Api) -> None:
    params = {"services": ["cdn"], "from": day_before(1), "to": day_before(1)}
    per_status: dict[str, dict[str, int]] = {"minute": defaultdict(int), "day": defaultdict(int)}
    for duration in per_status:
        for row in api.rows("http-statuses", duration=duration, **params):
            if "count" in row:
                per_status[duration][row["status"]] += count(row)
    assert sum(per_status["minute"].values()) == sum(per_status["day"].values())
    for status, day_count in per_status["day"].items():
        assert abs(per_status["minute"][status] - day_count) <= max(50, day_count * 0.02)


def test_seconds_add_up_to_their_minute(api: Api) -> None:
    api.clock.set(NOW.replace(hour=0, minute=10))
    seconds = api.job("usage", duration="sec", services=["cdn"])["data"]
    minutes = api.job("usage", duration="minute", services=["cdn"])["data"]
    last_full_minute = [r for r in seconds if r["date"].startswith("2024-02-05T00:09")]
    assert len(last_full_minute) == 60
    expected = next(r for r in minutes if r["date"].startswith("2024-02-05T00:09"))
    assert sum(r["total_cdn_count"] for r in last_full_minute) == expected["total_cdn_count"]


def test_5xx_spike_is_visible(api: Api) -> None:
    rows = api.rows("http-statuses", duration="minute", services=["cdn"], apiKey=STACK_A)
    before = _five_share(rows, 7, 10)
    during = _five_share(rows, 10, 10 + 1)  # 10:00-10:30 at 30 %, 10:30-11:00 baseline
    assert before < 0.03
    assert 0.1 < during < 0.25
    spike_minutes = [r for r in rows if "count" in r and r["date"][11:16] == "10:15"]
    share = sum(count(r) for r in spike_minutes if r["status"][0] == "5") / sum(
        count(r) for r in spike_minutes
    )
    assert 0.15 < share < 0.45
    # Stack B is untouched.
    other = api.rows("http-statuses", duration="hour", services=["cdn"], apiKey=STACK_B)
    assert _five_share(other, 10, 11) < 0.03


def test_cache_drop_is_visible(api: Api) -> None:
    rows = api.rows("hit-miss-ratio", duration="minute", services=["cdn"], apiKey=STACK_A)

    def hit_ratio(prefix: str) -> float:
        chosen = [r for r in rows if "count" in r and r["date"][11:13] + r["date"][14:15] == prefix]
        hits = sum(count(r) for r in chosen if r["status"] == "HIT")
        return hits / sum(count(r) for r in chosen)

    assert hit_ratio("091") < 0.4  # 09:10-09:19, ratio 0.3
    assert hit_ratio("094") > 0.85  # 09:40-09:49, baseline 0.9


def test_traffic_zero_means_no_rows(api: Api) -> None:
    rows = api.job("usage", duration="minute", services=["cma"], apiKey=STACK_B)["data"]
    dates = {r["date"][11:16] for r in rows}
    assert "07:59" in dates and "09:00" in dates
    assert not any(d.startswith("08:") for d in dates)


def test_slow_burn_ramps_up(api: Api) -> None:
    rows = api.rows("http-statuses", duration="minute", services=["cdn"], apiKey=STACK_B)
    early, late = _five_share(rows, 6, 7), _five_share(rows, 7, 8)
    assert 0.05 < early < late < 0.5
    assert _five_share(rows, 8, 9) < 0.03


def test_seasonality_peaks_at_the_peak_hour() -> None:
    scenario = Scenario(seed=3, stacks=[Stack("blt1")], incidents=[], projects=[])
    model = TrafficModel(scenario.resolve(NOW))
    channel = model.channels[("blt1", "cdn")]  # peak hour 14
    day = 19760  # some day, in hours since the epoch / 24
    assert channel.hour_total(day * 24 + 14) > 1.3 * channel.hour_total(day * 24 + 2)
