"""The notify facade the daemon and CLI use: submit, tick, deliver, ack, silences."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from agent.clock import Clock
from agent.evaluate.alerts import AlertState, Transition
from agent.notify import schema, storage, undeliverable
from agent.notify.channels import ChannelRegistry
from agent.notify.config import NotifyConfig, TemplateOverrides
from agent.notify.dispatch import Dispatcher, idempotency_key
from agent.notify.escalate import Escalations
from agent.notify.inhibit import Inhibitor, InhibitRule
from agent.notify.links import Links
from agent.notify.message import Message, MessageKind, Reading
from agent.notify.mute import Muting
from agent.notify.outbox import DeliveryReport, Outbox
from agent.notify.repost import Reposter
from agent.notify.route import Route, RouteTree
from agent.notify.silence import MaintenanceWindow, Silence, new_silence
from agent.notify.state import TrackedAlert
from agent.notify.template import Renderer
from agent.store import Store

log = structlog.get_logger("agent.notify")

#: seconds between housekeeping passes (clock time).
_HOUSEKEEPING_EVERY = 3600.0


@dataclass(frozen=True)
class AlertStatus:
    """An alert as notify sees it, for ``status`` displays."""

    fingerprint: str
    alertname: str
    labels: dict[str, str]
    state: str
    episode: int
    #: None, ``silence:ID``, ``maintenance:NAME`` or ``inhibited:FINGERPRINT``.
    suppressed: str | None
    acked_by: str | None


@dataclass(frozen=True)
class TestResult:
    destination: str  # redacted
    ok: bool
    error: str | None


class Notifier:
    def __init__(
        self,
        config: NotifyConfig,
        store: Store,
        clock: Clock,
        links: Links | None = None,
        *,
        lazy_channels: bool = False,
    ) -> None:
        """``lazy_channels``: Apprise and the channels load at the first delivery or at
        ``channels.load()`` (the daemon's start-up), not here."""
        self.config = config
        self.links = links or Links()
        self.store = store
        self.clock = clock
        store.migrate(schema.COMPONENT, schema.MIGRATIONS)
        apprise_dir = config.apprise_storage_path or store.path.with_name(
            store.path.name + ".apprise"
        )
        self.channels = ChannelRegistry(
            config.channels,
            Path(apprise_dir),
            pagerduty_events_url=config.pagerduty_events_url,
            lazy=lazy_channels,
        )
        self.routes = RouteTree(config.route, config.templates)
        self.renderer = Renderer(config.link, self.links, config.timezone)
        self.outbox = Outbox(
            store, clock, config.outbox, self.channels, self.renderer, self._templates_for
        )
        self.reposter = Reposter(store, clock, self.channels, self.links)
        self.dispatcher = Dispatcher(
            self.routes,
            Escalations(config.escalations),
            Muting(
                Inhibitor(
                    [InhibitRule.from_config(rule) for rule in config.inhibit_rules],
                    source_down=config.inhibit_on_source_down,
                ),
                [MaintenanceWindow(window) for window in config.maintenance],
            ),
            self.outbox.enqueue,
        )
        self._housekept_at: float | None = None

    def _templates_for(self, route_id: str | None) -> TemplateOverrides | None:
        route = self.routes.by_id.get(route_id) if route_id else None
        return route.templates if route else self.config.templates

    def _now(self) -> float:
        return self.clock.now().timestamp()

    # -- the pipeline -----------------------------------------------------------------

    def submit(self, transitions: Iterable[Transition]) -> None:
        """Record alert states and route them into groups. No network."""
        batch = sorted(transitions, key=lambda t: t.at)
        if not batch:
            return
        with self.store.tx() as conn:
            for transition in batch:
                self.dispatcher.record(conn, transition)
            for fingerprint in self.dispatcher.escalations.advance(conn, self._now()):
                self.dispatcher.wake(conn, fingerprint, self._now())

    def refresh(self, readings: Iterable[Reading]) -> None:
        """Record the current (fingerprint, value, annotations) of alerts that fire on
        without a transition, so reminders and acks tell today's value. Call inside the
        cycle's ``store.tx()``."""
        with self.store.tx() as conn:
            for fingerprint, value, annotations in readings:
                alert = storage.alert(conn, fingerprint)
                if alert is not None and alert.state == AlertState.FIRING.value:
                    alert.value, alert.annotations = value, dict(annotations)
                    storage.save_alert(conn, alert)

    def tick(self) -> int:
        """Advance timers (group wait/interval, repeat, escalation, silence expiry) and
        queue the messages that fell due. Returns the number queued. No network."""
        now = self._now()
        with self.store.tx() as conn:
            for fingerprint in self.dispatcher.escalations.advance(conn, now):
                self.dispatcher.wake(conn, fingerprint, now)
            context = self.dispatcher.context(conn, now)
            self.dispatcher.refresh_suppression(conn, context)
            due = self.dispatcher.due_groups(conn, now)
        queued = 0
        for group_id in due:  # one short transaction per group
            with self.store.tx() as conn:
                queued += self.dispatcher.flush(conn, group_id, context)
        if self._housekept_at is None or now - self._housekept_at >= _HOUSEKEEPING_EVERY:
            with self.store.tx() as conn:
                storage.housekeep(conn, now - self.config.retention.total_seconds())
            self._housekept_at = now
        return queued

    def next_due(self) -> datetime | None:
        """The earliest time ``tick``/``deliver`` has work (a group flush, an escalation
        tier, an outbox retry), for a daemon that sleeps between beats. Silences and
        maintenance windows are checked on every tick, so keep beats frequent anyway."""
        conn = self.store.connection()
        candidates = [storage.next_due(conn), self.dispatcher.escalations.next_due(conn)]
        found = [value for value in candidates if value is not None]
        return datetime.fromtimestamp(min(found), UTC) if found else None

    def deliver(self, max_items: int = 100) -> DeliveryReport:
        """Claim due outbox rows and send them through Apprise (a channel that lost a
        row to the dead letters fires its meta-alert, one that delivers resolves it);
        then post again to Alertmanagers the alerts that still fire."""
        report = self.outbox.deliver(max_items)
        self._track_undeliverable(report)
        self.reposter.run()
        return report

    def _track_undeliverable(self, report: DeliveryReport) -> None:
        conn = self.store.connection()
        now = self.clock.now()
        changes = []
        for channel in sorted(report.dead_on | report.delivered_to):
            known = storage.alert(conn, undeliverable.fingerprint_of(channel))
            firing = known is not None and known.state == AlertState.FIRING.value
            if channel in report.dead_on and not firing:
                changes.append(undeliverable.transition(channel, True, now, None))
            elif channel not in report.dead_on and known is not None and firing:
                since = datetime.fromtimestamp(known.active_since or now.timestamp(), UTC)
                changes.append(undeliverable.transition(channel, False, now, since))
        if changes:
            self.submit(changes)
            for change in changes:
                lost = change.state == AlertState.FIRING
                event = "channel_undeliverable" if lost else "channel_delivers_again"
                log.warning(event, channel=change.labels["channel"])

    def run_once(self, max_items: int = 100) -> DeliveryReport:
        """``tick`` then ``deliver``: what the daemon calls on every beat."""
        self.tick()
        return self.deliver(max_items)

    def drain(self, deadline: float) -> int:
        """Tick and deliver until the outbox is empty or ``time.monotonic()`` passes
        ``deadline`` (a stopping daemon flushes what its last cycles queued). Returns the
        rows still pending."""
        while True:
            self.run_once()
            pending = self.outbox_counts().get("pending", 0)
            if pending == 0 or time.monotonic() >= deadline:
                return pending
            time.sleep(0.1)

    # -- acknowledgement --------------------------------------------------------------

    def ack(self, fingerprint: str, by: str, comment: str = "") -> list[str]:
        """Acknowledge an active alert: its escalation and reminders stop, and the
        channels already told about it hear who took it. Returns those channels.

        Raises KeyError for an unknown alert and ValueError for one not active.
        """
        now = self._now()
        with self.store.tx() as conn:
            alert = storage.alert(conn, fingerprint)
            if alert is None:
                raise KeyError(fingerprint)
            if not alert.active:
                raise ValueError(f"alert {fingerprint} is {alert.state}, not active")
            if not storage.add_ack(conn, fingerprint, alert.episode, by, comment, now):
                return []  # already acknowledged this episode
            channels = storage.channels_told_active(conn, fingerprint, alert.episode)
            _, message = self._about(alert, now, "ack", ack_by=by, ack_comment=comment)
            self._queue(conn, message, channels, "ack", fingerprint)
        log.info("alert_acknowledged", fingerprint=fingerprint, by=by, channels=channels)
        return channels

    def announce(self, fingerprint: str, text: str) -> list[str]:
        """Queue a notice about an alert (what remediation did) for the channels of its
        routes, silenced or not: an action on production is always told. Returns them."""
        now = self._now()
        with self.store.tx() as conn:
            alert = storage.alert(conn, fingerprint)
            if alert is None:
                return []
            routes, message = self._about(alert, now, "remediation", text=text)
            channels = sorted({channel for route in routes for channel in route.channels})
            subject = hashlib.sha256(f"{now}:{text}".encode()).hexdigest()[:16]
            self._queue(conn, message, channels, fingerprint, subject)
        return channels

    def _about(
        self, alert: TrackedAlert, now: float, kind: MessageKind, **fields: Any
    ) -> tuple[list[Route], Message]:
        """A message of ``kind`` about one alert, and the routes the alert takes."""
        routes = self.dispatcher.routes_for(alert)
        route_id = routes[0].id if routes else None
        message = Message(kind, now, [alert.snapshot()], route_id=route_id, **fields)
        return routes, message

    def _queue(
        self,
        conn: sqlite3.Connection,
        message: Message,
        channels: list[str],
        scope: str,
        subject: str,
    ) -> None:
        """Queue ``message`` for each channel, once per channel, scope, subject and alerts."""
        for channel in channels:
            idempotency = idempotency_key(
                channel, scope, subject, message.alerts, kind=message.kind
            )
            self.outbox.enqueue(conn, channel, message, idempotency)

    # -- silences ---------------------------------------------------------------------

    def add_silence(
        self,
        matchers: list[str],
        *,
        duration: timedelta | None = None,
        ends_at: datetime | None = None,
        starts_at: datetime | None = None,
        created_by: str = "stackwatch",
        comment: str = "",
    ) -> Silence:
        now = self.clock.now()
        if ends_at is None:
            if duration is None:
                raise ValueError("give a duration or an end time")
            ends_at = (starts_at or now) + duration
        silence = new_silence(
            now,
            matchers,
            ends_at=ends_at,
            starts_at=starts_at,
            created_by=created_by,
            comment=comment,
        )
        with self.store.tx() as conn:
            storage.add_silence(conn, silence)
        log.info("silence_added", id=silence.id, matchers=list(silence.matchers), by=created_by)
        return silence

    def silences(self, *, include_expired: bool = False) -> list[Silence]:
        not_ended_at = None if include_expired else self.clock.now()
        return storage.silences(self.store.connection(), not_ended_at)

    def expire_silence(self, silence_id: str) -> bool:
        with self.store.tx() as conn:
            ended = storage.end_silence(conn, silence_id, self.clock.now())
        if ended:
            log.info("silence_expired", id=silence_id)
        return ended

    # -- inspection -------------------------------------------------------------------

    def alerts(self) -> list[AlertStatus]:
        conn = self.store.connection()
        acks = storage.acks(conn)
        result = []
        for alert in sorted(storage.alerts(conn), key=lambda a: a.fingerprint):
            result.append(
                AlertStatus(
                    fingerprint=alert.fingerprint,
                    alertname=alert.labels.get("alertname", alert.rule),
                    labels=alert.labels,
                    state=alert.state,
                    episode=alert.episode,
                    suppressed=alert.suppressed if alert.active else None,
                    acked_by=acks.get((alert.fingerprint, alert.episode)),
                )
            )
        return result

    def outbox_counts(self) -> dict[str, int]:
        return self.outbox.counts()

    def test_channel(self, name: str, text: str = "") -> list[TestResult]:
        """Send a test message straight to every URL of a channel (bypassing the outbox)."""
        channel = self.channels.get(name)
        if channel is None:
            raise KeyError(name)
        message = Message(
            kind="test",
            created_at=self._now(),
            text=text or f"Test notification from Stackwatch for channel '{name}'.",
        )
        results = []
        for destination in channel.destinations:
            part = self.renderer.parts(message, destination, None)[0]
            sent = channel.send(destination, part)
            results.append(TestResult(destination.display, sent.ok, sent.error))
        return results
