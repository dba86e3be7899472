"""Which actions an alert's state change makes due, and when (a pure function)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from agent.evaluate.alerts import AlertState, Transition
from agent.remediate.config import Action
from agent.remediate.records import AlertContext

RUN = "run"
REVERT = "revert"


@dataclass(frozen=True)
class Planned:
    #: one row per action, step, alert and firing episode, however often it is planned.
    key: str
    action: str
    step: str
    alert: AlertContext
    due_at: float


def plan(transitions: Iterable[Transition], actions: Mapping[str, Action]) -> list[Planned]:
    """Firing starts ``firing`` actions now and ``firing_for`` ones after their delay;
    resolving (an episode that fired) starts ``resolved`` actions and reverts disables
    that asked for it. Names a rule gives that no action has are ignored here (the
    config check reports them)."""
    planned: list[Planned] = []
    for transition in transitions:
        started = transition.state is AlertState.FIRING and transition.previous is not (
            AlertState.FIRING
        )
        ended = transition.state is AlertState.RESOLVED and transition.firing_since is not None
        if not (started or ended):
            continue
        alert = AlertContext.of(transition)
        episode = alert.firing_since if alert.firing_since is not None else alert.at
        for name in transition.actions:
            action = actions.get(name)
            if action is None:
                continue
            if started and action.when != "resolved" and action.applies_to(alert.severity):
                delay = action.after if action.when == "firing_for" else timedelta(0)
                planned.append(_due(action, RUN, alert, episode, episode + delay.total_seconds()))
            if ended and action.when == "resolved" and action.applies_to(alert.severity):
                planned.append(_due(action, RUN, alert, episode, alert.at))
            if ended and action.revert_on_resolve:
                planned.append(_due(action, REVERT, alert, episode, alert.at))
    return planned


def _due(action: Action, step: str, alert: AlertContext, episode: float, at: float) -> Planned:
    key = f"{action.name}:{step}:{alert.fingerprint}:{episode:.3f}"
    return Planned(key, action.name, step, alert, at)
