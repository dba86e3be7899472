"""The daemon's Prometheus metrics, on a registry of its own.

Its own registry: ``/metrics`` then shows exactly the daemon's series, and tests can
build several daemons in one process without "duplicated timeseries" errors.
"""

from __future__ import annotations

import collections
import threading
import typing
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from agent.collect.health import normalise_endpoint

if typing.TYPE_CHECKING:
    from agent.notify import DeliveryReport

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "normalise_endpoint"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.evaluations = Counter(
            "stackwatch_evaluations", "Rule-group evaluations", ["group", "outcome"], registry=r
        )
        self.evaluation_seconds = Histogram(
            "stackwatch_evaluation_duration_seconds",
            "Wall time of one rule-group evaluation",
            ["group"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.job_wait_seconds = Histogram(
            "stackwatch_job_wait_seconds",
            "Delay between a job's scheduled time and its start",
            ["group"],
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60),
            registry=r,
        )
        self.api_requests = Counter(
            "stackwatch_api_requests",
            "Contentstack API answers by endpoint and status (0: no answer)",
            ["endpoint", "status"],
            registry=r,
        )
        self.api_rate_limited = Counter(
            "stackwatch_api_rate_limited", "HTTP 429 answers from Contentstack", registry=r
        )
        self.alerts = Gauge("stackwatch_alerts", "Alert instances by state", ["state"], registry=r)
        self.notifications_sent = Counter(
            "stackwatch_notifications_sent", "Outbox rows delivered", registry=r
        )
        self.notifications_failed = Counter(
            "stackwatch_notifications_failed",
            "Outbox delivery attempts that failed",
            ["outcome"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "stackwatch_outbox_depth", "Outbox rows by status", ["status"], registry=r
        )
        self.remediation_actions = Counter(
            "stackwatch_remediation_actions",
            "Remediation actions by action and outcome",
            ["action", "outcome"],
            registry=r,
        )
        self.reloads = Counter(
            "stackwatch_config_reloads", "SIGHUP reloads by outcome", ["outcome"], registry=r
        )
        self.ready = Gauge(
            "stackwatch_ready",
            "1 once started, unless every group that ran lost the source",
            registry=r,
        )
        self._counts: dict[str, Mapping[str, int]] = {}
        self._counts_lock = threading.Lock()

    def observe_api(self, endpoint: str, status: int) -> None:
        self.api_requests.labels(normalise_endpoint(endpoint), str(status)).inc()
        if status == 429:
            self.api_rate_limited.inc()

    def observe_remediation(self, action: str, outcome: str) -> None:
        self.remediation_actions.labels(action, outcome).inc()

    def observe_wait(self, group: str, seconds: float) -> None:
        self.job_wait_seconds.labels(group).observe(seconds)

    def record_cycle(self, group: str, seconds: float, *, errors: bool) -> None:
        self.evaluation_seconds.labels(group).observe(seconds)
        self.evaluations.labels(group, "error" if errors else "ok").inc()

    def set_group_counts(self, job_id: str, counts: Mapping[str, int]) -> None:
        """One rule group's alert instances by state; the gauge shows the sum of all."""
        with self._counts_lock:
            self._counts[job_id] = counts
            total: collections.Counter[str] = collections.Counter()
            for part in self._counts.values():
                total.update(part)
        self.set_alert_counts(total)

    def set_alert_counts(self, counts: Mapping[str, int]) -> None:
        for state in ("inactive", "pending", "firing", "resolved", "nodata", "error"):
            self.alerts.labels(state).set(counts.get(state, 0))

    def record_delivery(self, report: DeliveryReport, outbox: Mapping[str, int]) -> None:
        self.notifications_sent.inc(report.delivered)
        if report.retrying:
            self.notifications_failed.labels("retrying").inc(report.retrying)
        if report.dead:
            self.notifications_failed.labels("dead").inc(report.dead)
        self.set_outbox(outbox)

    def set_outbox(self, counts: Mapping[str, int]) -> None:
        for status in ("pending", "delivered", "dead"):
            self.outbox_depth.labels(status).set(counts.get(status, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
