"""Inhibition: a firing alert mutes others, so one root cause pages once.

Besides configured rules (``critical`` inhibits ``warning`` with equal ``stack``)
there is the built-in source-down rule: while the engine's meta-alert
``alertname=ContentstackSourceDown`` fires, alerts that only say "no data" or
"evaluation error" — and firing alerts labelled ``source_dependent="true"`` — are
symptoms of it and stay quiet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agent.evaluate.alerts import AlertState
from agent.notify.config import InhibitRuleConfig
from agent.notify.matchers import Matcher, all_match, parse_matchers
from agent.notify.state import TrackedAlert

SOURCE_DOWN_ALERT = "ContentstackSourceDown"
#: labels that, when both alerts carry them, must agree for source-down inhibition.
_SOURCE_DOWN_EQUAL = ("organization",)


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    @classmethod
    def from_config(cls, config: InhibitRuleConfig) -> InhibitRule:
        return cls(
            tuple(parse_matchers(config.source_matchers)),
            tuple(parse_matchers(config.target_matchers)),
            tuple(config.equal),
        )


class Inhibitor:
    def __init__(self, rules: Iterable[InhibitRule], *, source_down: bool = True) -> None:
        self.rules = list(rules)
        self.source_down = source_down

    def sources(self, alerts: Iterable[TrackedAlert]) -> Sources:
        """The firing alerts that can mute others, indexed once for every target of a
        flush (thousands of alerts each checked against all the others took seconds)."""
        return Sources(self, alerts)

    def inhibited_by(
        self, target: TrackedAlert, alerts: Iterable[TrackedAlert] | Sources
    ) -> str | None:
        """The fingerprint-tagged reason ``target`` is inhibited, or None."""
        if not target.active:
            return None  # a resolution is never held back
        sources = alerts if isinstance(alerts, Sources) else self.sources(alerts)
        if self.source_down and target.labels.get("alertname") != SOURCE_DOWN_ALERT:
            symptom = target.state in (AlertState.NODATA.value, AlertState.ERROR.value) or (
                target.labels.get("source_dependent") == "true"
            )
            if symptom:
                for source in sources.source_down:
                    if all(
                        source.labels.get(key) == target.labels.get(key)
                        for key in _SOURCE_DOWN_EQUAL
                        if key in source.labels and key in target.labels
                    ):
                        return f"inhibited:{source.fingerprint}"
        for rule, by_equal in sources.by_rule:
            if all_match(rule.target, target.labels):
                found = by_equal.get(tuple(target.labels.get(key, "") for key in rule.equal))
                if found is not None:
                    return f"inhibited:{found}"
        return None


class Sources:
    """Per inhibit rule, the first firing source for each value of its ``equal`` labels.
    A source that is itself a target of the same rule is left out: it must not mute its
    peer and be muted by it in turn (Alertmanager does the same). Neither kind of source
    can be the target it is asked about (a rule's sources match none of its targets; a
    source-down alert is no symptom), so no alert inhibits itself."""

    def __init__(self, inhibitor: Inhibitor, alerts: Iterable[TrackedAlert]) -> None:
        firing = [alert for alert in alerts if alert.state == AlertState.FIRING.value]
        self.source_down = [a for a in firing if a.labels.get("alertname") == SOURCE_DOWN_ALERT]
        self.by_rule: list[tuple[InhibitRule, dict[tuple[str, ...], str]]] = []
        for rule in inhibitor.rules:
            by_equal: dict[tuple[str, ...], str] = {}
            for source in firing:
                if all_match(rule.source, source.labels) and not all_match(
                    rule.target, source.labels
                ):
                    key = tuple(source.labels.get(name, "") for name in rule.equal)
                    by_equal.setdefault(key, source.fingerprint)
            self.by_rule.append((rule, by_equal))
