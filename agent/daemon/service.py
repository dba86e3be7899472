"""The daemon: collect → evaluate → notify on a schedule, with its state in SQLite.

Write order (why a SIGKILL at any point loses or repeats nothing): a cycle's
transitions and the engine state they lead to are written in one transaction
(``Notifier.submit`` joins the daemon's ``store.tx()``); notifications leave only
through notify's durable outbox afterwards. Killed before the commit, the restarted
daemon restores the previous state and the next cycle produces the same transitions;
killed after it, the state is restored and the outbox delivers what was queued.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from agent.clock import Clock, SystemClock, shared_clock
from agent.config import ConfigError, Settings, load_settings
from agent.daemon import persistence, systemd
from agent.daemon.grouping import RuleGroup, group_rules
from agent.daemon.http_api import ApiError, ApiServer
from agent.daemon.locks import SharedExclusiveLock
from agent.daemon.metrics import Metrics
from agent.daemon.scheduler import EvaluationScheduler
from agent.daemon.status import alert_rows
from agent.durations import parse_duration
from agent.evaluate.alerts import AlertState, Transition, fingerprint
from agent.evaluate.engine import Instance
from agent.evaluate.loader import RulesInvalid
from agent.evaluate.rules import Rule
from agent.logs import configure_logging
from agent.notify import Notifier
from agent.redact import redact
from agent.remediate.health import EngineHealth
from agent.remediate.runner import Remediator
from agent.remediate.storage import AuditFilter
from agent.store import Store
from agent.wiring import Pipeline, build_pipeline, load_rule_set

log = structlog.get_logger("agent.daemon")

CONFIG_INVALID = "StackwatchConfigInvalid"
_CONFIG_LABELS = {"alertname": CONFIG_INVALID, "severity": "critical"}
CONFIG_FINGERPRINT = fingerprint(CONFIG_INVALID, _CONFIG_LABELS)
#: how often (agent clock) old daemon rows are pruned.
PRUNE_EVERY = timedelta(hours=1)
#: a beat older than this (wall seconds) means the daemon is stuck: no watchdog ping.
BEAT_STALE = 120.0
_NOTIFY_ACTIVE = (AlertState.FIRING, AlertState.NODATA, AlertState.ERROR)


def config_transition(firing: bool, now: datetime, problems: list[str]) -> Transition:
    """The meta-alert for a rejected reload (firing) or the next good one (resolved)."""
    text = "\n".join(problems[:20])
    summary = (
        f"Stackwatch rejected its new configuration ({len(problems)} problem(s)); "
        "the previous rules keep running"
        if firing
        else "Stackwatch configuration is valid again"
    )
    return Transition(
        rule=CONFIG_INVALID,
        fingerprint=CONFIG_FINGERPRINT,
        labels=dict(_CONFIG_LABELS),
        previous=AlertState.INACTIVE if firing else AlertState.FIRING,
        state=AlertState.FIRING if firing else AlertState.RESOLVED,
        at=now,
        value=float(len(problems)),
        annotations={"summary": summary, **({"description": text} if text else {})},
        firing_since=now if firing else None,
    )


class Daemon:
    def __init__(
        self,
        settings: Settings,
        config_path: Path | None,
        *,
        config_required: bool = True,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self.config_required = config_required
        self.clock = clock or shared_clock(settings.agent.clock_speed, settings.agent.clock_origin)
        # the world may run fast; the API's rate limit and job polling stay in real time
        self.network_clock: Clock | None = None if self.clock_is_real else SystemClock()
        self.metrics = Metrics()
        self.store = Store(settings.agent.state_path)
        persistence.migrate(self.store)
        self.notifier = Notifier(settings.notify, self.store, self.clock)
        rules = load_rule_set(settings)
        self.pipeline = self._build_pipeline(settings, rules)
        self.hashes = {rule.name: persistence.rule_hash(rule) for rule in rules}
        self.remediator = self._build_remediator(settings)
        self.guard = SharedExclusiveLock()
        self.scheduler = EvaluationScheduler(self.clock, self.metrics.observe_wait)
        self.api: ApiServer | None = None
        self._ready = threading.Event()
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self._counts: dict[str, Counter[str]] = {}
        self._counts_lock = threading.Lock()
        self._last_beat = time.monotonic()
        self._pruned_at: datetime | None = None

    @property
    def clock_is_real(self) -> bool:
        return self.settings.agent.clock_speed == 1.0

    def _build_pipeline(self, settings: Settings, rules: list[Rule]) -> Pipeline:
        pipeline = build_pipeline(settings, self.clock, rules, network_clock=self.network_clock)
        observer = getattr(pipeline.clients.http, "observer", False)
        if observer is None:  # the collect layer offers the hook: count API answers
            pipeline.clients.http.observer = self.metrics.observe_api  # type: ignore[attr-defined]
        return pipeline

    def _build_remediator(self, settings: Settings) -> Remediator:
        clients = self.pipeline.clients
        return Remediator(
            settings.remediate,
            self.store,
            self.clock,
            clients.automations,
            clients.trigger,
            health=EngineHealth(lambda: self.pipeline.engine),
            announce=lambda alert, text: self.notifier.announce(alert.fingerprint, text),
            observe=lambda action, outcome: self.metrics.remediation_actions.labels(
                action, outcome
            ).inc(),
        )

    # -- start-up ---------------------------------------------------------------------

    def restore_state(self) -> tuple[int, int]:
        """Put persisted instances back into the engine; resolve those of removed rules."""
        engine = self.pipeline.engine
        stored = persistence.load(self.store.connection())
        restored, skipped = persistence.restore(engine, stored)
        gone = [
            item
            for item in stored
            if item.rule not in engine.rules and item.rule != engine.source_state.rule
        ]
        changed = [
            item
            for item in stored
            if item.rule in engine.rules and item.rule_hash != self.hashes[item.rule]
        ]
        self._retire(
            [item.to_instance(None) for item in gone],
            [(item.rule, item.key) for item in gone + changed],
            "rule removed from the configuration while the agent was stopped",
        )
        log.info("state_restored", restored=restored, skipped=skipped)
        return restored, skipped

    def _retire(self, instances: list[Instance], rows: list[tuple[str, Any]], why: str) -> None:
        """Resolve active alerts of rules that are gone (no incident left open) and forget
        their rows."""
        now = self.clock.now()
        transitions = [
            Transition(
                rule=i.rule,
                fingerprint=i.fingerprint,
                labels=dict(i.labels),
                previous=i.state.state,
                state=AlertState.RESOLVED,
                at=now,
                value=i.state.value,
                annotations={**i.annotations, "summary": f"{i.rule}: {why}"},
                firing_since=i.state.firing_since,
            )
            for i in instances
            if i.state.state in _NOTIFY_ACTIVE
        ]
        if not transitions and not rows:
            return
        with self.store.tx() as conn:
            self.notifier.submit(transitions)
            conn.executemany(
                "DELETE FROM daemon_instances WHERE rule = ? AND instance_key = ?",
                [(rule, persistence.key_json(key)) for rule, key in rows],
            )

    def start(self) -> None:
        self.restore_state()
        self._resolve_config_alert_if_firing()
        self._schedule()
        self.scheduler.add_beat(self.settings.agent.notify_interval, self.beat)
        self.scheduler.start()
        agent = self.settings.agent
        token = agent.api_token.get_secret_value() if agent.api_token else None
        self.api = ApiServer(self, agent.http_bind, agent.http_port, token).start()
        with self.store.tx() as conn:
            persistence.set_meta(conn, "http_url", self.api.url)
            persistence.audit(
                conn, self.clock.now(), "stackwatch", "started", detail={"rules": len(self.hashes)}
            )
        log.info(
            "daemon_started",
            http=self.api.url,
            rules=len(self.hashes),
            state=str(self.store.path),
            clock_speed=agent.clock_speed,
        )
        systemd.notify("READY=1\nSTATUS=evaluating rules")

    def _schedule(self) -> None:
        engine = self.pipeline.engine
        groups = group_rules(list(engine.rules.values()), engine.default_interval, self.clock.now())
        self.scheduler.sync_groups(groups, self.run_group)

    # -- the cycle --------------------------------------------------------------------

    def run_group(self, group: RuleGroup) -> None:
        with self.guard.shared():
            engine = self.pipeline.engine
            rules = [engine.rules[name] for name in group.rules if name in engine.rules]
            if not rules:
                return
            notifier = self.notifier
            now = self.clock.now()
            started = time.monotonic()
            try:
                report = engine.evaluate(now, rules)
                instances = [i for r in rules for i in engine.instances[r.name].values()]
                counts = Counter(i.state.state.value for i in instances)
                if engine.watch_source:
                    instances.append(engine.source_state)
                with self.store.tx() as conn:  # states, notifications, actions due: one commit
                    notifier.submit(report.transitions)
                    self.remediator.schedule(conn, report.transitions)
                    persistence.save(conn, instances, self.hashes, now)
                    persistence.record_samples(conn, instances)
            except Exception:
                self.metrics.evaluations.labels(group.label, "crashed").inc()
                log.exception("evaluation_crashed", group=group.label)
                return
        elapsed = time.monotonic() - started
        self.metrics.evaluation_seconds.labels(group.label).observe(elapsed)
        failed_all = report.requests > 0 and report.failed_requests == report.requests
        self.metrics.evaluations.labels(group.label, "error" if report.errors else "ok").inc()
        with self._counts_lock:
            self._counts[group.job_id] = counts
            total: Counter[str] = Counter()
            for part in self._counts.values():
                total.update(part)
        self.metrics.set_alert_counts(total)
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
        log.debug("cycle", group=group.label, seconds=round(elapsed, 3), at=now.isoformat())
        if not failed_all and not self._ready.is_set():
            self._ready.set()
            self.metrics.ready.set(1)
            log.info("daemon_ready")

    def beat(self) -> None:
        """Deliveries, then remediation: an alert's notice goes out before the notice of what
        was done about it (which leaves with the next beat)."""
        notifier = self.notifier
        try:
            report = notifier.run_once()
            self.metrics.notifications_sent.inc(report.delivered)
            if report.retrying:
                self.metrics.notifications_failed.labels("retrying").inc(report.retrying)
            if report.dead:
                self.metrics.notifications_failed.labels("dead").inc(report.dead)
            self.metrics.set_outbox(notifier.outbox_counts())
            self._prune()
        except Exception:
            log.exception("notify_beat_failed")
        try:
            self.remediator.run_once()
        except Exception:
            log.exception("remediation_beat_failed")
        self._last_beat = time.monotonic()

    def _prune(self) -> None:
        now = self.clock.now()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        with self.store.tx() as conn:
            instances, audits = persistence.prune(
                conn,
                now - self.settings.agent.retention,
                now - self.settings.agent.sample_retention,
            )
        self.remediator.storage.prune((now - self.settings.agent.retention).timestamp())
        self._pruned_at = now
        if instances or audits:
            log.info("state_pruned", instances=instances, audit_rows=audits)

    # -- reload -----------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read config and rules; keep everything running as it is when they are bad."""
        now = self.clock.now()
        try:
            settings = load_settings(self.config_path, required=self.config_required)
            problem = settings.contentstack.credentials_problem()
            if problem:
                raise ConfigError([problem])
            rules = load_rule_set(settings)
            notifier = (
                Notifier(settings.notify, self.store, self.clock)
                if settings.notify != self.settings.notify
                else None
            )
            pipeline = (
                self._build_pipeline(settings, rules)
                if settings.contentstack != self.settings.contentstack
                else None
            )
        except (ConfigError, RulesInvalid, ValueError, OSError) as error:
            problems = _problems(error)
            self.metrics.reloads.labels("failed").inc()
            log.error("reload_failed", problems=problems)
            with self.store.tx() as conn:
                self.notifier.submit([config_transition(True, now, problems)])
                persistence.audit(
                    conn, now, "signal", "reload", detail={"problems": problems}, outcome="failed"
                )
            return False
        with self.guard.exclusive():
            engine = self.pipeline.engine
            before = {name: engine.instances.get(name, {}) for name in engine.rules}
            new_hashes = {rule.name: persistence.rule_hash(rule) for rule in rules}
            if pipeline is not None:  # keep the engine (and its state), take the new source
                old = self.pipeline
                engine.source = pipeline.engine.source
                engine.stack_names = pipeline.engine.stack_names
                self.pipeline = Pipeline(settings, pipeline.clients, engine)
                old.close()
            engine.default_interval = settings.agent.default_interval
            engine.link = settings.agent.link
            engine.set_rules(rules)
            removed = [n for n in before if n not in new_hashes]
            changed = [n for n in before if n in new_hashes and new_hashes[n] != self.hashes[n]]
            self.hashes = new_hashes
            if notifier is not None:
                self.notifier = notifier
            restart = [
                key
                for key in ("state_path", "http_bind", "http_port", "clock_speed", "clock_origin")
                if getattr(settings.agent, key) != getattr(self.settings.agent, key)
            ]
            self.settings = settings
            self.remediator = self._build_remediator(settings)
        self._retire(
            [i for name in removed for i in before[name].values()],
            [(name, key) for name in removed + changed for key in before[name]],
            "rule removed from the configuration",
        )
        self._schedule()
        configure_logging(settings.agent.log_level)
        self._resolve_config_alert_if_firing()
        with self.store.tx() as conn:
            persistence.audit(
                conn,
                now,
                "signal",
                "reload",
                detail={"rules": len(new_hashes), "removed": removed, "changed": changed},
            )
        self.metrics.reloads.labels("ok").inc()
        if restart:
            log.warning("reload_needs_restart", settings=restart)
        log.info("reload_ok", rules=len(new_hashes), removed=removed, changed=changed)
        return True

    def _resolve_config_alert_if_firing(self) -> None:
        if any(
            a.fingerprint == CONFIG_FINGERPRINT and a.state == AlertState.FIRING.value
            for a in self.notifier.alerts()
        ):
            self.notifier.submit([config_transition(False, self.clock.now(), [])])

    # -- running as a process ---------------------------------------------------------

    def request_stop(self, *_args: object) -> None:
        self._stop_requested = True
        self._wake.set()

    def request_reload(self, *_args: object) -> None:
        self._reload_requested = True
        self._wake.set()

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            self.request_stop()

        def reload(signum: int, _frame: FrameType | None) -> None:
            self.request_reload()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def run(self) -> bool:
        """Serve until SIGTERM/SIGINT; True when it stopped cleanly."""
        self.install_signal_handlers()
        self.start()
        watchdog = systemd.watchdog_interval()
        next_ping = time.monotonic()
        while not self._stop_requested:
            self._wake.wait(timeout=min(watchdog or 1.0, 1.0))
            self._wake.clear()
            if self._reload_requested and not self._stop_requested:
                self._reload_requested = False
                systemd.notify("RELOADING=1")
                self.reload()
                systemd.notify("READY=1")
            if watchdog and time.monotonic() >= next_ping and self.healthy():
                systemd.notify("WATCHDOG=1")
                next_ping = time.monotonic() + watchdog
        return self.stop()

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
        while True:  # flush: deliver what the cycles queued, within the timeout
            try:
                self.notifier.run_once()
                pending = self.notifier.outbox_counts().get("pending", 0)
            except Exception:
                log.exception("flush_failed")
                break
            if pending == 0 or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
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
        return self._ready.is_set()

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    def alerts(self, *, include_inactive: bool) -> list[dict[str, Any]]:
        return alert_rows(self.store.connection(), include_inactive=include_inactive)

    def samples(self, fingerprint: str) -> list[dict[str, Any]]:
        return persistence.samples(self.store.connection(), fingerprint)

    def audit(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Remediation's audit records, newest first, filtered as ``GET /api/v1/audit`` asks."""
        try:
            wanted = AuditFilter.from_query(query, self.clock.now())
        except ValueError as error:
            raise ApiError(400, str(error)) from None
        return [record.to_json() for record in self.remediator.storage.audit(wanted)]

    def silences(self, *, include_expired: bool) -> list[dict[str, Any]]:
        return [_silence_json(s) for s in self.notifier.silences(include_expired=include_expired)]

    def add_silence(self, body: dict[str, Any], actor: str) -> dict[str, Any]:
        matchers = body.get("matchers")
        if not isinstance(matchers, list) or not all(isinstance(m, str) for m in matchers):
            raise ApiError(400, "matchers must be a list of strings such as 'alertname=X'")
        try:
            duration = parse_duration(str(body["duration"])) if "duration" in body else None
            ends_at = _when(body.get("ends_at"))
            starts_at = _when(body.get("starts_at"))
            silence = self.notifier.add_silence(
                matchers,
                duration=duration,
                ends_at=ends_at,
                starts_at=starts_at,
                created_by=actor,
                comment=str(body.get("comment", ""))[:500],
            )
        except ValueError as error:
            raise ApiError(400, redact(str(error))) from None
        with self.store.tx() as conn:
            persistence.audit(
                conn, self.clock.now(), actor, "silence_add", silence.id, {"matchers": matchers}
            )
        return _silence_json(silence)

    def expire_silence(self, silence_id: str, actor: str) -> bool:
        ended = self.notifier.expire_silence(silence_id)
        if ended:
            with self.store.tx() as conn:
                persistence.audit(conn, self.clock.now(), actor, "silence_expire", silence_id)
        return ended

    def ack(self, fingerprint: str, by: str, comment: str) -> list[str]:
        try:
            channels = self.notifier.ack(fingerprint, by, comment)
        except KeyError:
            raise ApiError(404, f"no alert {fingerprint}") from None
        except ValueError as error:
            raise ApiError(409, str(error)) from None
        with self.store.tx() as conn:
            persistence.audit(conn, self.clock.now(), by, "ack", fingerprint, {"comment": comment})
        return channels


def _silence_json(silence: Any) -> dict[str, Any]:
    return {
        "id": silence.id,
        "matchers": list(silence.matchers),
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "created_by": silence.created_by,
        "comment": silence.comment,
    }


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"cannot read {value!r} as an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise ApiError(400, "times need a timezone, e.g. 2024-06-01T12:00:00Z")
    return parsed


def _problems(error: Exception) -> list[str]:
    if isinstance(error, ConfigError):
        return [redact(p) for p in error.problems]
    if isinstance(error, RulesInvalid):
        return [redact(str(p)) for p in error.problems]
    return [redact(f"{type(error).__name__}: {error}")]


__all__ = ["CONFIG_INVALID", "Daemon", "config_transition"]
