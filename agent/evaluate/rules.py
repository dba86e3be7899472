"""The rule language: pydantic models of the ``[[rule]]`` tables in ``rules/*.toml``.

A rule says where its numbers come from (``[rule.query]``), how a window of rows
becomes one value (``[rule.value]``), when that value is bad (``[rule.condition]``)
and when it is good again (``[rule.clear]``). Everything else is presentation and
wiring: severity, labels, templated annotations, routes and remediation actions.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.collect.models import GRANULARITIES, SERVICES, Metric
from agent.durations import strict_duration
from agent.evaluate.annotate import check_template
from agent.evaluate.anomaly import AnomalyCondition
from agent.names import check_name

#: friendly rule names for metrics → what the collectors call them.
METRIC_ALIASES: dict[str, str] = {
    "status_codes": Metric.HTTP_STATUSES.value,
    "http_statuses": Metric.HTTP_STATUSES.value,
    "cache": Metric.CACHE.value,
    "usage": Metric.USAGE.value,
    "devices": Metric.DEVICES.value,
    "sdk": Metric.SDK.value,
    "top_urls": Metric.TOP_URLS.value,
    "executions": "executions",
    "series": "series",
}

Comparison = Literal[">", ">=", "<", "<="]
_STATUS_CLASS = re.compile(r"^[1-5]xx$")
_STATUS_RANGE = re.compile(r"^(\d{3})-(\d{3})$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


Filter = dict[str, str | list[str]]


def _check_status_filter(where: Filter) -> None:
    """HTTP status filters take codes, classes and ranges; typos would match nothing silently."""
    for key, wanted in where.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        if key == "status":
            for value in values:
                bare = value.removeprefix("!")
                if not (bare.isdigit() or _STATUS_CLASS.match(bare) or _STATUS_RANGE.match(bare)):
                    raise ValueError(
                        f"status filter {value!r}: use a code ('503'), a class ('5xx') "
                        "or a range ('500-599'), optionally negated with '!'"
                    )


class QuerySpec(_Strict):
    """Where the rows come from and which part of them this rule reads."""

    metric: str
    services: tuple[str, ...] = ()
    #: stack API keys; each becomes its own query (``apiKey``) and its own alert instance.
    stacks: tuple[str, ...] = ()
    #: Automations projects whose execution log is read (metric ``executions``).
    projects: tuple[str, ...] = ()
    #: row labels that split the rule into alert instances (``stack``, ``service``, ...).
    group_by: tuple[str, ...] = ()
    window: timedelta = timedelta(minutes=5)
    granularity: str | None = None
    #: extra Analytics parameters, e.g. ``{cache = "all"}`` or ``{includeCount = "true"}``.
    params: dict[str, str] = Field(default_factory=dict)

    _durations = field_validator("window", mode="before")(strict_duration)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value in METRIC_ALIASES:
            return METRIC_ALIASES[value]
        if value in {m.value for m in Metric}:
            return value
        raise ValueError(f"unknown metric {value!r}; one of: {', '.join(sorted(METRIC_ALIASES))}")

    @field_validator("services")
    @classmethod
    def _known_services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in SERVICES]
        if unknown:
            raise ValueError(f"unknown services {unknown}; known: {', '.join(SERVICES)}")
        return value

    @field_validator("granularity")
    @classmethod
    def _known_granularity(cls, value: str | None) -> str | None:
        if value is not None and value not in GRANULARITIES:
            raise ValueError(f"unknown granularity {value!r}; one of: {', '.join(GRANULARITIES)}")
        return value

    @model_validator(mode="after")
    def _required_services(self) -> QuerySpec:
        needs_services = {Metric.HTTP_STATUSES, Metric.CACHE, Metric.SDK, Metric.DEVICES}
        if self.metric in needs_services and not self.services:
            raise ValueError(f"metric {self.metric!r} needs services, e.g. services = ['cdn']")
        if self.projects and self.metric != "executions":
            raise ValueError("projects applies only to metric 'executions'")
        if self.stacks and self.metric in ("executions", "series"):
            raise ValueError(f"stacks does not apply to metric {self.metric!r}")
        return self

    @property
    def instance_labels(self) -> tuple[str, ...]:
        """Labels that split rows into alert instances; listed stacks always do."""
        if self.stacks and "stack" not in self.group_by:
            return ("stack", *self.group_by)
        return self.group_by

    @field_validator("window")
    @classmethod
    def _positive_window(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("window must be longer than zero")
        return value

    @property
    def effective_granularity(self) -> str:
        """The rule's granularity, or one that gives a sensible number of buckets per window."""
        if self.granularity:
            return self.granularity
        if self.window <= timedelta(hours=6):
            return "minute"
        if self.window <= timedelta(days=14):
            return "hour"
        return "day"


class ValueSpec(_Strict):
    """How one window of rows becomes one number."""

    function: Literal["count", "sum", "ratio", "last"] = "count"
    #: the row field summed (``count``, or a usage total such as ``total_cdn_bandwidth``).
    field: str = "count"
    #: rows counted by ``count``/``sum``/``last``; e.g. ``{status = "5xx"}``.
    where: Filter = Field(default_factory=dict)
    numerator: Filter = Field(default_factory=dict)
    denominator: Filter = Field(default_factory=dict)
    #: a ratio with a denominator below this is "no data" rather than a noisy number.
    min_denominator: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _ratio_needs_numerator(self) -> ValueSpec:
        if self.function == "ratio" and not self.numerator:
            raise ValueError("a ratio needs a numerator filter, e.g. numerator = {status = '5xx'}")
        if self.function != "ratio" and (self.numerator or self.denominator):
            raise ValueError("numerator/denominator apply only to function = 'ratio'")
        return self


class ThresholdCondition(_Strict):
    type: Literal["threshold"]
    op: Comparison
    value: float


class ChangeCondition(_Strict):
    """Compare the window with the same-length window ``reference`` earlier (spike style)."""

    type: Literal["change"]
    reference: timedelta = timedelta(days=1)
    mode: Literal["percent", "absolute"] = "percent"
    op: Comparison
    value: float
    #: ignore changes while the reference window's value is below this (tiny baselines).
    min_reference: float = 0.0

    _durations = field_validator("reference", mode="before")(strict_duration)


class NoDataCondition(_Strict):
    """Fire when the query returned no rows for this instance for ``duration``."""

    type: Literal["nodata"]
    duration: timedelta

    _durations = field_validator("duration", mode="before")(strict_duration)


Condition = Annotated[
    ThresholdCondition | ChangeCondition | NoDataCondition | AnomalyCondition,
    Field(discriminator="type"),
]


class ClearCondition(_Strict):
    """The value at which a firing alert may resolve (hysteresis)."""

    op: Comparison
    value: float


class Rule(_Strict):
    name: str
    query: QuerySpec
    value: ValueSpec = Field(default_factory=ValueSpec)
    condition: Condition
    clear: ClearCondition | None = None
    #: how long the condition must hold before the alert fires.
    for_: timedelta = Field(default=timedelta(0), alias="for")
    #: how long the clear condition must hold before a firing alert resolves.
    clear_for: timedelta = timedelta(0)
    interval: timedelta | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str = "{{ rule }} is {{ state }}: value {{ value | human }}"
    description: str = ""
    runbook: str | None = None
    link: str | None = None
    routes: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    #: what an instance with no rows becomes: its own state, the last state, OK, or alerting.
    on_nodata: Literal["nodata", "keep", "ok", "alerting"] = "nodata"
    on_error: Literal["error", "keep"] = "error"
    enabled: bool = True

    _durations = field_validator("for_", "clear_for", "interval", mode="before")(strict_duration)

    _name = field_validator("name")(check_name)

    @field_validator("interval")
    @classmethod
    def _positive_interval(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < timedelta(seconds=1):
            raise ValueError("interval must be at least 1s")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Rule:
        condition = self.condition
        if self.query.metric == Metric.HTTP_STATUSES:
            for where in (self.value.where, self.value.numerator, self.value.denominator):
                _check_status_filter(where)
        if isinstance(condition, ThresholdCondition) and self.clear is not None:
            self._check_hysteresis(condition, self.clear)
        if self.value.function == "ratio" and isinstance(condition, ThresholdCondition):
            self._check_ratio_threshold(condition.op, condition.value, "condition")
        if self.value.function == "count" and isinstance(condition, ThresholdCondition):
            self._check_never_below(condition.op, condition.value, 0.0, "a count")
        if isinstance(condition, ChangeCondition) and condition.mode == "percent":
            self._check_never_below(condition.op, condition.value, -100.0, "a percent change")
        if self.query.metric == "executions" and self.value.field not in ("count", "duration"):
            raise ValueError("executions rows have the fields 'count' and 'duration'")
        if isinstance(condition, AnomalyCondition) and self.for_ != timedelta(0):
            raise ValueError("anomaly rules use trigger_window instead of 'for'")
        if self.clear is not None and not isinstance(
            condition, ThresholdCondition | ChangeCondition
        ):
            raise ValueError("'clear' applies to threshold and change conditions")
        if isinstance(condition, NoDataCondition) and condition.duration < self.query.window:
            raise ValueError("nodata duration must be at least the query window")
        if self.query.metric == "series" and not isinstance(
            condition, ThresholdCondition | AnomalyCondition
        ):
            raise ValueError("metric 'series' takes threshold and anomaly conditions")
        for name in ("summary", "description"):
            source = getattr(self, name)
            if source == type(self).model_fields[name].default:
                continue  # ours, tested (Jinja2 is not even imported for a rule that keeps it)
            problem = check_template(source)
            if problem:
                raise ValueError(f"{name}: template error: {problem}")
        return self

    @staticmethod
    def _check_ratio_threshold(op: str, value: float, where: str) -> None:
        # A ratio lies in [0, 1]; thresholds outside it can never (or always) hold.
        impossible = (op in (">", ">=") and value >= 1 and not (op == ">=" and value == 1)) or (
            op in ("<", "<=") and value <= 0 and not (op == "<=" and value == 0)
        )
        if impossible or value < 0 or value > 1:
            raise ValueError(
                f"{where}: a ratio lies between 0 and 1, so '{op} {value}' can never hold "
                "(write 2% as 0.02)"
            )

    @staticmethod
    def _check_never_below(op: str, value: float, floor: float, what: str) -> None:
        if (op == "<" and value <= floor) or (op == "<=" and value < floor):
            raise ValueError(
                f"condition: {what} is never below {floor:g}, so '{op} {value:g}' can never hold"
            )

    @staticmethod
    def _check_hysteresis(condition: ThresholdCondition, clear: ClearCondition) -> None:
        fires_high = condition.op in (">", ">=")
        clears_low = clear.op in ("<", "<=")
        if fires_high != clears_low:
            raise ValueError("clear.op must point the other way from condition.op")
        if fires_high and clear.value > condition.value:
            raise ValueError("clear.value must not be above the firing threshold")
        if not fires_high and clear.value < condition.value:
            raise ValueError("clear.value must not be below the firing threshold")

    def state_identity(self) -> str:
        """What an alert instance's state is *about*: editing a threshold, a window or a
        template keeps the state (the next evaluation judges it by the new rule); changing
        the metric, the instance labels or the kind of condition starts afresh."""
        identity = [
            self.name,
            sorted(self.labels.items()),
            self.severity,
            self.query.metric,
            list(self.query.instance_labels),
            self.condition.type,
        ]
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]

    @property
    def threshold(self) -> float | None:
        condition = self.condition
        return (
            condition.value if isinstance(condition, ThresholdCondition | ChangeCondition) else None
        )


def resolve_stacks(rule: Rule, stacks: dict[str, str]) -> Rule:
    """Replace stack names and ``"*"`` in a rule's query by the configured API keys."""
    if not rule.query.stacks:
        return rule
    keys: list[str] = []
    for entry in rule.query.stacks:
        if entry == "*":
            if not stacks:
                raise ValueError(
                    f"rule {rule.name}: stacks = ['*'] needs [contentstack.stacks] in the config"
                )
            keys.extend(stacks.values())
        else:
            keys.append(stacks.get(entry, entry))
    unique = tuple(dict.fromkeys(keys))
    return rule.model_copy(update={"query": rule.query.model_copy(update={"stacks": unique})})


class RuleFile(_Strict):
    rule: list[Rule] = Field(default_factory=list)
