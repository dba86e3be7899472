"""The transaction of a cycle: evaluate, then record what changed, all or nothing.

Write order (why a SIGKILL at any point loses or repeats nothing): a cycle's
transitions and the engine state they lead to are written in one transaction — every
stage after evaluate (``Pipeline.react``: notify's outbox, and the next stage's queue)
joins the daemon's ``store.tx()``; notifications leave only through notify's durable
outbox afterwards. Killed before the commit, the restarted daemon restores the previous
state and the next cycle produces the same transitions; killed after it, the state is
restored and the outbox delivers what was queued.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog

from agent.daemon import heap, persistence
from agent.daemon.transitions import (
    CONFIG_FINGERPRINT,
    config_transition,
    crash_transition,
    retirements,
)
from agent.evaluate.alerts import AlertState
from agent.evaluate.engine import CycleReport, Instance
from agent.evaluate.rules import Rule
from agent.notify import Notifier
from agent.store import Store
from agent.wiring import Pipeline

log = structlog.get_logger("agent.daemon")


def evaluate(
    pipeline: Pipeline, store: Store, rules: Sequence[Rule], now: datetime
) -> tuple[CycleReport, Counter[str]]:
    """Evaluate ``rules`` at ``now`` and record the outcome; returns the report and the
    rules' instances counted by state."""
    engine = pipeline.engine
    report = engine.evaluate(now, list(rules))
    instances = [i for r in rules for i in engine.instances[r.name].values()]
    counts = Counter(i.state.state.value for i in instances)
    if engine.watch_source:
        instances.append(engine.source_state)
    changed = {transition.fingerprint for transition in report.transitions}
    with store.tx() as conn:
        pipeline.react(report.transitions)
        pipeline.refresh(
            (i.fingerprint, i.state.value, i.annotations)
            for i in instances
            if i.state.state is AlertState.FIRING and i.fingerprint not in changed
        )
        persistence.save(conn, instances, pipeline.rule_hashes, now)
        persistence.record_samples(conn, instances)
    heap.trim()  # (the pages of what the cycle read and wrote, freed now)
    return report, counts


def retire(
    pipeline: Pipeline,
    store: Store,
    instances: list[Instance],
    rows: list[tuple[str, Any]],
    why: str,
    now: datetime,
) -> None:
    """Resolve active alerts of rules that are gone (no incident left open) and forget
    the stored ``(rule, instance key)`` rows."""
    transitions = retirements(instances, now, why)
    if not transitions and not rows:
        return
    with store.tx() as conn:
        pipeline.react(transitions)
        persistence.forget(conn, rows)


def restore(pipeline: Pipeline, store: Store, now: datetime) -> tuple[int, int]:
    """Put persisted instances back into the engine; resolve those of removed rules.
    Returns how many were restored and skipped."""
    engine, hashes = pipeline.engine, pipeline.rule_hashes
    stored = persistence.load(store.connection())
    restored, skipped = persistence.restore(engine, stored)
    gone, changed = persistence.outdated(stored, engine, hashes)
    retire(
        pipeline,
        store,
        [item.to_instance(None) for item in gone],
        [(item.rule, item.key) for item in gone + changed],
        "rule removed from the configuration while the agent was stopped",
        now,
    )
    log.info("state_restored", restored=restored, skipped=skipped)
    return restored, skipped


def instances_by_rule(pipeline: Pipeline) -> dict[str, dict[Any, Instance]]:
    """Each rule's instances, as a reload finds them before the new pipeline takes over."""
    engine = pipeline.engine
    return {name: engine.instances.get(name, {}) for name in engine.rules}


def retire_replaced(
    new: Pipeline,
    old: Pipeline,
    before: dict[str, dict[Any, Instance]],
    store: Store,
    now: datetime,
) -> tuple[list[str], list[str]]:
    """After a reload: resolve the alerts of removed rules, forget the stored state of
    removed and changed ones; returns their names (removed, changed)."""
    hashes = new.rule_hashes
    removed = [n for n in before if n not in hashes]
    changed = [n for n in before if n in hashes and hashes[n] != old.rule_hashes[n]]
    retire(
        new,
        store,
        [i for name in removed for i in before[name].values()],
        [(name, key) for name in removed + changed for key in before[name]],
        "rule removed from the configuration",
        now,
    )
    return removed, changed


def resolve_config_alert(
    pipeline: Pipeline, store: Store, notifier: Notifier, now: datetime
) -> None:
    """Resolve the rejected-configuration meta-alert when it fires (a good config is in)."""
    if any(
        a.fingerprint == CONFIG_FINGERPRINT and a.state == AlertState.FIRING.value
        for a in notifier.alerts()
    ):
        with store.tx():
            pipeline.react([config_transition(False, now, [])])


class CrashAlerts:
    """The crash meta-alert of each rule group: fired once per episode (the group's
    evaluation raised), resolved when the group evaluates again."""

    def __init__(self) -> None:
        #: rule groups whose last evaluation raised (their meta-alert fires)
        self.crashed: set[str] = set()

    def report(
        self, pipeline: Pipeline, store: Store, group: str, now: datetime, error: str | None
    ) -> None:
        if (error is not None) == (group in self.crashed):
            return
        try:
            with store.tx():
                pipeline.react([crash_transition(group, error is not None, now, error or "")])
        except Exception:
            log.exception("crash_alert_failed", group=group)
            return
        if error is None:
            self.crashed.discard(group)
        else:
            self.crashed.add(group)


def remediate(pipeline: Pipeline) -> None:
    """Run what remediation queued, outside any cycle's transaction (it calls the API)."""
    if pipeline.remediator is None:
        return
    try:
        pipeline.remediator.run_once()
    except Exception:
        log.exception("remediation_beat_failed")


def prune(pipeline: Pipeline, store: Store, cutoff: datetime, samples_cutoff: datetime) -> None:
    """Forget what every stage keeps past its retention."""
    with store.tx() as conn:
        instances, audits = persistence.prune(conn, cutoff, samples_cutoff)
    if pipeline.remediator is not None:
        pipeline.remediator.storage.prune(cutoff.timestamp())
    if instances or audits:
        log.info("state_pruned", instances=instances, audit_rows=audits)


def log_report(label: str, report: CycleReport, elapsed: float, now: datetime) -> None:
    for transition in report.transitions:
        log.info(
            "alert_transition",
            rule=transition.rule,
            fingerprint=transition.fingerprint,
            previous=transition.previous.value,
            state=transition.state.value,
            value=transition.value,
            labels=transition.labels,
        )
    for rule, message in report.errors.items():
        log.warning("rule_error", rule=rule, error=message)
    log.debug("cycle", group=label, seconds=round(elapsed, 3), at=now.isoformat())
