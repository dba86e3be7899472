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

from agent.daemon import persistence
from agent.daemon.transitions import retirements
from agent.evaluate.alerts import AlertState
from agent.evaluate.engine import CycleReport, Instance
from agent.evaluate.rules import Rule
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
