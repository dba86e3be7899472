"""The real daemon with its webhook down past the outbox's maximum age: each queued
notification becomes a dead letter with a log line and a metric, the channel's meta-alert
reaches the channel that still works (once), and resolves when the webhook is back.

The in-process cases (several alerts, order per alert, 503 and connection refused) are
``tests/notify/test_channel_outage.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.notify.undeliverable import UNDELIVERABLE

from .support import (
    MOBILE,
    WEBSITE,
    DaemonProcess,
    WebhookReceiver,
    cdn_spike,
    ratio_rule,
    wait_until,
    write_config,
)
from .test_process import SPEED, _simulator

pytestmark = pytest.mark.timeout(200)


def _ops(port: int) -> str:
    return f"""
[notify.outbox]
retry_initial = "10s"
retry_max = "30s"
dead_letter_after = "2m"
dead_letter_channel = "ops"

[[notify.channels]]
name = "ops"
urls = ["json://127.0.0.1:{port}/"]

[[notify.route.routes]]
match = {{ alertname = "{UNDELIVERABLE}" }}
channels = ["ops"]
"""


def test_dead_letters_of_a_channel_down_fire_its_meta_alert(tmp_path: Path) -> None:
    origin = datetime.now(UTC)
    with _simulator(origin) as sim, WebhookReceiver() as hook, WebhookReceiver() as ops:
        config = write_config(
            tmp_path,
            simulator_url=sim.url,
            hook_port=hook.port,
            origin=origin,
            speed=SPEED,
            extra=_ops(ops.port),
        )
        (tmp_path / "rules" / "errors.toml").write_text(
            ratio_rule("web-5xx", stack="Website", above=0.05, clear_below=0.02)
            + ratio_rule("mobile-5xx", stack="Mobile", above=0.05, clear_below=0.02)
        )
        daemon = DaemonProcess(config)
        try:
            wait_until(lambda: daemon.get("/readyz")[0] == 200, 60, "/readyz 200")
            hook.mode = "fail"
            spikes = [cdn_spike(sim, WEBSITE), cdn_spike(sim, MOBILE)]
            dead = daemon.wait_log("notification_dead_letter", 60, count=2)
            assert dead["channel"] == "hook" and dead["level"] == "error"
            wait_until(lambda: ops.matching(f"[FIRING:1] {UNDELIVERABLE}"), 30, "meta-alert")
            # counted once the beat that gave up returns, which may be after the meta-alert left
            dead_counted = b'stackwatch_notifications_failed_total{outcome="dead"} 2.0'
            wait_until(lambda: dead_counted in daemon.get("/metrics")[1], 30, "dead counted")
            assert len(ops.matching("notification undeliverable")) == 2
            assert hook.posts == [] and hook.failed >= 4  # retried before it gave up

            hook.mode = "ok"
            for incident in spikes:
                sim.end_incident(incident)
            wait_until(lambda: len(hook.matching("[RESOLVED]")) == 2, 120, "resolutions")
            wait_until(lambda: ops.matching(f"[RESOLVED] {UNDELIVERABLE}"), 30, "meta resolved")
            assert len(ops.matching(f"[FIRING:1] {UNDELIVERABLE}")) == 1
            assert not hook.matching("[FIRING")  # the dead stay dead
            assert daemon.stop() == 0
        finally:
            if daemon.proc.poll() is None:
                daemon.kill()
