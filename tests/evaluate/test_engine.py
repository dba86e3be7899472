"""Conditions evaluated through the engine with explicit times (no I/O, no sleeping)."""

from datetime import timedelta

import pytest

from agent.collect.errors import AuthenticationFailed
from agent.evaluate.alerts import AlertState
from agent.evaluate.engine import SOURCE_DOWN, Engine
from agent.evaluate.instances import Instance
from agent.evaluate.sources import MemorySource

from .helpers import MIN, T0, CountingSource, per_minute, rule

STATUS_RULE = """
name = "{name}"
for = "{for_}"
summary = "{{{{ value | pct }}}} of {{{{ stack }}}} failing (limit {{{{ threshold | pct }}}})"
[query]
metric = "status_codes"
services = ["cdn"]
stacks = ["s1", "s2"]
window = "3m"
[value]
function = "ratio"
numerator = {{ status = "5xx" }}
[condition]
type = "threshold"
op = ">"
value = 0.1
"""


def status_rows(stack: str, ok: list[float], errors: list[float]):
    labels = {"service": "cdn", "stack": stack}
    return per_minute("http-statuses", {**labels, "status": "200"}, ok) + per_minute(
        "http-statuses", {**labels, "status": "500"}, errors
    )


def states(engine, rule_name):
    return {
        dict(i.key).get("stack", ""): i.state.state for i in engine.instances[rule_name].values()
    }


def test_each_stack_is_its_own_instance_with_its_own_state():
    rows = status_rows("s1", [100] * 10, [50] * 10) + status_rows("s2", [100] * 10, [0] * 10)
    engine = Engine([rule(STATUS_RULE.format(name="r", for_="0s"))], MemorySource(rows))
    report = engine.evaluate(T0 + 5 * MIN)
    assert states(engine, "r") == {"s1": AlertState.FIRING, "s2": AlertState.INACTIVE}
    (transition,) = report.transitions
    assert transition.labels["stack"] == "s1"
    assert transition.labels["alertname"] == "r"
    assert transition.value == pytest.approx(50 / 150)
    assert transition.annotations["summary"] == "33.3% of s1 failing (limit 10%)"


def test_restored_instances_keep_the_labels_they_were_stored_with():
    engine = Engine(
        [rule(STATUS_RULE.format(name="r", for_="0s"))],
        MemorySource([]),
        stack_names={"s1": "Production"},
    )
    fresh = {"stack": "s1", "stack_name": "Production", "alertname": "r", "severity": "warning"}
    # stored while s2 had a name the configuration no longer gives it
    renamed = {**fresh, "stack": "s2", "stack_name": "Staging"}
    engine.restore(Instance("r", (("stack", "s1"),), dict(fresh), "f1"))
    engine.restore(Instance("r", (("stack", "s2"),), dict(renamed), "f2"))
    engine.evaluate(T0 + 5 * MIN)
    instances = engine.instances["r"]
    assert instances[(("stack", "s1"),)].labels == fresh
    assert instances[(("stack", "s2"),)].labels == renamed
    # a reading of the labels is a copy: changing it changes neither instance
    instances[(("stack", "s1"),)].labels["stack"] = "elsewhere"
    assert instances[(("stack", "s1"),)].labels == fresh


def test_listed_stack_without_rows_is_nodata():
    rows = status_rows("s1", [100] * 10, [0] * 10)
    engine = Engine([rule(STATUS_RULE.format(name="r", for_="0s"))], MemorySource(rows))
    engine.evaluate(T0 + 5 * MIN)
    assert states(engine, "r") == {"s1": AlertState.INACTIVE, "s2": AlertState.NODATA}


def test_for_holds_the_alert_pending_across_evaluations():
    rows = status_rows("s1", [100] * 20, [50] * 20)
    engine = Engine([rule(STATUS_RULE.format(name="r", for_="2m"))], MemorySource(rows))
    seen = []
    for minute in range(4, 8):
        engine.evaluate(T0 + minute * MIN)
        seen.append(states(engine, "r")["s1"])
    assert seen == [AlertState.PENDING, AlertState.PENDING, AlertState.FIRING, AlertState.FIRING]


def test_incomplete_current_bucket_is_not_counted():
    # the only error row is dated in the minute still in progress: it must not count yet
    rows = status_rows("s1", [100] * 6, [0, 0, 0, 0, 0, 90])
    engine = Engine([rule(STATUS_RULE.format(name="r", for_="0s"))], MemorySource(rows))
    engine.evaluate(T0 + 5 * MIN + timedelta(seconds=30))
    assert states(engine, "r")["s1"] is AlertState.INACTIVE
    engine.evaluate(T0 + 6 * MIN + timedelta(seconds=30))
    assert states(engine, "r")["s1"] is AlertState.FIRING


NODATA_RULE = """
name = "silent"
[query]
metric = "status_codes"
services = ["cdn"]
window = "5m"
[condition]
type = "nodata"
duration = "10m"
"""


def test_nodata_condition_fires_when_rows_stop_and_clears_when_they_return():
    rows = per_minute("http-statuses", {"service": "cdn", "status": "200"}, [5] * 10)
    rows += per_minute("http-statuses", {"service": "cdn", "status": "200"}, [5] * 5, T0 + 30 * MIN)
    engine = Engine([rule(NODATA_RULE)], MemorySource(rows))
    observed = {}
    for minute in (9, 19, 20, 32):
        engine.evaluate(T0 + minute * MIN)
        observed[minute] = engine.instances["silent"][()].state.state
    assert observed == {
        9: AlertState.INACTIVE,
        # the minute in progress does not count: at 19m the look-back is (8m, 18m]
        19: AlertState.INACTIVE,
        20: AlertState.FIRING,
        32: AlertState.RESOLVED,
    }


@pytest.mark.parametrize(
    "on_nodata,expected",
    [
        ("nodata", AlertState.NODATA),
        ("ok", AlertState.INACTIVE),
        ("alerting", AlertState.FIRING),
        ("keep", AlertState.INACTIVE),
    ],
)
def test_on_nodata_choices(on_nodata, expected):
    text = STATUS_RULE.format(name="r", for_="0s").replace(
        'name = "r"', f'name = "r"\non_nodata = "{on_nodata}"'
    )
    engine = Engine([rule(text)], MemorySource([]))
    engine.evaluate(T0)
    assert states(engine, "r")["s1"] is expected


CHANGE_RULE = """
name = "surge"
[query]
metric = "usage"
window = "10m"
granularity = "minute"
[value]
function = "sum"
field = "total_cdn_bandwidth"
[condition]
type = "change"
reference = "1h"
mode = "{mode}"
op = ">"
value = {value}
min_reference = {min_reference}
"""


def bandwidth(values):
    return per_minute("usage", {}, values, field="total_cdn_bandwidth")


@pytest.mark.parametrize(
    "mode,value,expected_change",
    [("percent", 50, 100.0), ("absolute", 500, 1000.0)],
)
def test_change_against_the_reference_window(mode, value, expected_change):
    series = [100.0] * 60 + [200.0] * 15
    engine = Engine(
        [rule(CHANGE_RULE.format(mode=mode, value=value, min_reference=0))],
        MemorySource(bandwidth(series)),
    )
    report = engine.evaluate(T0 + 71 * MIN)
    (transition,) = report.transitions
    assert transition.state is AlertState.FIRING
    assert transition.value == pytest.approx(expected_change)
    assert transition.annotations["reference"] == "1000"


def test_change_ignores_tiny_reference_windows():
    series = [1.0] * 60 + [50.0] * 15
    engine = Engine(
        [rule(CHANGE_RULE.format(mode="percent", value=50, min_reference=100))],
        MemorySource(bandwidth(series)),
    )
    engine.evaluate(T0 + 71 * MIN)
    assert engine.instances["surge"][()].state.state is AlertState.INACTIVE


def test_fetch_error_puts_instances_in_error_and_raises_one_source_down_alert():
    rows = status_rows("s1", [100] * 10, [0] * 10) + status_rows("s2", [100] * 10, [0] * 10)
    source = CountingSource(MemorySource(rows))
    engine = Engine([rule(STATUS_RULE.format(name=f"r{i}", for_="0s")) for i in range(3)], source)
    engine.evaluate(T0 + 5 * MIN)
    source.error = RuntimeError("API unreachable")
    report = engine.evaluate(T0 + 6 * MIN)
    down = [t for t in report.transitions if t.rule == SOURCE_DOWN]
    assert len(down) == 1 and down[0].state is AlertState.FIRING
    assert "API unreachable" in down[0].annotations["summary"]
    errors = [t for t in report.transitions if t.state is AlertState.ERROR]
    assert len(errors) == 6  # 3 rules x 2 stacks, each marked, the notifier inhibits them
    assert all(t.annotations["error"] == "API unreachable" for t in errors)
    source.error = None
    report = engine.evaluate(T0 + 7 * MIN)
    down = [t for t in report.transitions if t.rule == SOURCE_DOWN]
    assert down[0].state is AlertState.RESOLVED


def test_an_organization_without_any_rows_is_a_source_down():
    engine = Engine([rule(STATUS_RULE.format(name="r", for_="0s"))], MemorySource([]))
    report = engine.evaluate(T0)
    (down,) = [t for t in report.transitions if t.rule == SOURCE_DOWN]
    assert "no data for the whole organization" in down.annotations["summary"]


def test_reload_keeps_state_unless_what_it_is_about_changed():
    rows = status_rows("s1", [100] * 10, [50] * 10)
    kept = rule(STATUS_RULE.format(name="kept", for_="0s"))
    edited = rule(STATUS_RULE.format(name="edited", for_="0s"))
    relabelled = rule(STATUS_RULE.format(name="relabelled", for_="0s"))
    engine = Engine([kept, edited, relabelled], MemorySource(rows))
    engine.evaluate(T0 + 5 * MIN)
    assert states(engine, "edited")["s1"] is AlertState.FIRING
    # a new pending period or threshold is judged at the next evaluation, not reset
    new_edited = rule(STATUS_RULE.format(name="edited", for_="5m").replace("0.1", "0.2"))
    # new labels are a new identity: its instances start afresh
    new_relabelled = rule(
        STATUS_RULE.format(name="relabelled", for_="0s").replace(
            'name = "relabelled"', 'name = "relabelled"\nlabels = { team = "web" }'
        )
    )
    added = rule(STATUS_RULE.format(name="added", for_="0s"))
    engine.set_rules([kept, new_edited, new_relabelled, added])
    assert states(engine, "kept")["s1"] is AlertState.FIRING
    assert states(engine, "edited")["s1"] is AlertState.FIRING
    assert engine.instances["relabelled"] == {}
    assert engine.instances["added"] == {}
    report = engine.evaluate(T0 + 6 * MIN)
    edited_changes = [t for t in report.transitions if t.rule == "edited"]
    assert edited_changes == []  # 33 % is still above the new 20 %: no resolve, no re-fire


def test_due_rules_follow_their_intervals():
    fast = rule(STATUS_RULE.format(name="fast", for_="0s"))
    slow = rule(STATUS_RULE.format(name="slow", for_="0s").replace('for = "0s"', 'interval = "5m"'))
    engine = Engine([fast, slow], MemorySource([]), default_interval=MIN)
    assert {r.name for r in engine.due(T0)} == {"fast", "slow"}
    engine.evaluate(T0)
    assert {r.name for r in engine.due(T0 + MIN)} == {"fast"}
    assert {r.name for r in engine.due(T0 + 5 * MIN)} == {"fast", "slow"}


ANOMALY_RULE = """
name = "unusual"
[query]
metric = "usage"
window = "1m"
[value]
function = "sum"
field = "total_cdn_count"
[condition]
type = "anomaly"
method = "mad"
sensitivity = {sensitivity}
"""


def test_an_edited_anomaly_condition_starts_a_new_baseline():
    rows = per_minute("usage", {}, [100.0] * 30, field="total_cdn_count")
    engine = Engine([rule(ANOMALY_RULE.format(sensitivity=1.0))], MemorySource(rows))
    for minute in range(2, 20):
        engine.evaluate(T0 + minute * MIN)
    learned = engine.instances["unusual"][()].tracker
    engine.set_rules([rule(ANOMALY_RULE.format(sensitivity=1.0))])
    assert engine.instances["unusual"][()].tracker is learned
    engine.set_rules([rule(ANOMALY_RULE.format(sensitivity=2.0))])
    fresh = engine.instances["unusual"][()].tracker
    assert fresh is not learned and fresh.to_state() != learned.to_state()


def test_a_firing_instance_stays_firing_and_is_annotated_while_its_data_is_unavailable():
    rows = status_rows("s1", [100] * 10, [50] * 10) + status_rows("s2", [100] * 10, [0] * 10)
    source = CountingSource(MemorySource(rows))
    engine = Engine([rule(STATUS_RULE.format(name="r", for_="0s"))], source)
    engine.evaluate(T0 + 5 * MIN)
    source.error = RuntimeError("API unreachable")
    report = engine.evaluate(T0 + 6 * MIN)
    assert [t.rule for t in report.transitions if t.rule == "r"] == ["r"]  # s2 only
    assert states(engine, "r") == {"s1": AlertState.FIRING, "s2": AlertState.ERROR}
    firing = engine.instances["r"][(("stack", "s1"),)]
    assert firing.annotations["data_unavailable"].startswith(
        f"data unavailable since {(T0 + 6 * MIN).isoformat()}"
    )
    source.error = None
    engine.evaluate(T0 + 7 * MIN)
    assert "data_unavailable" not in firing.annotations
    assert firing.state.state is AlertState.FIRING  # the data still breaches


class _RefusingOne(CountingSource):
    """Refuses the credential for one query family only."""

    def fetch(self, request):
        if "http-statuses" in repr(request):
            raise AuthenticationFailed("token revoked", status=401)
        return super().fetch(request)


def test_an_auth_failure_on_any_query_is_a_source_down():
    rows = status_rows("s1", [100] * 10, [0] * 10) + bandwidth([100.0] * 75)
    other = CHANGE_RULE.format(mode="percent", value=50, min_reference=0)
    engine = Engine(
        [rule(STATUS_RULE.format(name="r", for_="0s")), rule(other)],
        _RefusingOne(MemorySource(rows)),
    )
    report = engine.evaluate(T0 + 71 * MIN)
    (down,) = [t for t in report.transitions if t.rule == SOURCE_DOWN]
    assert down.state is AlertState.FIRING
    assert "token revoked" in down.annotations["summary"]


def test_a_refusal_fetched_before_the_source_came_back_does_not_page_again():
    """Groups run at once: a cycle that began while the token was refused can finish after
    a later cycle found the source back. Its older news must not fire the alert again."""
    from datetime import date

    from agent.collect.models import AnalyticsQuery, Sample
    from agent.evaluate.source_watch import SourceWatch, source_instance

    statuses = AnalyticsQuery("http-statuses", date(2024, 1, 1), date(2024, 1, 1))
    bandwidth = AnalyticsQuery("bandwidth", date(2024, 1, 1), date(2024, 1, 1))
    row = [Sample("http-statuses", T0, {}, {"count": 1.0})]
    watch, instance = SourceWatch(), source_instance()
    refused = AuthenticationFailed("token revoked", status=401)
    down = watch.observe(instance, {statuses: refused, bandwidth: refused}, T0)
    assert down is not None and down.state is AlertState.FIRING
    back = watch.observe(instance, {statuses: row, bandwidth: row}, T0 + 2 * MIN)
    assert back is not None and back.state is AlertState.RESOLVED
    # the slow cycle that began at T0 + 1 min, while the token was still refused
    assert watch.observe(instance, {statuses: refused}, T0 + MIN) is None
    # while a family's newest answer is a refusal, the source stays down
    assert watch.observe(instance, {bandwidth: refused}, T0 + 3 * MIN) is not None
    assert watch.observe(instance, {statuses: row}, T0 + 4 * MIN) is None
    again = watch.observe(instance, {bandwidth: row}, T0 + 5 * MIN)
    assert again is not None and again.state is AlertState.RESOLVED
