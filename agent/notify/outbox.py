"""The durable outbox: every notification is a row before it is a network call.

Rows are claimed with compare-and-swap (``claimed_until`` lease), so any number of
deliverers — threads, or a restarted agent — never send one row twice at once; a
crashed deliverer's lease expires and its rows are taken over. Within a row, each
destination (and each per-alert incident event) is recorded as delivered as soon as
it succeeds, so a retry only re-sends what failed. Failed rows back off
exponentially; a row still undelivered ``dead_letter_after`` after it was queued
becomes a dead letter: logged, counted, and announced on the fallback channel.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import structlog
from prometheus_client import Counter

from agent.clock import Clock
from agent.durations import format_duration
from agent.notify import storage
from agent.notify.channels import ChannelRegistry
from agent.notify.config import OutboxConfig, TemplateOverrides
from agent.notify.destination import IDEMPOTENCY_HEADER, Destination, Part
from agent.notify.message import Message
from agent.notify.template import Renderer
from agent.redact import redact
from agent.store import Store

log = structlog.get_logger("agent.notify")

SENT = Counter(
    "stackwatch_notifications_total", "Notification sends by outcome", ["channel", "outcome"]
)
DEAD = Counter("stackwatch_notification_dead_letters_total", "Dead letters", ["channel"])


@dataclass
class DeliveryReport:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)
    #: channels that delivered a row, and channels that lost one to the dead letters.
    delivered_to: set[str] = field(default_factory=set)
    dead_on: set[str] = field(default_factory=set)


class Outbox:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        config: OutboxConfig,
        channels: ChannelRegistry,
        renderer: Renderer,
        templates_for: Callable[[str | None], TemplateOverrides | None],
    ) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.channels = channels
        self.renderer = renderer
        self._templates_for = templates_for
        #: identifies this deliverer in claims (a restart is a new deliverer).
        self.worker = uuid.uuid4().hex[:12]

    def enqueue(self, conn: sqlite3.Connection, channel: str, message: Message, key: str) -> bool:
        """Queue ``message`` for ``channel``, once per idempotency key. Call inside a tx."""
        payload = message.to_json()
        subjects = [alert.fingerprint for alert in message.alerts]
        return storage.enqueue(
            conn, key, channel, message.kind, payload, message.created_at, subjects
        )

    # -- claiming ---------------------------------------------------------------------

    def claim(self, max_items: int) -> list[sqlite3.Row]:
        conn = self.store.connection()
        now = self.clock.now().timestamp()
        until = now + self.config.claim_timeout.total_seconds()
        return storage.claim(conn, self.worker, now, until, max_items)

    # -- delivering -------------------------------------------------------------------

    def deliver(self, max_items: int = 100) -> DeliveryReport:
        """Send up to ``max_items`` due rows. Claims repeat until none is due: a row that
        waited for an older one of its alert goes out in the same call once that is sent."""
        report = DeliveryReport()
        while report.claimed < max_items:
            rows = self.claim(max_items - report.claimed)
            if not rows:
                break
            report.claimed += len(rows)
            for row in rows:
                try:
                    self._deliver_row(row, report)
                except Exception as error:  # e.g. the disk is full: the claim expires
                    report.errors.append(
                        redact(f"{row['channel']}: {type(error).__name__}: {error}")
                    )
                    log.exception("notification_delivery_crashed", outbox_id=row["id"])
        return report

    def _deliver_row(self, row: sqlite3.Row, report: DeliveryReport) -> None:
        conn = self.store.connection()
        message = Message.from_json(row["payload"])
        channel = self.channels.get(row["channel"])
        if channel is None:
            self._bury(row, "channel is no longer configured", report)
            return
        done: set[str] = set(json.loads(row["delivered_parts"]))
        errors: list[str] = []
        overrides = self._templates_for(message.route_id)
        for destination in channel.destinations:
            try:
                parts = self.renderer.parts(message, destination, overrides)
            except Exception as error:  # the defaults failing is a bug; keep the row, say so
                errors.append(redact(f"render failed: {type(error).__name__}: {error}"))
                continue
            for part in parts:
                if part.id in done:
                    continue
                result = channel.send(destination, self._keyed(part, destination, row))
                if result.ok:
                    done.add(part.id)
                    SENT.labels(channel.name, "sent").inc()
                    # Persist progress now: a crash must not re-send this part.
                    storage.delivered_parts(conn, row["id"], self.worker, done)
                else:
                    SENT.labels(channel.name, "failed").inc()
                    errors.append(result.error or "delivery failed")
        now = self.clock.now().timestamp()
        if not errors:
            storage.delivered(conn, row["id"], self.worker, now)
            report.delivered += 1
            report.delivered_to.add(row["channel"])
            log.info(
                "notification_delivered",
                channel=row["channel"],
                kind=row["kind"],
                outbox_id=row["id"],
                status=message.status,
            )
            return
        error_text = redact("; ".join(errors))[:1000]
        report.errors.append(f"{row['channel']}: {error_text}")
        if now - row["created_at"] >= self.config.dead_letter_after.total_seconds():
            self._bury(row, error_text, report)
            return
        attempts = row["attempts"] + 1
        delay = min(
            self.config.retry_initial.total_seconds() * 2 ** (attempts - 1),
            self.config.retry_max.total_seconds(),
        )
        storage.retry_later(conn, row["id"], self.worker, attempts, now + delay, error_text)
        report.retrying += 1
        log.warning(
            "notification_retry",
            channel=row["channel"],
            outbox_id=row["id"],
            attempt=attempts,
            retry_in=format_duration(timedelta(seconds=delay)),
            error=error_text,
        )

    @staticmethod
    def _keyed(part: Part, destination: Destination, row: sqlite3.Row) -> Part:
        """A webhook hears the row's idempotency key in a header, the same on every
        attempt (a restart included), so a receiver can drop a repeated delivery."""
        if not destination.webhook:
            return part
        header = {f"+{IDEMPOTENCY_HEADER}": row["idempotency_key"]}
        return replace(part, params={**part.params, **header})

    def _bury(self, row: sqlite3.Row, error: str, report: DeliveryReport) -> None:
        now = self.clock.now().timestamp()
        with self.store.tx() as conn:
            if not storage.bury(conn, row, self.worker, error, now):
                return
            report.dead += 1
            report.dead_on.add(row["channel"])
            DEAD.labels(row["channel"]).inc()
            age = format_duration(timedelta(seconds=now - row["created_at"]))
            log.error(
                "notification_dead_letter",
                channel=row["channel"],
                outbox_id=row["id"],
                kind=row["kind"],
                attempts=row["attempts"] + 1,
                age=age,
                error=error,
            )
            fallback = self.config.dead_letter_channel
            if not fallback or fallback == row["channel"] or row["kind"] == "deadletter":
                return
            original = Message.from_json(row["payload"])
            names = sorted({alert.alertname for alert in original.alerts}) or [row["kind"]]
            queued = datetime.fromtimestamp(row["created_at"], UTC).isoformat(timespec="seconds")
            text = (
                f"A {original.status} notification for {', '.join(names)} could not be "
                f"delivered to channel '{row['channel']}' after {row['attempts'] + 1} attempts "
                f"over {age} (queued {queued}). Last error: {error}"
            )
            meta = Message(
                kind="deadletter",
                created_at=now,
                alerts=original.alerts,
                route_id=original.route_id,
                text=text,
            )
            self.enqueue(conn, fallback, meta, f"deadletter:{row['idempotency_key']}")

    # -- inspection -------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return storage.outbox_counts(self.store.connection())
