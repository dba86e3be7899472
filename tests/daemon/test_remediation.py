"""The real daemon remediates: an action due survives a SIGKILL and runs exactly once.

The simulator and the daemon share one clock running 60x; the action waits 3 simulated
minutes after the alert fires (``when = "firing_for"``), so the daemon is killed with the
action due but not run, and the restarted daemon runs it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.clock import shared_clock
from agent.simulator import Scenario, Simulator, Stack

from .support import (
    AUTHTOKEN,
    MOBILE,
    ORG,
    WEBSITE,
    DaemonProcess,
    WebhookReceiver,
    cdn_spike,
    purge_remediation,
    ratio_rule,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.timeout(180)

SPEED = 60.0
TRIGGER = "/automations-api/run/purge-cache"


def test_action_due_at_sigkill_runs_exactly_once_after_restart(tmp_path: Path) -> None:
    origin = datetime.now(UTC)
    scenario = Scenario(
        name="remediation", seed=3, stacks=[Stack(WEBSITE, "Website"), Stack(MOBILE, "Mobile")]
    )
    with (
        Simulator(
            scenario,
            clock=shared_clock(SPEED, origin),
            authtoken=AUTHTOKEN,
            organization_uid=ORG,
            job_duration=0.0,
        ) as sim,
        WebhookReceiver() as hook,
    ):
        config = write_config(
            tmp_path, simulator_url=sim.url, hook_port=hook.port, origin=origin, speed=SPEED
        )
        (tmp_path / "purge.key").write_text("purge-secret\n")
        with config.open("a") as file:
            file.write(
                purge_remediation(
                    'http_key_file = "purge.key"', 'when = "firing_for"', 'after = "3m"'
                )
            )
        rule = ratio_rule("cdn-5xx", stack="Website", above=0.05, clear_below=0.02)
        rule = rule.replace("\n[rule.query]", 'actions = ["purge"]\n\n[rule.query]', 1)
        (tmp_path / "rules" / "errors.toml").write_text(rule)

        first = DaemonProcess(config)
        try:
            wait_until(lambda: first.get("/readyz")[0] == 200, 60, "/readyz 200")
            cdn_spike(sim, WEBSITE, minutes=30)
            due = first.wait_log("remediation_due", 60)
            assert due["action"] == "purge"
            first.kill()  # SIGKILL with the action due and not yet run
        finally:
            if first.proc.poll() is None:
                first.kill()
        assert not [r for r in sim.requests if r.path == TRIGGER]

        second = DaemonProcess(config)
        try:
            done = second.wait_log("remediation_action", 60, count=2)  # attempted, succeeded
            assert (done["outcome"], done["detail"]["execution_status"]) == ("succeeded", "success")
            wait_until(
                lambda: hook.matching("Stackwatch ran automation Purge CDN cache"), 30, "notice"
            )
            # the firing notice went out before the notice (one alert's rows keep their
            # order); twice at most, if the kill cut its delivery, then with one key
            firing = hook.keys_of("[FIRING:1] cdn-5xx")
            assert 1 <= len(firing) <= 2 and len(set(firing)) == 1
            status, body = second.get("/api/v1/audit?action=purge")
            assert status == 200
            trails = json.loads(body)
            assert "started" in [row["action"] for row in trails["audit"]]  # the operators' trail
            actions = trails["actions"]
            assert [a["outcome"] for a in actions] == ["succeeded", "attempted"]
            _status, metrics = second.get("/metrics")
            assert (
                b'stackwatch_remediation_actions_total{action="purge",outcome="succeeded"} 1.0'
                in metrics
            )
            assert second.stop() == 0
        finally:
            if second.proc.poll() is None:
                second.kill()
        triggers = [r for r in sim.requests if r.path == TRIGGER]
        assert len(triggers) == 1  # exactly once, across the crash
        assert triggers[0].headers["ah-http-key"] == "purge-secret"
        assert not [r for r in sim.requests if r.method == "PATCH"]
        assert len(second.events("remediation_action")) == 2
