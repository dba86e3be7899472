"""Remediation against the simulator over real HTTP on 127.0.0.1, on a ManualClock."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agent.clock import ManualClock
from agent.collect import Clients, RateLimiter, build_clients
from agent.config import ContentstackSettings
from agent.evaluate.alerts import AlertState, Transition, fingerprint
from agent.remediate import AuditFilter, AuditRecord, Guardrail, RemediateConfig, Remediator
from agent.remediate.records import AlertContext
from agent.simulator import Scenario, Simulator
from agent.simulator.scenario import hex_id
from agent.store import Store

AUTHTOKEN = "blt-remediate-authtoken-41c2"
ORG = "org-remediate"
NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
PROJECT = hex_id("project", "Operations")
PURGE = hex_id(PROJECT, "purge")
NOTIFY = hex_id(PROJECT, "notify")
DRAFT = hex_id(PROJECT, "draft")
PURGE_KEY = "purge-secret"
RULE = "runaway-automation"


class MaxRandom(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


@dataclass
class FakeHealth:
    """What evaluate would answer: ``guard`` blocks every action; alerts whose fingerprint is
    in ``stopped`` no longer fire."""

    guard: Guardrail | None = None
    stopped: set[str] = field(default_factory=set)

    def blocked(self, rule: str, fingerprint: str) -> Guardrail | None:
        return self.guard

    def still_firing(self, fingerprint: str, since: float) -> bool:
        return fingerprint not in self.stopped


@dataclass
class World:
    sim: Simulator
    clock: ManualClock
    clients: Clients
    store: Store
    health: FakeHealth
    announced: list[str] = field(default_factory=list)
    counted: list[tuple[str, str]] = field(default_factory=list)

    def remediator(self, **config: Any) -> Remediator:
        values: dict[str, Any] = {"enabled": True, "allowlist": [PURGE, NOTIFY, DRAFT]}
        values.update(config)
        return Remediator(
            RemediateConfig.model_validate(values),
            self.store,
            self.clock,
            self.clients.automations,
            self.clients.trigger,
            health=self.health,
            announce=lambda alert, text: self.announced.append(text),
            observe=lambda action, outcome: self.counted.append((action, outcome)),
        )

    def fire(self, rem: Remediator, *actions: str, at: datetime | None = None, **kw: Any) -> None:
        self.submit(rem, transition(actions, AlertState.FIRING, at=at or self.clock.now(), **kw))

    def resolve(self, rem: Remediator, *actions: str, since: datetime, **kw: Any) -> None:
        at = self.clock.now()
        self.submit(rem, transition(actions, AlertState.RESOLVED, at=at, since=since, **kw))

    def submit(self, rem: Remediator, item: Transition) -> None:
        with self.store.tx() as conn:
            rem.schedule(conn, [item])

    def audit(self, **filters: Any) -> list[AuditRecord]:
        """Oldest first."""
        return list(reversed(self.storage_audit(**filters)))

    def storage_audit(self, **filters: Any) -> list[AuditRecord]:
        from agent.remediate import RemediationStorage

        return RemediationStorage(self.store).audit(AuditFilter(**filters))

    def calls(self, *, writes_only: bool = False) -> list[tuple[str, str]]:
        """The simulator's request log as (method, path); writes: PATCH and triggers."""
        seen = [(r.method, r.path) for r in self.sim.requests]
        if writes_only:
            return [c for c in seen if c[0] == "PATCH" or c[1].startswith("/automations-api/")]
        return seen

    def active(self, automation: str) -> bool:
        return self.clients.automations.get_automation(PROJECT, automation).active


def transition(
    actions: tuple[str, ...],
    state: AlertState,
    *,
    at: datetime,
    since: datetime | None = None,
    rule: str = RULE,
    labels: dict[str, str] | None = None,
    severity: str = "critical",
) -> Transition:
    all_labels = {
        "alertname": rule,
        "severity": severity,
        "project": PROJECT,
        "automation": NOTIFY,
        **(labels or {}),
    }
    firing = state is AlertState.FIRING
    return Transition(
        rule=rule,
        fingerprint=fingerprint(rule, all_labels),
        labels=all_labels,
        previous=AlertState.PENDING if firing else AlertState.FIRING,
        state=state,
        at=at,
        value=7.0,
        threshold=3.0,
        annotations={"summary": "7 failed runs in 15m"},
        firing_since=at if firing else since,
        actions=actions,
    )


def alert_of(item: Transition) -> AlertContext:
    return AlertContext.of(item)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = ManualClock(NOW)
    with Simulator(Scenario(), clock=clock, authtoken=AUTHTOKEN, organization_uid=ORG) as sim:
        settings = ContentstackSettings(
            organization_uid=ORG,
            authtoken=SecretStr(AUTHTOKEN),
            analytics_base_url=sim.url,
            automations_base_url=sim.url,
            max_retries=1,
            request_timeout=timedelta(seconds=5),
        )
        # a limiter on the ManualClock: pauses after a 429 cost no real time
        clients = build_clients(settings, clock, rng=MaxRandom(), limiter=RateLimiter(10, clock))
        store = Store(tmp_path / "state.db")
        try:
            yield World(sim, clock, clients, store, FakeHealth())
        finally:
            clients.close()
            store.close()


ACTIONS: dict[str, dict[str, Any]] = {
    "purge": {
        "name": "purge",
        "kind": "trigger",
        "trigger": "purge-cache",
        "http_key": PURGE_KEY,
        "project": PROJECT,
        "automation": PURGE,
        "body": {"reason": "{{ rule }} fired on {{ labels.automation }}", "value": "{{ value }}"},
    },
    "disable-runaway": {
        "name": "disable-runaway",
        "kind": "disable",
        "project": "{{ labels.project }}",
        "automation": "{{ labels.automation }}",
        "revert_on_resolve": True,
    },
}


def actions(*names: str, **changes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**ACTIONS[name], **changes.get(name.replace("-", "_"), {})} for name in names]


Factory = Callable[..., Remediator]
