"""``stackwatch test-rules``: offline rule unit tests, in the spirit of ``promtool test rules``.

A test file (``*.test.toml``) names rule files, feeds input series through the real
engine at every evaluation step, and compares the alerts at chosen times with the
expected ones, printing a diff when they differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.collect.models import Sample
from agent.durations import format_duration, strict_duration
from agent.evaluate.alerts import AlertState
from agent.evaluate.engine import Engine, Instance
from agent.evaluate.loader import RulesInvalid, load_rules, locate
from agent.evaluate.rules import METRIC_ALIASES, resolve_stacks
from agent.evaluate.series import expand
from agent.evaluate.sources import MemorySource
from agent.tomlread import TomlProblem, read_toml

_ALERTING = (AlertState.PENDING, AlertState.FIRING, AlertState.NODATA, AlertState.ERROR)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeriesSpec(_Strict):
    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    field: str = "count"
    values: str | list[float | int | None]

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if value not in METRIC_ALIASES:
            raise ValueError(f"unknown metric {value!r}; one of: {', '.join(METRIC_ALIASES)}")
        return METRIC_ALIASES[value]

    @field_validator("values")
    @classmethod
    def _notation(cls, value: Any) -> Any:
        expand(value)  # raises ValueError with a readable message
        return value


class ExpectedAlert(_Strict):
    labels: dict[str, str] = Field(default_factory=dict)
    state: Literal["pending", "firing", "nodata", "error"] = "firing"
    annotations: dict[str, str] = Field(default_factory=dict)


class Expectation(_Strict):
    at: timedelta
    rule: str
    alerts: list[ExpectedAlert] = Field(default_factory=list)

    _at = field_validator("at", mode="before")(strict_duration)


class RuleTestCase(_Strict):
    name: str
    interval: timedelta | None = None
    series: list[SeriesSpec] = Field(default_factory=list)
    expect: list[Expectation] = Field(min_length=1)

    _interval = field_validator("interval", mode="before")(strict_duration)


class RuleTestFile(_Strict):
    rule_files: list[str] = Field(min_length=1)
    evaluation_interval: timedelta = timedelta(minutes=1)
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    #: stack names → API keys, as in the config's [contentstack.stacks]
    stacks: dict[str, str] = Field(default_factory=dict)
    test: list[RuleTestCase] = Field(min_length=1)

    _interval = field_validator("evaluation_interval", mode="before")(strict_duration)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class RuleTestResult:
    path: Path
    name: str
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def find_test_files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.rglob("*.test.toml")) if path.is_dir() else [path])
    return found


def run_test_file(path: Path) -> list[RuleTestResult]:
    try:
        text, document = read_toml(path)
        spec = RuleTestFile.model_validate(document)
    except TomlProblem as problem:
        return [RuleTestResult(path, "(file)", [f"{path}:{problem}"])]
    except ValidationError as error:
        lines = text.splitlines()
        return [
            RuleTestResult(
                path,
                "(file)",
                [
                    f"{path}:{locate(lines, tuple(issue['loc']))}: "
                    f"{'.'.join(str(p) for p in issue['loc'])}: {issue['msg']}"
                    for issue in error.errors(include_url=False, include_input=False)
                ],
            )
        ]
    try:
        loaded = load_rules(path.parent / f for f in spec.rule_files)
        rules = [resolve_stacks(item.rule, spec.stacks) for item in loaded]
    except RulesInvalid as error:
        return [RuleTestResult(path, "(rules)", [str(p) for p in error.problems])]
    except ValueError as error:
        return [RuleTestResult(path, "(rules)", [f"{path}: {error}"])]
    return [_run_case(path, spec, case, rules) for case in spec.test]


def _run_case(
    path: Path, spec: RuleTestFile, case: RuleTestCase, rules: list[Any]
) -> RuleTestResult:
    names = {rule.name for rule in rules}
    failures = [
        f"expectation at {format_duration(expectation.at)}: unknown rule {expectation.rule!r}"
        for expectation in case.expect
        if expectation.rule not in names
    ]
    if failures:
        return RuleTestResult(path, case.name, failures)
    engine = Engine(
        rules,
        MemorySource(_samples(spec.start, case.interval or spec.evaluation_interval, case.series)),
        default_interval=spec.evaluation_interval,
        watch_source=False,
        stack_names={key: name for name, key in spec.stacks.items()},
    )
    checks: dict[timedelta, list[Expectation]] = {}
    for expectation in case.expect:
        checks.setdefault(expectation.at, []).append(expectation)
    step = spec.evaluation_interval
    offset = timedelta(0)
    last = max(checks)
    while offset <= last:
        now = spec.start + offset
        engine.evaluate(now, engine.due(now))
        for expectation in checks.pop(offset, []):
            failures.extend(
                _compare(expectation, list(engine.instances[expectation.rule].values()))
            )
        offset += step
    for at in checks:
        failures.append(
            f"expectation at {format_duration(at)} is not on the "
            f"{format_duration(step)} evaluation grid"
        )
    return RuleTestResult(path, case.name, failures)


def _samples(start: datetime, interval: timedelta, series: list[SeriesSpec]) -> list[Sample]:
    return [
        Sample(spec.metric, start + interval * i, dict(spec.labels), {spec.field: value})
        for spec in series
        for i, value in enumerate(expand(spec.values))
        if value is not None
    ]


def _compare(expectation: Expectation, instances: list[Instance]) -> list[str]:
    actual = [i for i in instances if i.state.state in _ALERTING]
    missing: list[ExpectedAlert] = []
    for wanted in expectation.alerts:
        match = next((i for i in actual if _matches(wanted, i)), None)
        if match is None:
            missing.append(wanted)
        else:
            actual.remove(match)
    if not missing and not actual:
        return []
    lines = [f"at {format_duration(expectation.at)}, rule {expectation.rule}:"]
    lines += [f"  - expected: {_describe(w.state, w.labels, w.annotations)}" for w in missing]
    lines += [
        f"  + got:      {_describe(i.state.state.value, i.labels, i.annotations)}" for i in actual
    ]
    return ["\n".join(lines)]


def _matches(wanted: ExpectedAlert, instance: Instance) -> bool:
    return (
        instance.state.state.value == wanted.state
        and all(instance.labels.get(k) == v for k, v in wanted.labels.items())
        and all(instance.annotations.get(k) == v for k, v in wanted.annotations.items())
    )


def _describe(state: str, labels: dict[str, str], annotations: dict[str, str]) -> str:
    label_text = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    text = f"{state} {{{label_text}}}"
    if annotations:
        text += " " + " ".join(f"{k}={v!r}" for k, v in sorted(annotations.items()))
    return text
