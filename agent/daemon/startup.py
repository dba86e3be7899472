"""What start-up arranges besides the daemon's own state: the rule jobs and their first
runs, the notification channels, loaded once the daemon serves, and which settings only
start-up applies."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from agent.config import ConfigError, Settings
from agent.daemon.grouping import RuleGroup, first_run_delays, group_rules
from agent.daemon.scheduler import EvaluationScheduler
from agent.evaluate.engine import Engine
from agent.notify import Notifier

log = structlog.get_logger("agent.daemon")


#: settings only start-up applies: a reload cannot change them in a running daemon
RESTART_SETTINGS = ("state_path", "http_bind", "http_port", "clock_speed", "clock_origin")


def needs_restart(settings: Settings, running: Settings) -> list[str]:
    """The settings that differ from the running ones but take a restart to apply."""
    new, was = settings.agent, running.agent
    return [key for key in RESTART_SETTINGS if getattr(new, key) != getattr(was, key)]


def schedule(
    scheduler: EvaluationScheduler,
    engine: Engine,
    run: Callable[[RuleGroup], None],
    *,
    first_runs_at_rate: float | None = None,
) -> None:
    """One job per rule group (grouped by the query keys the engine holds already);
    ``first_runs_at_rate``: at start-up, stagger the first runs for that API rate."""
    keys = engine.query_keys
    groups = group_rules(list(engine.rules.values()), engine.default_interval, keys)
    delays = None
    if first_runs_at_rate is not None:
        delays = first_run_delays(groups, keys, first_runs_at_rate)
    scheduler.sync_groups(groups, run, delays)


class ChannelLoader:
    """Apprise takes about a second to import: the channels load on a thread once the
    daemon serves. A channel URL that Apprise refuses stops the daemon, as a config
    error (``problems``)."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def start(self, notifier: Notifier, stop: Callable[[], None]) -> None:
        def load() -> None:
            from agent.notify import plugins

            plugins.keep_used_only()  # (a daemon sends through a few of Apprise's plugins)
            try:
                notifier.channels.load()
            except ConfigError as error:
                self.problems = error.problems
                log.error("config_invalid", problems=error.problems)
                stop()

        threading.Thread(target=load, name="channels", daemon=True).start()
