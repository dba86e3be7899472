"""Assemble the pipeline from configuration: rules, clients, data source, engine.

Shared by ``once``, ``backtest``, ``run`` and ``demo`` so each wires the parts the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.clock import Clock
from agent.collect import Clients, build_clients
from agent.config import ConfigError, Settings, load_settings
from agent.evaluate.engine import Engine
from agent.evaluate.loader import Problem, RulesInvalid, load_rules
from agent.evaluate.rules import Rule, resolve_stacks
from agent.evaluate.sources import LiveSource
from agent.notify.config import RouteConfig


def load_config(path: Path | None, *, explicit: bool) -> Settings:
    """The settings from ``path``; a missing file is an error only when the user named it."""
    return load_settings(path, required=explicit)


def load_rule_set(settings: Settings) -> list[Rule]:
    """Every rule under the configured rule paths, with stack names resolved to API keys."""
    missing = [p for p in settings.agent.rule_paths if not p.exists()]
    if missing:
        raise ConfigError([f"{p}: rule path not found" for p in missing])
    loaded = load_rules(settings.agent.rule_paths)
    rules: list[Rule] = []
    problems: list[Problem] = []
    route_names = _route_names(settings.notify.route)
    action_names = {action.name for action in settings.remediate.actions}
    for item in loaded:
        try:
            rules.append(resolve_stacks(item.rule, settings.contentstack.stacks))
        except ValueError as error:
            problems.append(Problem(item.path, item.line, "query.stacks", str(error)))
        unknown = [name for name in item.rule.routes if name not in route_names]
        if unknown:
            problems.append(
                Problem(
                    item.path,
                    item.line,
                    f"rule[{item.rule.name}].routes",
                    f"no route named {', '.join(map(repr, unknown))} in [notify.route]",
                )
            )
        # a rule may name actions of a remediation that is off (the shipped rules do);
        # once it is on, a name without its action is a typo that would act never
        unknown_actions = [name for name in item.rule.actions if name not in action_names]
        if unknown_actions and settings.remediate.enabled:
            problems.append(
                Problem(
                    item.path,
                    item.line,
                    f"rule[{item.rule.name}].actions",
                    f"no action named {', '.join(map(repr, unknown_actions))} "
                    "in [[remediate.actions]]",
                )
            )
    if problems:
        raise RulesInvalid(problems)
    return rules


def _route_names(route: RouteConfig) -> set[str]:
    names = {route.name} if route.name else set()
    for child in route.routes:
        names |= _route_names(child)
    return names


@dataclass
class Pipeline:
    settings: Settings
    clients: Clients
    engine: Engine

    def close(self) -> None:
        self.clients.close()


def build_pipeline(
    settings: Settings,
    clock: Clock,
    rules: list[Rule] | None = None,
    *,
    network_clock: Clock | None = None,
) -> Pipeline:
    """Clients, source and engine. ``network_clock`` paces requests (rate limit, retries,
    job polling) when it must differ from the clock of the monitored world: the demo
    speeds up the world, but 10 requests per second stay 10 per real second."""
    problem = settings.contentstack.credentials_problem()
    if problem:
        raise ConfigError([problem])
    rules = load_rule_set(settings) if rules is None else rules
    clients = build_clients(settings.contentstack, network_clock or clock)
    source = LiveSource(
        clients.analytics, clients.automations, settings.contentstack.automations_projects
    )
    engine = Engine(
        rules,
        source,
        default_interval=settings.agent.default_interval,
        link=settings.agent.link,
        stack_names={key: name for name, key in settings.contentstack.stacks.items()},
    )
    return Pipeline(settings, clients, engine)
