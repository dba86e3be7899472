"""Query planning: distinct queries are fetched once per cycle."""

from datetime import date

from agent.collect.models import AnalyticsQuery, Metric
from agent.evaluate.engine import Engine
from agent.evaluate.planner import ExecutionsRequest, Planner, plan
from agent.evaluate.sources import MemorySource

from .helpers import MIN, T0, CountingSource, rule


def status_rule(name: str, services: str = '["cdn"]', window: str = "5m", stacks: str = "[]"):
    return rule(
        f"""
name = "{name}"
[query]
metric = "status_codes"
services = {services}
stacks = {stacks}
window = "{window}"
[value]
function = "ratio"
numerator = {{ status = "5xx" }}
[condition]
type = "threshold"
op = ">"
value = 0.1
"""
    )


def test_hundred_rules_on_the_same_query_cost_one_request():
    rules = [status_rule(f"r{i}") for i in range(100)]
    source = CountingSource(MemorySource([]))
    Engine(rules, source).evaluate(T0)
    assert len(source.requests) == 1


def test_windows_and_services_merge_into_one_query_with_the_union():
    the_plan = plan(
        [
            status_rule("a", '["cdn"]', "5m"),
            status_rule("b", '["cma"]', "6h"),
        ],
        T0,
    )
    (query,) = the_plan.requests
    assert isinstance(query, AnalyticsQuery)
    assert query.services == ("cdn", "cma")
    assert query.duration == "minute"
    assert query.start == date(2024, 5, 1)  # 6h + a minute back from 2024-05-01 12:00
    assert query.end == date(2024, 5, 1)


def test_different_granularities_are_different_queries():
    the_plan = plan([status_rule("a", window="5m"), status_rule("b", window="2d")], T0)
    assert sorted(q.duration for q in the_plan.requests) == ["hour", "minute"]


def test_each_stack_is_its_own_query():
    the_plan = plan([status_rule("a", stacks='["s1", "s2"]'), status_rule("b")], T0)
    keys = sorted(str(q.api_key) for q in the_plan.requests if isinstance(q, AnalyticsQuery))
    assert keys == ["None", "s1", "s2"]


def test_rules_only_see_the_services_they_asked_for():
    from agent.collect.models import Sample

    rows = [
        Sample("http-statuses", T0 + MIN, {"service": "cdn", "status": "500"}, {"count": 10}),
        Sample("http-statuses", T0 + MIN, {"service": "cma", "status": "200"}, {"count": 10}),
    ]
    source = CountingSource(MemorySource(rows))
    engine = Engine([status_rule("cdn", '["cdn"]'), status_rule("cma", '["cma"]')], source)
    engine.evaluate(T0 + 3 * MIN)
    assert len(source.requests) == 1
    assert engine.instances["cdn"][()].state.value == 1.0
    assert engine.instances["cma"][()].state.value == 0.0


def test_usage_with_different_services_is_not_merged():
    usage = """
name = "{name}"
[query]
metric = "usage"
services = ["{service}"]
[condition]
type = "threshold"
op = ">"
value = 1
"""
    the_plan = plan(
        [rule(usage.format(name="a", service="cdn")), rule(usage.format(name="b", service="cma"))],
        T0,
    )
    assert len(the_plan.requests) == 2
    assert all(q.metric is Metric.USAGE for q in the_plan.requests)


def test_execution_logs_merge_per_project_from_the_earliest_time():
    text = """
name = "{name}"
[query]
metric = "executions"
projects = ["p1"]
window = "{window}"
[condition]
type = "threshold"
op = ">"
value = 1
"""
    the_plan = plan(
        [rule(text.format(name="a", window="5m")), rule(text.format(name="b", window="1h"))], T0
    )
    (request,) = the_plan.requests
    assert request == ExecutionsRequest("p1", T0 - 60 * MIN)


def test_a_kept_plan_is_reused_until_a_rules_dates_change():
    rules = [status_rule("a", window="1h"), status_rule("b", services='["cma"]')]
    planner = Planner()
    evening = T0.replace(hour=23, minute=30)
    first = planner.plan(rules, evening)
    assert planner.plan(rules, evening + 20 * MIN) is first
    # past midnight the 1 h rule still reads yesterday, and both read the new day
    after_midnight = planner.plan(rules, evening + 40 * MIN)
    assert after_midnight == plan(rules, evening + 40 * MIN)
    (query,) = after_midnight.requests
    assert isinstance(query, AnalyticsQuery)
    assert (query.start, query.end) == (date(2024, 5, 1), date(2024, 5, 2))
    # a changed rule under the same name is planned again
    changed = [status_rule("a", window="1h", stacks='["blt1"]'), rules[1]]
    assert planner.plan(changed, evening + 41 * MIN) == plan(changed, evening + 41 * MIN)
