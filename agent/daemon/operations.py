"""What an operator can do to a running agent: list alerts, silences, the audit trail and
remediation's actions; add and expire silences; acknowledge alerts.

One module for both doors — the HTTP API (``http_api``) and the command line
(``daemon.cli``) — so every change writes its audit row, in the transaction of the
change itself, whichever door it came through. Errors are ``OperationError``s that each
door turns into its own words (an HTTP status, an exit code).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from agent.clock import Clock
from agent.daemon import persistence
from agent.daemon.status import alert_rows, notified_alert_row
from agent.notify import storage as notify_storage
from agent.notify.silence import Silence
from agent.redact import redact
from agent.remediate.records import AuditRecord
from agent.remediate.storage import AuditFilter, RemediationStorage
from agent.store import Store

if TYPE_CHECKING:
    from agent.notify import Notifier


class OperationError(Exception):
    """A request the agent refuses; ``message`` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(OperationError):
    """The request itself is wrong (bad matcher, end before start)."""


class NotFound(OperationError):
    """What the request is about does not exist."""


class Conflict(OperationError):
    """The request does not fit the current state (acking a resolved alert)."""


@dataclass
class Operations:
    store: Store
    notifier: Notifier
    clock: Clock
    #: the door the requests come through, recorded with each audit row: "api" or "cli".
    via: str

    # -- reading ----------------------------------------------------------------------

    def alerts(self, *, include_inactive: bool = False) -> list[dict[str, Any]]:
        return alert_rows(self.store.connection(), include_inactive=include_inactive)

    def alert(self, fingerprint: str) -> dict[str, Any] | None:
        """One alert as ``alerts`` lists it; one only notify knows (the daemon's own
        meta-alerts, an instance pruned since) from notify's record."""
        found = [a for a in self.alerts(include_inactive=True) if a["fingerprint"] == fingerprint]
        return found[0] if found else notified_alert_row(self.store.connection(), fingerprint)

    def samples(self, fingerprint: str) -> list[dict[str, Any]]:
        return persistence.samples(self.store.connection(), fingerprint)

    def notifications(self, fingerprint: str) -> list[dict[str, Any]]:
        """The outbox rows about an alert, newest first: channel, kind, delivery status."""
        rows = notify_storage.deliveries(self.store.connection(), fingerprint)
        return [dict(row) for row in rows]

    def silences(self, *, include_expired: bool = False) -> list[Silence]:
        return self.notifier.silences(include_expired=include_expired)

    def audit_trail(self, limit: int = 100, target: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` audit rows (about ``target``, when given), newest first."""
        return persistence.audit_rows(self.store.connection(), limit, target)

    def remediation_actions(self, wanted: AuditFilter) -> list[AuditRecord]:
        """Remediation's records (the agent's actions, operators' enable/disable), newest
        first."""
        return RemediationStorage(self.store).audit(wanted)

    # -- changing ---------------------------------------------------------------------

    def add_silence(
        self,
        matchers: list[str],
        *,
        actor: str,
        duration: timedelta | None = None,
        ends_at: datetime | None = None,
        starts_at: datetime | None = None,
        comment: str = "",
    ) -> Silence:
        with self.store.tx() as conn:
            try:
                silence = self.notifier.add_silence(
                    matchers,
                    duration=duration,
                    ends_at=ends_at,
                    starts_at=starts_at,
                    created_by=actor,
                    comment=comment,
                )
            except ValueError as error:
                raise Invalid(redact(str(error))) from None
            self._audit(conn, actor, "silence_add", silence.id, {"matchers": matchers})
        return silence

    def expire_silence(self, silence_id: str, *, actor: str) -> None:
        with self.store.tx() as conn:
            if not self.notifier.expire_silence(silence_id):
                raise NotFound(f"no active silence {silence_id!r}")
            self._audit(conn, actor, "silence_expire", silence_id)

    def ack(self, fingerprint: str, *, actor: str, comment: str = "") -> list[str]:
        """Acknowledge an active alert; returns the channels that hear of it."""
        with self.store.tx() as conn:
            try:
                channels = self.notifier.ack(fingerprint, actor, comment)
            except KeyError:
                raise NotFound(f"no alert with fingerprint {fingerprint!r}") from None
            except ValueError as error:
                raise Conflict(str(error)) from None
            self._audit(conn, actor, "ack", fingerprint, {"comment": comment})
        return channels

    def _audit(
        self, conn: Any, actor: str, action: str, target: str, detail: dict[str, Any] | None = None
    ) -> None:
        detail = {**(detail or {}), "via": self.via}
        persistence.audit(conn, self.clock.now(), actor, action, target, detail)
