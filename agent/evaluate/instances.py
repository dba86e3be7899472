"""Alert instances: one per rule and label set, stepped through the state machine.

What one verdict does to an instance (``advance``) and what a change of state tells
the later stages (a ``Transition`` with rendered annotations). Pure: time is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.evaluate.alerts import AlertState, Transition, fingerprint
from agent.evaluate.annotate import render
from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker
from agent.evaluate.conditions import Judged, Judgement
from agent.evaluate.rules import Rule
from agent.evaluate.state import SETTLED, InstanceState, Verdict, holds_firing, observe, step
from agent.evaluate.values import InstanceKey

#: template variables that only some conditions fill in; None ("n/a") elsewhere
_DETAIL_NAMES = (
    "expected",
    "expected_lower",
    "expected_upper",
    "anomaly_score",
    "anomaly_statistic",
    "observed",
    "current",
    "reference",
)

#: the template variables of ``_DETAIL_NAMES`` where a judgement has no details
_NO_DETAIL_VALUES = dict.fromkeys(_DETAIL_NAMES)

#: the annotations of an instance that has none yet (shared: nobody changes it)
_NO_ANNOTATIONS: dict[str, str] = {}
#: the state of an instance not yet stepped (shared, a tuple: most instances of a large
#: setup never leave it, and one each was 2 MB at 1,000 rules × 20 stacks)
_NEW_STATE = InstanceState()
#: what a rule's ``on_nodata`` makes of no data (otherwise: the nodata state)
_NODATA_AS = {"ok": Verdict.CLEARED, "alerting": Verdict.BREACHED}


class RuleLabels:
    """The labels a rule's instances have beside their keys' (the rule's own labels, its
    name and severity, the stack's display name), shared by them all: an instance builds
    its labels from these and its key when they are read. (A dict per instance was 3 MB
    at 1,000 rules × 20 stacks, more than their states.)"""

    __slots__ = ("_own", "_rule", "_severity", "_stack_names")

    def __init__(self, rule: Rule, stack_names: dict[str, str]) -> None:
        self._own, self._rule, self._severity = rule.labels, rule.name, rule.severity
        self._stack_names = stack_names

    def of(self, key: InstanceKey) -> dict[str, str]:
        labels = {**self._own, **{k: v for k, v in key if v}}
        if labels.get("stack") in self._stack_names:
            labels["stack_name"] = self._stack_names[labels["stack"]]
        labels["alertname"] = self._rule
        labels["severity"] = self._severity
        return labels


class Instance:
    """One alert instance: who it is (rule, key, labels, fingerprint), its state, its
    anomaly tracker and annotations.

    Its labels are a dict of their own only where they were given as one (restored from
    the store, the source-down instance); a rule's instances build them from the rule's
    ``RuleLabels`` when read.

    ``state`` is the state machine's tuple. When a cycle's verdict leaves the instance
    settled (``state.SETTLED``: most instances, most cycles) only that cycle's reading
    (its value and time) is recorded, beside the tuple of the last step, and ``state``
    puts the two together when read: a new tuple per instance per cycle would be one
    more object for the garbage collector to walk, and at 19k instances its full
    collections cost a third of a cycle."""

    __slots__ = (
        "_evaluated_at",
        "_labels",
        "_stepped",
        "_value",
        "annotations",
        "fingerprint",
        "key",
        "rule",
        "tracker",
    )

    def __init__(
        self,
        rule: str,
        key: InstanceKey,
        labels: dict[str, str] | RuleLabels,
        fingerprint: str,
        state: InstanceState | None = None,
        tracker: AnomalyTracker | None = None,
        annotations: dict[str, str] | None = None,
    ) -> None:
        self.rule = rule
        self.key = key
        self._labels = labels
        self.fingerprint = fingerprint
        self.state = state or _NEW_STATE
        self.tracker = tracker
        # (replaced, never changed in place: most instances never get any)
        self.annotations = annotations if annotations is not None else _NO_ANNOTATIONS

    @property
    def labels(self) -> dict[str, str]:
        """(A new dict when built from the rule's: changing it changes nothing.)"""
        labels = self._labels
        return labels.of(self.key) if isinstance(labels, RuleLabels) else labels

    def share_labels(self, shared: RuleLabels) -> None:
        """Build the labels from ``shared`` from now on if that gives the same labels."""
        if not isinstance(self._labels, RuleLabels) and self._labels == shared.of(self.key):
            self._labels = shared

    @property
    def state(self) -> InstanceState:
        if self._evaluated_at is None:
            return self._stepped
        return observe(self._stepped, self._value, self._evaluated_at)

    @state.setter
    def state(self, state: InstanceState) -> None:
        self._stepped = state
        self._evaluated_at: datetime | None = None
        self._value: float | None = None

    def record(self, value: float | None, at: datetime) -> None:
        """A reading that changes nothing else (``observe`` without an error)."""
        self._value, self._evaluated_at = value, at

    def __repr__(self) -> str:
        return f"Instance({self.rule!r}, {self.key!r}, {self.state!r})"


@dataclass
class CycleReport:
    at: datetime
    transitions: list[Transition] = field(default_factory=list)
    #: rule name → why it could not be evaluated
    errors: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    failed_requests: int = 0


def new_instance(rule: Rule, key: InstanceKey, labels: RuleLabels) -> Instance:
    tracker = (
        AnomalyTracker(rule.condition) if isinstance(rule.condition, AnomalyCondition) else None
    )
    return Instance(rule.name, key, labels, fingerprint(rule.name, labels.of(key)), tracker=tracker)


def advance(
    rule: Rule,
    instance: Instance,
    judgement: Judgement,
    now: datetime,
    report: CycleReport,
    *,
    link: str | None = None,
    error: str | None = None,
) -> None:
    """Step the instance by one verdict; a change of state goes into the report."""
    verdict = judgement.verdict
    if verdict is Verdict.NODATA:
        if rule.on_nodata == "keep":
            return
        verdict = _NODATA_AS.get(rule.on_nodata, Verdict.NODATA)
    previous = instance.state
    if error is None and (previous.state in SETTLED[verdict] or holds_firing(previous, verdict)):
        instance.record(judgement.value, now)  # all that ``step`` would do
        current = previous  # (but for the reading, which the checks below do not read)
    else:
        current = instance.state = step(
            previous,
            verdict,
            now,
            value=judgement.value,
            for_=rule.for_,
            clear_for=rule.clear_for,
            error=error,
        )
    if current.state != previous.state:
        instance.annotations = _annotations(rule, instance, judgement, link, error)
        report.transitions.append(_transition(rule, instance, previous.state, judgement))
    elif (
        current.state in (AlertState.PENDING, AlertState.FIRING)
        and judgement.value is not None
        and current.unavailable_since is None
    ):
        # the summary tells today's value, not the one of the moment it fired (rendered
        # again only when there is something new to tell)
        if judgement.value != previous.value or judgement.details:
            instance.annotations = _annotations(rule, instance, judgement, link, error)
    elif current.unavailable_since != previous.unavailable_since:
        # still firing, not re-announced: the blind spot shows on the instance only
        blind = current.unavailable_since
        instance.annotations = {
            k: v for k, v in instance.annotations.items() if k != "data_unavailable"
        }
        if blind is not None:
            instance.annotations["data_unavailable"] = (
                f"data unavailable since {blind.isoformat()}" + (f": {error}" if error else "")
            )


def advance_all(
    rule: Rule,
    instances: Sequence[Instance],
    judged: Judged,
    now: datetime,
    report: CycleReport,
    *,
    link: str | None = None,
) -> None:
    """``advance`` each of a rule's instances by its judgement (aligned with them). An
    instance its verdict leaves settled (``state.SETTLED``: quiet and staying so) only
    records the reading: no state step, no annotations, no judgement built."""
    nodata, settled = Verdict.NODATA, SETTLED  # (locals: this runs 19k times a cycle)
    keep_nodata = rule.on_nodata == "keep"
    nodata_as = _NODATA_AS.get(rule.on_nodata, nodata)
    index = -1
    for instance, verdict, value in zip(instances, judged.verdicts, judged.values, strict=True):
        index += 1
        if verdict is nodata:
            if keep_nodata:
                continue
            verdict = nodata_as
        if instance._stepped.state in settled[verdict]:
            # all that ``step`` would do; nor is there anything to annotate
            instance.record(value, now)
        else:
            advance(rule, instance, judged.judgement(index), now, report, link=link)


def _annotations(
    rule: Rule, instance: Instance, judgement: Judgement, link: str | None, error: str | None
) -> dict[str, str]:
    labels = instance.labels
    context: dict[str, Any] = {
        **_NO_DETAIL_VALUES,
        "rule": rule.name,
        "state": instance._stepped.state.value,  # (a reading does not change it)
        "value": judgement.value,
        "threshold": judgement.threshold,
        "labels": labels,
        "stack": labels.get("stack", ""),
        "service": labels.get("service", ""),
        "window": rule.query.window,
        "severity": rule.severity,
        "link": rule.link or link or "",
        "runbook": rule.runbook or "",
        "error": error or "",
        **judgement.details,
    }
    annotations = {
        "summary": render(rule.summary, context),
        "description": render(rule.description, context),
        **judgement.details,
    }
    if context["link"]:
        annotations["link"] = context["link"]
    if rule.runbook:
        annotations["runbook"] = rule.runbook
    if error:
        annotations["error"] = error
    return {k: v for k, v in annotations.items() if v}


def _transition(
    rule: Rule, instance: Instance, previous: AlertState, judgement: Judgement
) -> Transition:
    state = instance.state
    return Transition(
        rule=rule.name,
        fingerprint=instance.fingerprint,
        labels=dict(instance.labels),
        previous=previous,
        state=state.state,
        at=state.evaluated_at or state.since or datetime.min,
        value=judgement.value,
        threshold=judgement.threshold,
        annotations=dict(instance.annotations),
        firing_since=state.firing_since,
        routes=rule.routes,
        actions=rule.actions,
    )
