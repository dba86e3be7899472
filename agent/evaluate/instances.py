"""Alert instances: one per rule and label set, stepped through the state machine.

What one verdict does to an instance (``advance``) and what a change of state tells
the later stages (a ``Transition`` with rendered annotations). Pure: time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.evaluate.alerts import AlertState, Transition, fingerprint
from agent.evaluate.annotate import render
from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker
from agent.evaluate.conditions import Judgement
from agent.evaluate.rules import Rule
from agent.evaluate.state import InstanceState, Verdict, step
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


@dataclass
class Instance:
    rule: str
    key: InstanceKey
    labels: dict[str, str]
    fingerprint: str
    state: InstanceState = field(default_factory=InstanceState)
    tracker: AnomalyTracker | None = None
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class CycleReport:
    at: datetime
    transitions: list[Transition] = field(default_factory=list)
    #: rule name → why it could not be evaluated
    errors: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    failed_requests: int = 0


def new_instance(rule: Rule, key: InstanceKey, stack_names: dict[str, str]) -> Instance:
    labels = {**rule.labels, **{k: v for k, v in key if v}}
    if labels.get("stack") in stack_names:
        labels["stack_name"] = stack_names[labels["stack"]]
    labels["alertname"] = rule.name
    labels["severity"] = rule.severity
    tracker = (
        AnomalyTracker(rule.condition) if isinstance(rule.condition, AnomalyCondition) else None
    )
    return Instance(rule.name, key, labels, fingerprint(rule.name, labels), tracker=tracker)


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
        verdict = {"ok": Verdict.CLEARED, "alerting": Verdict.BREACHED}.get(
            rule.on_nodata, Verdict.NODATA
        )
    previous = instance.state
    instance.state = step(
        previous,
        verdict,
        now,
        value=judgement.value,
        for_=rule.for_,
        clear_for=rule.clear_for,
        error=error,
    )
    if instance.state.state != previous.state:
        instance.annotations = _annotations(rule, instance, judgement, link, error)
        report.transitions.append(_transition(rule, instance, previous.state, judgement))
    elif (
        instance.state.state in (AlertState.PENDING, AlertState.FIRING)
        and judgement.value is not None
        and instance.state.unavailable_since is None
    ):
        # the summary tells today's value, not the one of the moment it fired (rendered
        # again only when there is something new to tell)
        if judgement.value != previous.value or judgement.details:
            instance.annotations = _annotations(rule, instance, judgement, link, error)
    elif instance.state.unavailable_since != previous.unavailable_since:
        # still firing, not re-announced: the blind spot shows on the instance only
        blind = instance.state.unavailable_since
        instance.annotations = {
            k: v for k, v in instance.annotations.items() if k != "data_unavailable"
        }
        if blind is not None:
            instance.annotations["data_unavailable"] = (
                f"data unavailable since {blind.isoformat()}" + (f": {error}" if error else "")
            )


def _annotations(
    rule: Rule, instance: Instance, judgement: Judgement, link: str | None, error: str | None
) -> dict[str, str]:
    state = instance.state
    context: dict[str, Any] = {
        "rule": rule.name,
        "state": state.state.value,
        "value": judgement.value,
        "threshold": judgement.threshold,
        "labels": instance.labels,
        "stack": instance.labels.get("stack", ""),
        "service": instance.labels.get("service", ""),
        "window": rule.query.window,
        "severity": rule.severity,
        "link": rule.link or link or "",
        "runbook": rule.runbook or "",
        "error": error or "",
        **dict.fromkeys(_DETAIL_NAMES),
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
