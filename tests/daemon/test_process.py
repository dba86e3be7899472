"""The real ``stackwatch run`` process against the simulator over 127.0.0.1.

Time runs 60x for both (same origin and speed), so a 2-minute incident lasts 2 s. Each
incident begins once the daemon is ready, so a slow start on a busy machine cannot make
the daemon miss it; waits are generous bounds, not expectations of speed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.clock import shared_clock
from agent.simulator import Incident, Scenario, Simulator, Stack

from .support import (
    AUTHTOKEN,
    MOBILE,
    ORG,
    WEBSITE,
    DaemonProcess,
    WebhookReceiver,
    cdn_spike,
    ratio_rule,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.timeout(400)

SPEED = 60.0


def _simulator(origin: datetime) -> Simulator:
    scenario = Scenario(
        name="daemon-test",
        seed=7,
        stacks=[Stack(WEBSITE, "Website", 1.0), Stack(MOBILE, "Mobile", 0.5)],
    )
    return Simulator(
        scenario,
        clock=shared_clock(SPEED, origin),
        authtoken=AUTHTOKEN,
        organization_uid=ORG,
        job_duration=0.0,
    )


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def test_fire_reload_and_stop(tmp_path: Path, hook: WebhookReceiver) -> None:
    origin = datetime.now(UTC)
    with _simulator(origin) as sim:
        config = write_config(
            tmp_path, simulator_url=sim.url, hook_port=hook.port, origin=origin, speed=SPEED
        )
        rules = tmp_path / "rules"
        (rules / "errors.toml").write_text(
            ratio_rule("cdn-5xx", stack="Website", above=0.05, clear_below=0.02, for_="30s")
        )
        daemon = DaemonProcess(config)
        try:
            url = daemon.url
            wait_until(lambda: daemon.get("/readyz")[0] == 200, 60, "/readyz 200")
            wait_until(lambda: _cycles(daemon) >= 1, 60, "a first cycle")  # (ready before it)
            status, metrics = daemon.get("/metrics")
            assert status == 200
            assert b"stackwatch_evaluations_total" in metrics
            assert b'stackwatch_api_requests_total{endpoint="GET /analytics/v2/job/{id}/data"' in (
                metrics
            )
            assert daemon.get("/healthz")[0] == 200

            # a broken rule file: rejected, old rules keep running, meta-alert sent
            broken = rules / "broken.toml"
            broken.write_text('[[rule]]\nname = "oops"\n[rule.query]\nmetric = "nope"\n')
            daemon.signal(signal.SIGHUP)
            failed = daemon.wait_log("reload_failed", 30)
            assert any("broken.toml" in p for p in failed["problems"])
            wait_until(lambda: hook.matching("StackwatchConfigInvalid"), 30, "meta-alert post")
            evaluations = len(daemon.events("alert_transition")) + _cycles(daemon)
            wait_until(lambda: _cycles(daemon) > evaluations, 30, "old rules still evaluated")

            # a good new rule: added, the meta-alert resolves
            broken.unlink()
            (rules / "mobile.toml").write_text(
                ratio_rule("mobile-5xx", stack="Mobile", above=0.05, clear_below=0.02)
            )
            daemon.signal(signal.SIGHUP)
            ok = daemon.wait_log("reload_ok", 30)
            assert ok["rules"] == 2
            wait_until(
                lambda: any(a["rule"] == "mobile-5xx" for a in daemon.alerts()), 30, "new rule"
            )
            wait_until(lambda: len(hook.matching("StackwatchConfigInvalid")) >= 2, 30, "resolve")
            shown = subprocess.run(
                [sys.executable, "-m", "agent.cli", "status", "--config", str(config)],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            assert "daemon at http://127.0.0.1:" in shown.stderr
            assert shown.stdout.startswith(("STATE", "No alerts."))

            # the incident: fires, then resolves
            spike = _website_spike(sim)
            wait_until(lambda: hook.matching("cdn-5xx", "FIRING"), 120, "cdn-5xx firing post")
            sim.end_incident(spike)
            wait_until(lambda: hook.matching("cdn-5xx", "RESOLVED"), 120, "cdn-5xx resolved post")
            assert len(hook.matching("cdn-5xx", "FIRING")) == 1

            daemon.signal(signal.SIGTERM)
            assert daemon.proc.wait(30) == 0
            assert url.startswith("http://127.0.0.1:")
            # one stream of one format, libraries included; the beat never overlaps itself
            assert daemon.unparsed() == []
            assert not [e for e in daemon.events("run_skipped") if e["job"] == "notify-beat"]
        finally:
            if daemon.proc.poll() is None:
                daemon.kill()


def _website_spike(sim: Simulator, minutes: int = 60) -> Incident:
    """A CDN 5xx spike on the Website stack, starting now and lasting until the test ends it
    (``Simulator.end_incident``) once the daemon has seen it: however slow a busy machine
    makes the daemon, the spike is still there when it looks."""
    return cdn_spike(sim, WEBSITE, minutes)


def _cycles(daemon: DaemonProcess) -> int:
    _status, body = daemon.get("/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("stackwatch_evaluations_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def test_sigkill_restart_restores_state_without_duplicates(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    origin = datetime.now(UTC)
    clock = shared_clock(SPEED, origin)
    with _simulator(origin) as sim:
        config = write_config(
            tmp_path, simulator_url=sim.url, hook_port=hook.port, origin=origin, speed=SPEED
        )
        (tmp_path / "rules" / "rules.toml").write_text(
            ratio_rule("fast-5xx", stack="Website", above=0.05, clear_below=0.02)
            # always breached (most answers are 2xx), but only after an hour: stays pending
            + ratio_rule(
                "slow-2xx", stack="Mobile", above=0.5, clear_below=0.4, for_="1h", status="2xx"
            )
        )
        first = DaemonProcess(config)
        try:
            wait_until(lambda: first.get("/readyz")[0] == 200, 60, "/readyz 200")
            spike = _website_spike(sim)
            wait_until(lambda: hook.matching("fast-5xx", "FIRING"), 120, "fast-5xx firing post")
            pending = wait_until(
                lambda: [
                    a for a in first.alerts() if a["rule"] == "slow-2xx" and a["state"] == "pending"
                ],
                30,
                "slow-2xx pending",
            )
            pending_since = pending[0]["pending_since"]
            assert any(a["rule"] == "fast-5xx" and a["state"] == "firing" for a in first.alerts())
            first.kill()  # SIGKILL: no goodbye, no flush
        finally:
            if first.proc.poll() is None:
                first.kill()
        spike = sim.end_incident(spike)
        # stay down until the incident is over and out of the rule's window
        over = spike.window()[1] + timedelta(minutes=1, seconds=30)
        wait_until(lambda: clock.now() > over, 60, "the incident over and out of the window")
        second = DaemonProcess(config)
        try:
            restored = second.wait_log("state_restored", 60)
            assert restored["restored"] >= 2
            wait_until(lambda: hook.matching("fast-5xx", "RESOLVED"), 120, "resolved post")
            alerts = {a["rule"]: a for a in second.alerts()}
            assert alerts["slow-2xx"]["state"] == "pending"
            assert alerts["slow-2xx"]["pending_since"] == pending_since  # the timer went on
            assert alerts["fast-5xx"]["state"] == "resolved"
            time.sleep(0.5)  # a few more beats: nothing else may arrive
            assert len(hook.matching("fast-5xx", "FIRING")) == 1
            assert len(hook.matching("fast-5xx", "RESOLVED")) == 1
            assert second.stop() == 0
        finally:
            if second.proc.poll() is None:
                second.kill()
