"""Parameters the documentation marks required are always sent."""

from datetime import date

from agent.collect.analytics import build_params
from agent.collect.models import AnalyticsQuery, Metric


def query(metric: Metric, **kw: object) -> AnalyticsQuery:
    return AnalyticsQuery(metric, date(2024, 3, 1), date(2024, 3, 2), duration="day", **kw)  # type: ignore[arg-type]


def test_sdk_and_top_urls_get_their_required_flags():
    sdk = build_params(
        query(Metric.SDK, services=("cdn",)), date(2024, 3, 1), date(2024, 3, 2), "o"
    )
    assert sdk["includeCount"] == "true"
    urls = build_params(query(Metric.TOP_URLS), date(2024, 3, 1), date(2024, 3, 2), "o")
    assert urls["includeTotalCount"] == "true"


def test_a_rule_can_override_a_default_but_not_the_range_or_organization():
    params = build_params(
        query(Metric.SDK, params=(("includeCount", "false"), ("orgUid", "evil"), ("from", "x"))),
        date(2024, 3, 1),
        date(2024, 3, 2),
        "org",
    )
    assert params["includeCount"] == "false"
    assert (params["orgUid"], params["from"], params["to"]) == ("org", "2024-03-01", "2024-03-02")
