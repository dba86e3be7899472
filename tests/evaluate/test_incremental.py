"""Cycle after cycle, the engine's incremental evaluation (columns kept across cycles,
windows built once per query shape, one value shared by the rules that read it, the
plan reused while its dates hold) ends where a full re-evaluation of every row ends."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.collect.models import Sample
from agent.evaluate.alerts import Transition
from agent.evaluate.conditions import bounds, judge
from agent.evaluate.engine import Engine
from agent.evaluate.instances import CycleReport, Instance, RuleLabels, advance, new_instance
from agent.evaluate.planner import DataRequest, rows_for_rule, rule_requests
from agent.evaluate.rules import Rule
from agent.evaluate.sources import MemorySource
from agent.evaluate.values import InstanceKey, SampleWindow, split_instances
from tests.evaluate.helpers import MIN, T0, rule

STACKS = ("blt1", "blt2")
STATUSES = ("200", "404", "503")
SERVICES = ("cdn", "cma")

VALUES = [
    'function = "ratio"\nnumerator = { status = "5xx" }\nmin_denominator = 5',
    'function = "ratio"\nnumerator = { status = ["404", "503"] }',
    'function = "count"\nwhere = { status = "!200" }',
]  # ("last" is left out: which of two rows of one minute is the last is not defined)
CONDITIONS = [
    'type = "threshold"\nop = ">"\nvalue = {threshold}',
    'type = "threshold"\nop = "<"\nvalue = {threshold}',
    'type = "change"\nreference = "3m"\nmode = "absolute"\nop = ">"\nvalue = {threshold}',
]

#: what a rule reads (stacks, group_by, services): rules of one shape share windows
shape_strategy = st.tuples(
    st.sampled_from(['["*"]', '["blt1"]', "[]"]),
    st.sampled_from(["[]", '["service"]']),
    st.sampled_from(['["cdn"]', '["cdn", "cma"]']),
)
#: how a rule judges what it reads
judging_strategy = st.tuples(
    st.sampled_from(VALUES),
    st.sampled_from(CONDITIONS),
    st.sampled_from([0.05, 0.3, 0.6, 0.9]),
    st.sampled_from(["1m", "3m", "5m"]),
    st.sampled_from(["0m", "2m"]),
)


def make_rules(
    shapes: list[tuple[str, str, str]], specs: list[tuple[int, tuple[str, str, float, str, str]]]
) -> list[Rule]:
    made = []
    for index, (shape, (value, condition, threshold, window, for_)) in enumerate(specs):
        stacks, group_by, services = shapes[shape % len(shapes)]
        stack_list = '["blt1", "blt2"]' if stacks == '["*"]' else stacks
        if "ratio" not in value:  # counts and changes of counts: thresholds in rows
            threshold *= 40
        made.append(
            rule(
                f'name = "r{index}"\nfor = "{for_}"\n'
                f'[query]\nmetric = "status_codes"\nservices = {services}\nstacks = {stack_list}\n'
                f'group_by = {group_by}\nwindow = "{window}"\n'
                f"[value]\n{value}\n"
                f"[condition]\n{condition.format(threshold=threshold)}\n"
            )
        )
    return made


class GrowingSource:
    """The API as time passes: the rows up to ``now``, the bucket in progress half counted."""

    def __init__(self, rows: list[tuple[int, str, str, str, int]]) -> None:
        self.rows = rows
        self.now = T0

    def samples(self) -> list[Sample]:
        minute_now = int((self.now - T0) / MIN)
        return [
            Sample(
                "http-statuses",
                T0 + minute * MIN,
                {"stack": stack, "service": service, "status": status},
                {"count": float(count // 2 if minute == minute_now else count)},
            )
            for minute, stack, service, status, count in self.rows
            if minute <= minute_now
        ]

    def fetch(self, request: DataRequest) -> list[Sample]:
        return MemorySource(self.samples()).fetch(request)


def full_evaluation(
    rules: list[Rule],
    source: GrowingSource,
    now: datetime,
    instances: dict[tuple[str, InstanceKey], Instance],
) -> list[Transition]:
    """Every rule judged from all rows visible at ``now``, scanned one by one, each of its
    instances stepped on its own (``advance``): those with rows, those known before,
    those the rule's stacks promise. Returns the transitions, in the engine's order."""
    everything = MemorySource(source.samples())
    report = CycleReport(at=now)
    for each in rules:
        rows = rows_for_rule(each, [everything.fetch(q) for q in rule_requests(each, now)])
        groups = split_instances(rows, each.query.instance_labels)
        keys = set(groups) | {key for name, key in instances if name == each.name}
        if each.query.instance_labels == ("stack",):
            keys |= {(("stack", stack),) for stack in each.query.stacks}
        elif not each.query.instance_labels:
            keys.add(())
        for key in sorted(keys):
            fresh = new_instance(each, key, RuleLabels(each, {}))
            instance = instances.setdefault((each.name, key), fresh)
            judgement = judge(each, SampleWindow(groups.get(key, [])), bounds(each, now))
            advance(each, instance, judgement, now, report)
    return report.transitions


@settings(max_examples=40, deadline=None)
@given(
    shapes=st.lists(shape_strategy, min_size=1, max_size=2),
    specs=st.lists(st.tuples(st.integers(0, 1), judging_strategy), min_size=1, max_size=6),
    rows=st.lists(
        st.tuples(
            st.integers(0, 14),
            st.sampled_from(STACKS),
            st.sampled_from(SERVICES),
            st.sampled_from(STATUSES),
            st.integers(0, 40),
        ),
        max_size=80,
        unique_by=lambda row: row[:4],
    ),
    cycles=st.lists(st.integers(1, 15), min_size=1, max_size=8, unique=True),
)
def test_incremental_cycles_equal_a_full_re_evaluation(shapes, specs, rows, cycles):
    """The whole outcome: states (times, values), annotations and transitions."""
    rules = make_rules(shapes, specs)
    source = GrowingSource(rows)
    engine = Engine(rules, source, watch_source=False)
    reference: dict[tuple[str, InstanceKey], Instance] = {}
    for minute in sorted(cycles):
        now = T0 + minute * MIN + 5 * MIN / 60
        source.now = now
        report = engine.evaluate(now)
        expected = full_evaluation(rules, source, now, reference)
        assert [_brief(t) for t in report.transitions] == [_brief(t) for t in expected]
        assert {(i.rule, i.key) for i in engine.all_instances()} == set(reference)
        for (name, key), wanted in reference.items():
            instance = engine.instances[name][key]
            assert instance.state._replace(value=None) == wanted.state._replace(value=None), (
                name,
                key,
                minute,
            )
            assert instance.state.value == _approx(wanted.state.value), (name, key, minute)
            assert instance.annotations == wanted.annotations, (name, key, minute)


def _brief(transition: Transition) -> tuple[object, ...]:
    return (
        transition.rule,
        transition.fingerprint,
        transition.previous,
        transition.state,
        transition.at,
        transition.annotations,
    )


def _approx(value: float | None) -> object:
    import pytest

    return None if value is None else pytest.approx(value, rel=1e-9, abs=1e-9)
