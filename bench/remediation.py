"""Benchmark: what remediation costs, against the simulator over real HTTP.

    python bench/remediation.py [--rounds 30] [--transitions 2000]

Prints, in one run: the time ``Remediator.schedule`` adds to a cycle's transaction per firing
transition (two actions each); and, per action kind, the median wall time from claiming an
action due to its verified outcome, with the requests it cost (counted at the simulator).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from agent.clock import ManualClock
from agent.collect import RateLimiter, build_clients
from agent.config import ContentstackSettings
from agent.evaluate.alerts import AlertState, Transition, fingerprint
from agent.logs import configure_logging
from agent.remediate import Guardrail, RemediateConfig, Remediator
from agent.simulator import Scenario, Simulator
from agent.simulator.scenario import hex_id
from agent.store import Store

PROJECT = hex_id("project", "Operations")
PURGE = hex_id(PROJECT, "purge")
NOTIFY = hex_id(PROJECT, "notify")
ACTIONS = [
    {
        "name": "purge",
        "kind": "trigger",
        "trigger": "purge-cache",
        "http_key": "purge-secret",
        "project": PROJECT,
        "automation": PURGE,
        "body": {"reason": "{{ rule }}: {{ summary }}"},
        "cooldown": "0s",
    },
    {
        "name": "disable",
        "kind": "disable",
        "project": "{{ labels.project }}",
        "automation": "{{ labels.automation }}",
        "revert_on_resolve": True,
        "cooldown": "0s",
    },
]


class AlwaysFiring:
    def blocked(self, rule: str, fingerprint: str) -> Guardrail | None:
        return None

    def still_firing(self, fingerprint: str, since: float) -> bool:
        return True


def transition(index: int, names: tuple[str, ...], state: AlertState, at: datetime) -> Transition:
    labels = {"alertname": "r", "severity": "critical", "project": PROJECT, "automation": NOTIFY}
    labels["n"] = str(index)
    firing = state is AlertState.FIRING
    return Transition(
        rule="r",
        fingerprint=fingerprint("r", labels),
        labels=labels,
        previous=AlertState.PENDING if firing else AlertState.FIRING,
        state=state,
        at=at,
        value=1.0,
        annotations={"summary": "bench"},
        firing_since=at,
        actions=names,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--transitions", type=int, default=2000)
    args = parser.parse_args()
    configure_logging("error")
    clock = ManualClock(datetime(2024, 6, 1, tzinfo=UTC))
    config = RemediateConfig.model_validate(
        {"enabled": True, "allowlist": [PURGE, NOTIFY], "max_actions_per_hour": 1000,
         "actions": ACTIONS}
    )  # fmt: skip
    # no rate limit on either side: the bench measures the calls, not the pacing
    sim_options = {"authtoken": "t", "organization_uid": "o", "rate_limit": 100_000}
    with Simulator(Scenario(), clock=clock, **sim_options) as sim:
        settings = ContentstackSettings(
            organization_uid="o",
            authtoken=SecretStr("t"),
            analytics_base_url=sim.url,
            automations_base_url=sim.url,
        )
        clients = build_clients(settings, clock, limiter=RateLimiter(10_000, clock))
        with tempfile.TemporaryDirectory() as folder:
            store = Store(Path(folder) / "bench.db")
            rem = Remediator(
                config, store, clock, clients.automations, clients.trigger, health=AlwaysFiring()
            )
            batch = [
                transition(i, ("purge", "disable"), AlertState.FIRING, clock.now())
                for i in range(args.transitions)
            ]
            started = time.perf_counter()
            with store.tx() as conn:
                rem.schedule(conn, batch)
            per = (time.perf_counter() - started) / len(batch) * 1e6
            print(f"schedule: {per:.1f} µs per firing transition with 2 actions "
                  f"({len(batch)} in one transaction)")  # fmt: skip
            with store.tx() as conn:  # start the timed rounds from an empty queue
                conn.execute("DELETE FROM remediate_due")
            for kind in ("purge", "disable"):
                times, requests = [], []
                for round_ in range(args.rounds):
                    clock.advance(timedelta(minutes=1))
                    item = transition(10_000 + round_, (kind,), AlertState.FIRING, clock.now())
                    with store.tx() as conn:
                        rem.schedule(conn, [item])
                    before = len(sim.requests)
                    started = time.perf_counter()
                    [record] = rem.run_once()
                    times.append(time.perf_counter() - started)
                    requests.append(len(sim.requests) - before)
                    assert record.outcome.value == "succeeded", record.message
                    if kind == "disable":  # put it back for the next round
                        clients.automations.enable(PROJECT, NOTIFY)
                median = statistics.median(times) * 1000
                calls = statistics.median(requests)
                print(f"{kind}: median {median:.1f} ms from claim to verified outcome, "
                      f"{calls:.0f} requests ({args.rounds} rounds)")  # fmt: skip
            store.close()
        clients.close()


if __name__ == "__main__":
    main()
