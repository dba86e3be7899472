"""``stackwatch demo``: the whole pipeline against the built-in simulator, no credentials.

The simulator and the agent share one ScaledClock, so a simulated hour of CDN
traffic (with an injected 5xx spike and a cache-hit drop) passes in a minute or
two of wall time, while the agent evaluates the shipped rules (``config.toml``
beside this file, whose ``rules`` folder is the repository's ``rules/``) and sends
its notifications through Apprise to the terminal (``console://``). Remediation is on:
the rules' actions run against the simulator's automations, and each action, with its
verification, is printed as it happens.

The demo ends at its wall-clock ``duration``, or earlier once the story is told:
every incident of the scenario is over and nothing is firing or pending any more.
A slow machine then only makes the demo take longer, not miss its ending.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from agent.clock import ScaledClock, SystemClock
from agent.config import Settings
from agent.evaluate.alerts import AlertState
from agent.evaluate.engine import Instance
from agent.notify import Notifier, NotifyConfig
from agent.remediate import EngineHealth, RemediateConfig, Remediator
from agent.simulator import Simulator, load_scenario
from agent.simulator.scenario import Incident, Scenario
from agent.store import Store
from agent.wiring import Pipeline, build_pipeline

DEMO_ORGANIZATION = "demo-organization"
#: how often (in simulated time) the demo prints where things stand
PROGRESS_EVERY = timedelta(minutes=10)
#: after the last incident, time for windows to slide past it and clear_for to run out
STORY_MARGIN = timedelta(minutes=15)


@dataclass
class DemoReport:
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    evaluations: int = 0


def demo_notify_config() -> NotifyConfig:
    """Every alert to the terminal at once; resolved notices included."""
    return NotifyConfig.model_validate(
        {
            "channels": [{"name": "terminal", "urls": ["console://"]}],
            "route": {
                "channels": ["terminal"],
                "group_by": ["alertname", "stack_name"],
                "group_wait": "0s",
                "group_interval": "1m",
                "repeat_interval": "4h",
            },
        }
    )


def demo_remediate_config(scenario: Scenario) -> RemediateConfig:
    """The shipped rules' actions, aimed at the scenario's automations: the cache-hit drop
    runs "Purge CDN cache" by its trigger, and a failing automation is disabled until its
    alert resolves."""
    purge = next(
        (project, automation)
        for project in scenario.projects
        for automation in project.automations
        if automation.title == "Purge CDN cache"
    )
    project, automation = purge
    return RemediateConfig.model_validate(
        {
            "enabled": True,
            "allowlist": ["Purge CDN cache", "Notify on publish"],
            "actions": [
                {
                    "name": "purge-cdn-cache",
                    "kind": "trigger",
                    "trigger": automation.trigger_id,
                    "http_key": automation.secure_key,
                    "project": project.id,
                    "automation": automation.id,
                    "body": {"reason": "{{ rule }}: {{ summary }}"},
                },
                {
                    "name": "disable-failing-automation",
                    "kind": "disable",
                    "project": "{{ labels.project }}",
                    "automation": "{{ labels.automation }}",
                    "revert_on_resolve": True,
                },
            ],
        }
    )


def run_demo(
    settings: Settings,
    *,
    duration: float,
    speed: float,
    scenario_name: str = "demo",
    out: list[str] | None = None,
) -> DemoReport:
    """Run the demo for ``duration`` wall-clock seconds; returns what fired and resolved."""
    clock = ScaledClock(datetime.now(UTC).replace(microsecond=0), factor=speed)
    scenario = load_scenario(scenario_name)
    authtoken = secrets.token_hex(16)
    report = DemoReport()
    with (
        Simulator(
            scenario,
            clock=clock,
            authtoken=authtoken,
            organization_uid=DEMO_ORGANIZATION,
            job_duration=2.0,
        ) as simulator,
        tempfile.TemporaryDirectory(prefix="stackwatch-demo-") as folder,
    ):
        _point_at_simulator(settings, simulator, authtoken)
        settings.notify = demo_notify_config()
        settings.remediate = demo_remediate_config(simulator.scenario)
        _say(
            out,
            f"Simulator on {simulator.url}: stacks "
            f"{', '.join(sorted(settings.contentstack.stacks))}, time running {speed:g}x.",
        )
        _say(out, f"Evaluating the rules in {', '.join(map(str, settings.agent.rule_paths))}.")
        store = Store(Path(folder) / "demo.db")
        notifier = Notifier(settings.notify, store, clock)
        pipeline = build_pipeline(settings, clock, network_clock=SystemClock())
        remediator = Remediator(
            settings.remediate,
            store,
            clock,
            pipeline.clients.automations,
            pipeline.clients.trigger,
            health=EngineHealth(lambda: pipeline.engine),
            announce=lambda alert, text: notifier.announce(alert.fingerprint, text),
        )
        deadline = time.monotonic() + duration
        next_progress = clock.now()
        story_over = _story_end(simulator.scenario.incidents)
        try:
            while time.monotonic() < deadline:
                now = clock.now()
                if (
                    report.evaluations
                    and now >= story_over
                    and _all_quiet(pipeline, notifier, remediator)
                ):
                    _say(out, "The scenario's incidents are over and every alert has cleared.")
                    break
                if now >= next_progress:
                    _say(out, _progress(now, pipeline.engine.all_instances()))
                    next_progress = now + PROGRESS_EVERY
                due = pipeline.engine.due(now)
                if due:
                    cycle = pipeline.engine.evaluate(now, due)
                    report.evaluations += 1
                    for transition in cycle.transitions:
                        if transition.state is AlertState.FIRING:
                            report.fired.append(transition.rule)
                        elif transition.state is AlertState.RESOLVED:
                            report.resolved.append(transition.rule)
                    with store.tx() as conn:  # alert states and the actions they make due
                        notifier.submit(cycle.transitions)
                        remediator.schedule(conn, cycle.transitions)
                notifier.run_once()  # the alert's notice first, then what was done about it
                remediator.run_once()
                time.sleep(0.1)
        finally:
            notifier.run_once()
            pipeline.close()
            store.close()
    _say(
        out,
        f"Demo over: {report.evaluations} evaluation cycles, {len(report.fired)} alerts fired, "
        f"{len(report.resolved)} resolved.",
    )
    return report


def _story_end(incidents: list[Incident]) -> datetime:
    """When the last incident is over, plus a margin for its alert's window and clear_for."""
    ends = [incident.window()[1] for incident in incidents]
    return max(ends, default=datetime.min.replace(tzinfo=UTC)) + STORY_MARGIN


def _all_quiet(pipeline: Pipeline, notifier: Notifier, remediator: Remediator) -> bool:
    """No alert active, and nothing left to tell or do: a resolve still waiting for its
    group's interval, an undelivered row or an action due would be cut off by the end."""
    return (
        all(
            instance.state.state not in (AlertState.FIRING, AlertState.PENDING)
            for instance in pipeline.engine.all_instances()
        )
        and notifier.next_due() is None
        and remediator.storage.pending() == 0
    )


def _progress(now: datetime, instances: list[Instance]) -> str:
    counts = Counter(instance.state.state.value for instance in instances)
    states = ", ".join(f"{counts[state]} {state}" for state in sorted(counts)) or "none yet"
    return f"  [{now:%H:%M} simulated] {len(instances)} alert instances: {states}"


def _point_at_simulator(settings: Settings, simulator: Simulator, authtoken: str) -> None:
    contentstack = settings.contentstack
    contentstack.analytics_base_url = simulator.url
    contentstack.automations_base_url = simulator.url
    contentstack.authtoken = SecretStr(authtoken)
    contentstack.oauth_client_id = None
    contentstack.organization_uid = DEMO_ORGANIZATION
    contentstack.stacks = {stack.name: stack.api_key for stack in simulator.scenario.stacks}
    contentstack.automations_projects = []
    contentstack.job_timeout = max(contentstack.job_timeout, timedelta(minutes=5))


def _say(out: list[str] | None, line: str) -> None:
    print(line, flush=True)
    if out is not None:
        out.append(line)
