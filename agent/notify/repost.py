"""Re-posting to Alertmanager while an alert fires (see ``alertmanager``).

Alertmanager resolves an alert nobody re-posts within its ``resolve_timeout``; Stackwatch's
own reminders follow ``repeat_interval`` (hours) and stop on ack, so every beat the
``Reposter`` posts again each alert an Alertmanager destination's channel was told is
active (this episode, not yet resolved), once its ``resend`` interval has passed since
the last post. Acks and silences in Stackwatch do not stop it: the alert still fires.
Last posts are kept in memory; after a restart the first beat posts everything again,
which Alertmanager takes as a refresh.
"""

from __future__ import annotations

import structlog

from agent.clock import Clock
from agent.notify import storage
from agent.notify.alertmanager import SCHEMES, alerts_part, resend_interval
from agent.notify.channels import ChannelRegistry
from agent.notify.links import Links
from agent.store import Store

log = structlog.get_logger("agent.notify")


class Reposter:
    def __init__(self, store: Store, clock: Clock, channels: ChannelRegistry, links: Links):
        self.store = store
        self.clock = clock
        self.channels = channels
        self.links = links
        #: (destination id, fingerprint, episode) → when it was last posted there.
        self._posted: dict[tuple[str, str, int], float] = {}

    def run(self) -> int:
        """Post what is due; returns the number of alerts posted. Nothing is due before
        the channels are loaded (a daemon loads them just after it starts)."""
        if not self.channels.loaded:
            return 0
        channels = [
            (name, channel, targets)
            for name in self.channels.names()
            if (channel := self.channels.get(name)) is not None
            and (targets := [d for d in channel.destinations if d.scheme in SCHEMES])
        ]
        if not channels:
            return 0
        now = self.clock.now().timestamp()
        conn = self.store.connection()
        active = [alert for alert in storage.alerts(conn) if alert.active]
        posted = 0
        live: set[tuple[str, str, int]] = set()
        for name, channel, targets in channels:
            told = storage.told(conn, name, [alert.fingerprint for alert in active])
            known = [
                alert
                for alert in active
                if (row := told.get(alert.fingerprint)) is not None
                and row["episode"] == alert.episode
                and row["state"] != "resolved"
            ]
            for destination in targets:
                every = resend_interval(destination)
                due = []
                for alert in known:
                    key = (destination.id, alert.fingerprint, alert.episode)
                    live.add(key)
                    last = max(self._posted.get(key, 0.0), told[alert.fingerprint]["sent_at"])
                    if now - last >= every:
                        due.append(alert)
                if not due:
                    continue
                snapshots = [alert.snapshot() for alert in due]
                result = channel.send(
                    destination, alerts_part(destination, snapshots, self.links, now)
                )
                if not result.ok:
                    log.warning("alertmanager_repost_failed", channel=name, error=result.error)
                    continue
                for alert in due:
                    self._posted[(destination.id, alert.fingerprint, alert.episode)] = now
                posted += len(due)
        self._posted = {key: at for key, at in self._posted.items() if key in live}
        return posted
