"""Assemble the pipeline from configuration: rules, clients, data source, engine.

Shared by ``once``, ``backtest``, ``run`` and ``demo`` so each wires the parts the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from agent.clock import Clock
from agent.config import REGION_HOSTS, ConfigError, Settings, load_settings
from agent.evaluate.loader import Problem, RulesInvalid, load_rules, rule_files
from agent.evaluate.rules import Rule, resolve_stacks
from agent.notify.config import RouteConfig
from agent.notify.links import Links

if TYPE_CHECKING:
    # the engine and the clients (httpx) load where a pipeline is built: ``check`` needs
    # neither
    from agent.collect import Clients
    from agent.evaluate.alerts import Transition
    from agent.evaluate.engine import Engine
    from agent.notify import Notifier
    from agent.notify.message import Reading
    from agent.remediate.audit import Observe
    from agent.remediate.records import AlertContext
    from agent.remediate.runner import Remediator
    from agent.store import Store


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


def check(settings: Settings) -> str:
    """What ``stackwatch check`` says of a valid configuration (config and every rule
    file); raises ConfigError or RulesInvalid for a bad one."""
    from agent.notify.channels import ChannelRegistry

    rules = load_rule_set(settings)
    files = rule_files(settings.agent.rule_paths)
    ChannelRegistry(settings.notify.channels)  # loads Apprise, which judges their URLs
    return f"OK: config valid, {len(rules)} rules in {len(files)} files"


def _route_names(route: RouteConfig) -> set[str]:
    names = {route.name} if route.name else set()
    for child in route.routes:
        names |= _route_names(child)
    return names


class Reactor(Protocol):
    """A stage that reacts to alert state changes inside the transaction that records
    them (notify's outbox today; remediation's queue next): a crash keeps both or neither."""

    def submit(self, transitions: Iterable[Transition]) -> None: ...


@dataclass
class Pipeline:
    """The stages of one configuration: collect (clients, source), evaluate (engine) and the
    stages after it. Reload builds a new one and swaps it whole."""

    settings: Settings
    clients: Clients
    engine: Engine
    #: None where nothing is sent (``once`` without ``--notify``, ``backtest``).
    notifier: Notifier | None = None
    #: None where nothing is sent; the daemon runs what it queues on its beat.
    remediator: Remediator | None = None
    #: rule name -> what its persisted state is about (``Rule.state_identity``).
    rule_hashes: dict[str, str] = field(default_factory=dict)

    @property
    def reactors(self) -> list[Reactor]:
        """The stages after evaluate, in order; a new stage appends itself here."""
        return [stage for stage in (self.notifier, self.remediator) if stage is not None]

    def react(self, transitions: Sequence[Transition]) -> None:
        """Hand a cycle's transitions to every later stage. Call inside ``store.tx()``."""
        for reactor in self.reactors:
            reactor.submit(transitions)

    def refresh(self, firing: Iterable[Reading]) -> None:
        """Tell notify the current (fingerprint, value, annotations) of alerts that fire on
        without a transition. Call inside ``store.tx()``, after ``react``."""
        if self.notifier is not None:
            self.notifier.refresh(firing)

    def take_over(self, previous: Pipeline) -> None:
        """Carry the previous pipeline's alert state into this one (rules whose meaning is
        unchanged keep it). Call while no cycle runs on ``previous``."""
        self.engine.take_over(previous.engine)

    def close(self, keep: Pipeline | None = None) -> None:
        """Release what this pipeline holds, except the parts ``keep`` took over."""
        if keep is None or keep.clients is not self.clients:
            self.clients.close()


def build_pipeline(
    settings: Settings,
    clock: Clock,
    rules: list[Rule] | None = None,
    *,
    network_clock: Clock | None = None,
    store: Store | None = None,
    previous: Pipeline | None = None,
    observe_api: Callable[[str, int], None] | None = None,
    observe_remediation: Observe | None = None,
    lazy_channels: bool = False,
) -> Pipeline:
    """Clients, source, engine and, given a ``store``, the notifier. ``network_clock``
    paces requests (rate limit, retries, job polling) when it must differ from the clock
    of the monitored world: the demo speeds up the world, but 10 requests per second stay
    10 per real second. Parts of a ``previous`` pipeline whose settings did not change are
    reused (open connections, caches); its alert state moves over with ``take_over``.
    ``observe_api`` hears every API answer (endpoint, status) of new clients,
    ``observe_remediation`` every remediation outcome (action, outcome).
    ``lazy_channels``: a new notifier loads Apprise and its channels when first used."""
    from agent.collect import build_clients
    from agent.evaluate.engine import Engine
    from agent.evaluate.sources import LiveSource

    problem = settings.contentstack.credentials_problem()
    if problem:
        raise ConfigError([problem])
    rules = load_rule_set(settings) if rules is None else rules
    notifier = None
    links = _message_links(settings)
    if (
        previous is not None
        and previous.notifier
        and previous.settings.notify == settings.notify
        and previous.notifier.links == links
    ):
        notifier = previous.notifier
    elif store is not None:
        from agent.notify import Notifier  # Apprise comes with it: only where it sends

        notifier = Notifier(settings.notify, store, clock, links, lazy_channels=lazy_channels)
    if previous is not None and previous.settings.contentstack == settings.contentstack:
        clients, source = previous.clients, previous.engine.source
    else:
        clients = build_clients(settings.contentstack, network_clock or clock)
        clients.http.observer = observe_api
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
    hashes = {rule.name: rule.state_identity() for rule in rules}
    remediator = None
    if store is not None:  # built anew: it reads this pipeline's engine and clients
        from agent.remediate.health import EngineHealth
        from agent.remediate.runner import Remediator

        remediator = Remediator(
            settings.remediate,
            store,
            clock,
            clients.automations,
            clients.trigger,
            health=EngineHealth(lambda: engine),
            announce=_announcer(notifier),
            observe=observe_remediation,
        )
    return Pipeline(settings, clients, engine, notifier, remediator, hashes)


def _message_links(settings: Settings) -> Links:
    """Where messages point: this daemon's alert pages, the stacks in the region's
    Contentstack app (the web app, not an API base URL a test may point elsewhere)."""
    app_host = REGION_HOSTS[settings.contentstack.region][0]
    return Links(external_url=settings.agent.external_url, contentstack_app=f"https://{app_host}")


def _announcer(notifier: Notifier | None) -> Callable[[AlertContext, str], object] | None:
    """Remediation tells the alert's channels what it did."""
    if notifier is None:
        return None
    return lambda alert, text: notifier.announce(alert.fingerprint, text)
