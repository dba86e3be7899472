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

    def inhibited_by(self, target: TrackedAlert, alerts: Iterable[TrackedAlert]) -> str | None:
        """The fingerprint-tagged reason ``target`` is inhibited, or None."""
        if not target.active:
            return None  # a resolution is never held back
        sources = [
            alert
            for alert in alerts
            if alert.state == AlertState.FIRING.value and alert.fingerprint != target.fingerprint
        ]
        if self.source_down and target.labels.get("alertname") != SOURCE_DOWN_ALERT:
            symptom = target.state in (AlertState.NODATA.value, AlertState.ERROR.value) or (
                target.labels.get("source_dependent") == "true"
            )
            if symptom:
                for source in sources:
                    if source.labels.get("alertname") == SOURCE_DOWN_ALERT and all(
                        source.labels.get(key) == target.labels.get(key)
                        for key in _SOURCE_DOWN_EQUAL
                        if key in source.labels and key in target.labels
                    ):
                        return f"inhibited:{source.fingerprint}"
        for rule in self.rules:
            if not all_match(rule.target, target.labels):
                continue
            for source in sources:
                if all_match(rule.source, source.labels) and all(
                    source.labels.get(key, "") == target.labels.get(key, "") for key in rule.equal
                ):
                    # A source that is itself a target of the same rule must not mute
                    # its peer and be muted by it in turn (Alertmanager does the same).
                    if all_match(rule.target, source.labels):
                        continue
                    return f"inhibited:{source.fingerprint}"
        return None
