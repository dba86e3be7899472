"""Grouping, timing and dedupe: from alert state to queued notifications.

Alertmanager's model: each route collects its alerts into groups keyed by the
``group_by`` labels. A new group waits ``group_wait`` before its first message (so
alerts of one incident arrive together), then is flushed every ``group_interval``.
A flush sends, per channel, what the channel has not been told yet — recorded in
``notify_log`` per (channel, fingerprint) as (episode, state) — so the same alert
state never reaches a channel twice; unchanged firing alerts are re-sent only after
``repeat_interval`` (and not at all once acknowledged).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from agent.evaluate.alerts import AlertState, Transition
from agent.notify import storage
from agent.notify.escalate import Escalations
from agent.notify.inhibit import Sources
from agent.notify.message import AlertSnapshot, Message
from agent.notify.mute import Muting
from agent.notify.route import Route, RouteTree
from agent.notify.silence import Silence
from agent.notify.state import TrackedAlert

log = structlog.get_logger("agent.notify")

Enqueue = Callable[[sqlite3.Connection, str, Message, str], bool]


@dataclass
class FlushContext:
    """What every group flush of one tick needs, loaded once."""

    now: float
    alerts: dict[str, TrackedAlert]
    silences: list[Silence]
    acked: set[tuple[str, int]]
    #: ``alerts``' inhibiting sources; None until asked for, or after a change to them
    sources: Sources | None = field(default=None, repr=False)

    def renew(self, alert: TrackedAlert) -> None:
        """Take an alert as re-read; the sources are indexed again if it could change them."""
        old = self.alerts.get(alert.fingerprint)
        self.alerts[alert.fingerprint] = alert
        if old is None or (old.state, old.labels) != (alert.state, alert.labels):
            self.sources = None


class Dispatcher:
    def __init__(
        self,
        tree: RouteTree,
        escalations: Escalations,
        muting: Muting,
        enqueue: Enqueue,
    ) -> None:
        self.tree = tree
        self.escalations = escalations
        self.muting = muting
        self._enqueue = enqueue

    # -- recording transitions --------------------------------------------------------

    def record(self, conn: sqlite3.Connection, transition: Transition) -> None:
        old = storage.alert(conn, transition.fingerprint)
        at = transition.at.timestamp()
        if old is not None and at < old.changed_at:
            log.debug("transition_out_of_order", fingerprint=transition.fingerprint)
            return
        state = transition.state.value
        alert = TrackedAlert(
            fingerprint=transition.fingerprint,
            rule=transition.rule,
            labels=dict(transition.labels),
            annotations=dict(transition.annotations),
            state=state,
            value=transition.value,
            threshold=transition.threshold,
            episode=old.episode if old else 0,
            active_since=old.active_since if old else None,
            resolved_at=old.resolved_at if old else None,
            changed_at=at,
            routes=list(transition.routes),
            suppressed=old.suppressed if old else None,
        )
        was_active = bool(old and old.active)
        if alert.active and not was_active:
            alert.episode += 1
            alert.active_since = (transition.firing_since or transition.at).timestamp()
            alert.resolved_at = None
        elif alert.active and state == AlertState.FIRING.value and transition.firing_since:
            alert.active_since = transition.firing_since.timestamp()
        elif not alert.active and was_active:
            alert.resolved_at = at
        storage.save_alert(conn, alert)
        if not alert.active and not was_active:
            return  # pending, or inactive without an episode to end: nothing to tell
        routes = self.routes_for(alert)
        for route in routes:
            self._join_group(conn, route, alert, at)
        became_firing = state == AlertState.FIRING.value and (
            old is None or old.state != state or old.episode != alert.episode
        )
        if became_firing:
            policy = next((route.escalation for route in routes if route.escalation), None)
            if policy:
                self.escalations.start(conn, alert, policy, alert.active_since or at)

    def routes_for(self, alert: TrackedAlert) -> list[Route]:
        unknown = [name for name in alert.routes if name not in self.tree.by_name]
        if unknown:
            log.warning("unknown_routes", rule=alert.rule, routes=unknown)
        return self.tree.match(alert.labels, alert.routes)

    def _join_group(
        self, conn: sqlite3.Connection, route: Route, alert: TrackedAlert, now: float
    ) -> None:
        labels = route.group_labels(alert.labels)
        key = json.dumps(labels, sort_keys=True, separators=(",", ":"))
        first_flush = now + route.group_wait.total_seconds()
        storage.join_group(conn, route.id, key, alert.fingerprint, now, first_flush)

    # -- suppression ------------------------------------------------------------------

    def suppression(self, alert: TrackedAlert, context: FlushContext) -> str | None:
        """Why an active alert is kept off the channels right now, or None."""
        now = datetime.fromtimestamp(context.now, UTC)
        if context.sources is None:
            context.sources = self.muting.inhibitor.sources(context.alerts.values())
        return self.muting.reason(alert, alerts=context.sources, silences=context.silences, now=now)

    def context(self, conn: sqlite3.Connection, now: float) -> FlushContext:
        alerts = {alert.fingerprint: alert for alert in storage.alerts(conn)}
        silences = storage.silences(conn, datetime.fromtimestamp(now, UTC))
        acked = set(storage.acks(conn))
        return FlushContext(now=now, alerts=alerts, silences=silences, acked=acked)

    def refresh_suppression(self, conn: sqlite3.Connection, context: FlushContext) -> None:
        """Record who is muted now (for status reports) and flush at once the groups of
        alerts whose silence, maintenance window or inhibition just ended."""
        for alert in context.alerts.values():
            reason = self.suppression(alert, context)
            if reason == alert.suppressed:
                continue
            storage.set_suppressed(conn, alert.fingerprint, reason)
            if alert.suppressed and reason is None and alert.active:
                self.wake(conn, alert.fingerprint, context.now)
            alert.suppressed = reason

    def wake(self, conn: sqlite3.Connection, fingerprint: str, now: float) -> None:
        """Flush the alert's groups now instead of at their next interval. Groups that
        have not flushed yet keep their group_wait: their first flush covers it."""
        storage.wake_groups(conn, fingerprint, now)

    # -- flushing ---------------------------------------------------------------------

    def due_groups(self, conn: sqlite3.Connection, now: float) -> list[int]:
        return storage.due_groups(conn, now)

    def flush(self, conn: sqlite3.Connection, group_id: int, context: FlushContext) -> int:
        """Flush one group; return the number of messages queued."""
        group = storage.group(conn, group_id)
        if group is None:
            return 0
        route = self.tree.by_id.get(group["route_id"])
        if route is None:  # the route tree changed since the group was formed
            storage.drop_group(conn, group_id)
            return 0
        now = context.now
        fingerprints = storage.members(conn, group_id)
        # Re-read members inside this transaction: a submit may have landed since the
        # tick loaded its context.
        for fresh in storage.alerts(conn, fingerprints):
            context.renew(fresh)
        members = [context.alerts[fp] for fp in fingerprints if fp in context.alerts]
        for member in members:
            member.suppressed = self.suppression(member, context)
            storage.set_suppressed(conn, member.fingerprint, member.suppressed)
        reach: dict[str, list[str]] = {}
        channels: list[str] = []
        for member in members:
            wanted = list(route.channels)
            wanted += [c for c in self.escalations.channels(conn, member) if c not in wanted]
            reach[member.fingerprint] = wanted
            channels += [c for c in wanted if c not in channels]
        group_labels = json.loads(group["group_labels"])
        queued = 0
        for channel in channels:
            queued += self._flush_channel(
                conn, route, group, group_labels, channel, members, reach, context
            )
        # Resolutions have now been handled on every channel: the group forgets them.
        for member in members:
            if not member.active:
                storage.leave_group(conn, group_id, member.fingerprint)
        storage.flushed(conn, group_id, now, now + route.group_interval.total_seconds())
        return queued

    def _flush_channel(
        self,
        conn: sqlite3.Connection,
        route: Route,
        group: sqlite3.Row,
        group_labels: dict[str, str],
        channel: str,
        members: list[TrackedAlert],
        reach: dict[str, list[str]],
        context: FlushContext,
    ) -> int:
        now = context.now
        told = storage.told(conn, channel, [m.fingerprint for m in members])
        changed: list[TrackedAlert] = []
        ongoing: list[TrackedAlert] = []
        quietly_resolved: list[TrackedAlert] = []
        for member in members:
            if channel not in reach[member.fingerprint]:
                continue
            state = member.notify_state
            if state is None:
                continue
            previous = told.get(member.fingerprint)
            same_episode = previous is not None and previous["episode"] == member.episode
            if state == "resolved":
                # Only resolve what this channel was told is firing; a resolution passes
                # silences and inhibition so no incident is left open.
                if same_episode and previous is not None and previous["state"] != "resolved":
                    (changed if route.send_resolved else quietly_resolved).append(member)
                continue
            if member.suppressed or not route.announces(state):
                continue
            if same_episode and previous is not None and previous["state"] == state:
                ongoing.append(member)
            else:
                changed.append(member)
        repeat = False
        if not changed:
            due = [
                m
                for m in ongoing
                if (m.fingerprint, m.episode) not in context.acked
                and told[m.fingerprint]["sent_at"] + route.repeat_interval.total_seconds() <= now
            ]
            if not due:
                storage.record_told(conn, channel, quietly_resolved, now)
                return 0
            changed, repeat = due, True
            ongoing = [m for m in ongoing if m not in due]
        message = Message(
            kind="alert",
            created_at=now,
            alerts=[m.snapshot() for m in changed],
            ongoing=[m.snapshot() for m in ongoing],
            route_id=route.id,
            group_key=group["group_key"],
            group_labels=group_labels,
            repeat=repeat,
        )
        key = idempotency_key(
            channel, group["route_id"], group["group_key"], message.alerts, now if repeat else None
        )
        self._enqueue(conn, channel, message, key)
        storage.record_told(conn, channel, changed + quietly_resolved, now)
        return 1


def idempotency_key(
    channel: str,
    scope: str,
    subject: str,
    alerts: Sequence[AlertSnapshot],
    repeat_at: float | None = None,
    kind: str = "alert",
) -> str:
    """Same channel, group/fingerprint, states and episodes → same key → queued once."""
    parts = [kind, channel, scope, subject]
    # The episode's start time is part of its identity: episode counters restart
    # when housekeeping forgets an alert, start times do not repeat.
    parts += [
        f"{a.fingerprint}:{a.state}:{a.episode}:{a.active_since}"
        for a in sorted(alerts, key=lambda a: a.fingerprint)
    ]
    if repeat_at is not None:
        parts.append(f"repeat@{repeat_at:.3f}")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
