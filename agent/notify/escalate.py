"""On-call escalation: tiers of channels added as an alert keeps firing unacknowledged.

An escalation is tracked per alert episode. Reaching a tier adds its channels to the
alert's channel set; the alert's groups are then flushed at once, so the new channels
get the alert (with the usual dedupe) and later its resolution. An ack stops it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from agent.notify import storage
from agent.notify.config import EscalationPolicyConfig
from agent.notify.state import TrackedAlert


class Escalations:
    def __init__(self, policies: Iterable[EscalationPolicyConfig]) -> None:
        self.policies = {policy.name: policy for policy in policies}

    def start(
        self, conn: sqlite3.Connection, alert: TrackedAlert, policy: str, started_at: float
    ) -> None:
        if policy not in self.policies:
            return
        storage.start_escalation(conn, alert.fingerprint, alert.episode, policy, started_at)

    def channels(self, conn: sqlite3.Connection, alert: TrackedAlert) -> list[str]:
        """Channels reached by the alert's escalation in its current episode."""
        row = storage.escalation(conn, alert.fingerprint, alert.episode)
        if row is None or row["policy"] not in self.policies:
            return []
        tiers = self.policies[row["policy"]].tiers
        found: list[str] = []
        for tier in tiers[: row["tier"] + 1]:
            found.extend(channel for channel in tier.channels if channel not in found)
        return found

    def advance(self, conn: sqlite3.Connection, now: float) -> list[str]:
        """Move unacknowledged firing escalations to the tiers their age reached.

        Returns the fingerprints whose tier changed.
        """
        rows = storage.running_escalations(conn)
        moved: list[str] = []
        for row in rows:
            policy = self.policies.get(row["policy"])
            if policy is None:
                continue
            elapsed = now - row["started_at"]
            reached = -1
            for index, tier in enumerate(policy.tiers):
                if tier.after.total_seconds() <= elapsed:
                    reached = index
            if reached > row["tier"]:
                storage.set_tier(conn, row["fingerprint"], row["episode"], reached)
                moved.append(row["fingerprint"])
        return moved

    def next_due(self, conn: sqlite3.Connection) -> float | None:
        """When the next tier of any running escalation falls due (epoch seconds)."""
        rows = storage.running_escalations(conn)
        due: list[float] = []
        for row in rows:
            policy = self.policies.get(row["policy"])
            if policy and row["tier"] + 1 < len(policy.tiers):
                due.append(row["started_at"] + policy.tiers[row["tier"] + 1].after.total_seconds())
        return min(due) if due else None
