"""The daemon: collect → evaluate → notify → remediate on a schedule, with its state in SQLite.

The parts of one configuration are a ``wiring.Pipeline``; a reload builds a new one and
swaps it whole. What a cycle writes, and in which order, is ``cycle``; what an operator
asks of the running daemon (silences, acks, listings) is ``operations``.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from agent.clock import Clock, SystemClock, shared_clock
from agent.config import ConfigError, Settings, load_settings
from agent.daemon import cycle, heap, persistence, security, startup, systemd
from agent.daemon.exporter import ContentstackCollector
from agent.daemon.grouping import RuleGroup
from agent.daemon.http_api import ApiServer
from agent.daemon.locks import SharedExclusiveLock
from agent.daemon.metrics import Metrics
from agent.daemon.operations import Operations
from agent.daemon.process import ProcessLoop
from agent.daemon.scheduler import EvaluationScheduler
from agent.daemon.transitions import config_transition, problems_of
from agent.logs import configure_logging
from agent.notify import Notifier
from agent.store import Store
from agent.wiring import Pipeline, build_pipeline

log = structlog.get_logger("agent.daemon")

#: how often (agent clock) old daemon rows are pruned.
PRUNE_EVERY = timedelta(hours=1)
#: a beat older than this (wall seconds) means the daemon is stuck: no watchdog ping.
BEAT_STALE = 120.0


class Daemon:
    def __init__(
        self,
        settings: Settings,
        config_path: Path | None,
        *,
        config_required: bool = True,
        clock: Clock | None = None,
    ) -> None:
        heap.limit_fragmentation()  # before the first answer's buffers
        self.config_path = config_path
        self.config_required = config_required
        agent = settings.agent
        self.clock = clock or shared_clock(agent.clock_speed, agent.clock_origin)
        # the world may run fast; the API's rate limit and job polling stay in real time
        self.network_clock: Clock | None = None if agent.clock_speed == 1.0 else SystemClock()
        self.metrics = Metrics()
        self.store = Store(agent.state_path)
        persistence.migrate(self.store)
        self.pipeline = self._build_pipeline(settings)
        # Contentstack's numbers, read at scrape time from whatever engine is current
        self.metrics.registry.register(
            ContentstackCollector(lambda: self.pipeline.engine, self.clock)
        )
        self.guard = SharedExclusiveLock()
        self.scheduler = EvaluationScheduler(self.clock, self.metrics.observe_wait)
        self.api: ApiServer | None = None
        self.crashes = cycle.CrashAlerts()
        #: set once started: state restored, rules scheduled, the API served
        self._started = threading.Event()
        #: per rule group, whether its latest cycle reached the source (groups not yet run
        #: are not waited for: a slow group must not hold the daemon's readiness back)
        self._reached: dict[str, bool] = {}
        self._last_beat = time.monotonic()
        self._pruned_at: datetime | None = None
        self._loop: ProcessLoop | None = None
        #: the channels' URLs are judged after start-up
        self._channels = startup.ChannelLoader()

    @property
    def settings(self) -> Settings:
        return self.pipeline.settings

    @property
    def notifier(self) -> Notifier:
        notifier = self.pipeline.notifier
        assert notifier is not None, "the daemon's pipeline is built with its store"
        return notifier

    def _build_pipeline(self, settings: Settings, previous: Pipeline | None = None) -> Pipeline:
        return build_pipeline(
            settings,
            self.clock,
            network_clock=self.network_clock,
            store=self.store,
            previous=previous,
            observe_api=self.metrics.observe_api,
            observe_remediation=self.metrics.observe_remediation,
            lazy_channels=previous is None,
        )

    # -- start-up ---------------------------------------------------------------------

    def start(self) -> None:
        cycle.restore(self.pipeline, self.store, self.clock.now())
        cycle.resolve_config_alert(self.pipeline, self.store, self.notifier, self.clock.now())
        rate = self.settings.contentstack.rate_limit
        startup.schedule(
            self.scheduler, self.pipeline.engine, self.run_group, first_runs_at_rate=rate
        )
        self.scheduler.add_beat(self.settings.agent.notify_interval, self.beat)
        heap.settle()  # before any cycle: what is in flight when it freezes would stay
        self.scheduler.start()
        agent = self.settings.agent
        token = security.daemon_token(agent.api_token, self.store.path.parent)
        self.api = ApiServer(self, agent.http_bind, agent.http_port, token).start()
        rules = len(self.pipeline.rule_hashes)
        with self.store.tx() as conn:
            persistence.set_meta(conn, "http_url", self.api.url)
            persistence.audit(
                conn, self.clock.now(), "stackwatch", "started", None, {"rules": rules}
            )
        log.info(
            "daemon_started",
            http=self.api.url,
            rules=rules,
            state=str(self.store.path),
            clock_speed=agent.clock_speed,
        )
        self._started.set()
        self.metrics.ready.set(1)
        log.info("daemon_ready")
        systemd.notify("READY=1\nSTATUS=evaluating rules")
        self._channels.start(self.notifier, self._request_stop)

    def _request_stop(self) -> None:
        if self._loop is not None:
            self._loop.request_stop()

    # -- the cycle --------------------------------------------------------------------

    def run_group(self, group: RuleGroup) -> None:
        with self.guard.shared():
            pipeline = self.pipeline
            engine = pipeline.engine
            rules = [engine.rules[name] for name in group.rules if name in engine.rules]
            if not rules:
                return
            now = self.clock.now()
            started = time.monotonic()
            try:
                report, counts = cycle.evaluate(pipeline, self.store, rules, now)
            except Exception as error:
                # this group only: the others keep their own schedule
                self.metrics.evaluations.labels(group.label, "crashed").inc()
                log.exception("evaluation_crashed", group=group.label)
                error_text = f"{type(error).__name__}: {error}"
                self.crashes.report(pipeline, self.store, group.label, now, error_text)
                return
            self.crashes.report(pipeline, self.store, group.label, now, None)
        if report.transitions:  # committed: their notifications leave now
            self.scheduler.wake_beat()
        elapsed = time.monotonic() - started
        self.metrics.record_cycle(group.label, elapsed, errors=bool(report.errors))
        self.metrics.set_group_counts(group.job_id, counts)
        cycle.log_report(group.label, report, elapsed, now)
        failed_all = report.requests > 0 and report.failed_requests == report.requests
        self._reached[group.label] = not failed_all
        self.metrics.ready.set(1 if self.ready() else 0)

    def beat(self) -> None:
        """Deliveries, then remediation: an alert's notice goes out before the notice of
        what was done about it (which leaves with the next beat)."""
        pipeline, notifier = self.pipeline, self.notifier
        try:
            report = notifier.run_once()
            self.metrics.record_delivery(report, notifier.outbox_counts())
            self._prune()
        except Exception:
            log.exception("notify_beat_failed")
        cycle.remediate(pipeline)
        self._last_beat = time.monotonic()

    def _prune(self) -> None:
        now = self.clock.now()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        agent = self.settings.agent
        cycle.prune(self.pipeline, self.store, now - agent.retention, now - agent.sample_retention)
        self._pruned_at = now

    # -- reload -----------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read config and rules and swap in the pipeline they make; keep everything
        running as it is when they are bad."""
        now = self.clock.now()
        try:
            settings = load_settings(self.config_path, required=self.config_required)
            pipeline = self._build_pipeline(settings, previous=self.pipeline)
        except Exception as error:  # whatever broke, the running pipeline stays
            problems = problems_of(error)
            self.metrics.reloads.labels("failed").inc()
            log.error("reload_failed", problems=problems)
            with self.store.tx() as conn:
                self.pipeline.react([config_transition(True, now, problems)])
                failed = {"problems": problems}
                persistence.audit(conn, now, "signal", "reload", None, failed, outcome="failed")
            return False
        with self.guard.exclusive():
            old = self.pipeline
            before = cycle.instances_by_rule(old)
            pipeline.take_over(old)
            self.pipeline = pipeline
        old.close(keep=pipeline)
        hashes = pipeline.rule_hashes
        removed, changed = cycle.retire_replaced(pipeline, old, before, self.store, now)
        startup.schedule(self.scheduler, pipeline.engine, self.run_group)
        self._reached = {}
        configure_logging(settings.agent.log_level)
        cycle.resolve_config_alert(pipeline, self.store, self.notifier, self.clock.now())
        detail: dict[str, Any] = {"rules": len(hashes), "removed": removed, "changed": changed}
        with self.store.tx() as conn:
            persistence.audit(conn, now, "signal", "reload", None, detail)
        self.metrics.reloads.labels("ok").inc()
        restart = startup.needs_restart(settings, old.settings)
        del old, before  # garbage now: frozen by the settle, it would be kept for good
        heap.settle()
        if restart:
            log.warning("reload_needs_restart", settings=restart)
        log.info("reload_ok", rules=len(hashes), removed=removed, changed=changed)
        return True

    # -- running as a process ---------------------------------------------------------

    def run(self) -> bool:
        """Serve until SIGTERM/SIGINT; True when it stopped cleanly. Raises ConfigError,
        once stopped, when a channel's URL turned out bad."""
        self._loop = ProcessLoop(self)
        stopped = self._loop.run()
        if self._channels.problems:
            raise ConfigError(self._channels.problems)
        return stopped

    def stop(self) -> bool:
        started = time.monotonic()
        systemd.notify("STOPPING=1")
        log.info("daemon_stopping")
        timeout = self.settings.agent.shutdown_timeout.total_seconds()
        self.scheduler.pause()
        idle = self.scheduler.wait_idle(timeout)
        if not idle:
            log.warning("stop_abandons_cycles", timeout=timeout)
        deadline = started + timeout * 2 if idle else time.monotonic()
        pending = 0
        try:  # deliver what the cycles queued, within the timeout (to channels that loaded)
            if not self._channels.problems:
                pending = self.notifier.drain(deadline)
        except Exception:
            log.exception("flush_failed")
        self.scheduler.shutdown()
        if self.api is not None:
            self.api.stop()
        try:
            with self.store.tx() as conn:
                persistence.audit(conn, self.clock.now(), "stackwatch", "stopped")
        except Exception:
            log.exception("audit_failed")
        if pending:
            log.warning("outbox_not_empty", pending=pending)
        if idle:
            self.pipeline.close()
            self.store.close()
        log.info("daemon_stopped", seconds=round(time.monotonic() - started, 3))
        return idle

    # -- what the HTTP endpoint asks --------------------------------------------------

    def healthy(self) -> bool:
        return self.scheduler.running and time.monotonic() - self._last_beat < BEAT_STALE

    def ready(self) -> bool:
        """Started, and not cut off from the source: unless every group that has run
        since failed all of its requests (a group not yet run is not waited for)."""
        reached = list(self._reached.values())
        return self._started.is_set() and (not reached or any(reached))

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    def operations(self) -> Operations:
        return Operations(self.store, self.notifier, self.clock, via="api")


__all__ = ["Daemon"]
