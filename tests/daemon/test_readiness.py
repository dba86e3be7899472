"""Readiness does not wait for a slow rule group: the real ``stackwatch run`` process is
ready once started, while its only group's Analytics jobs never finish; it stops being
ready when every group that ran lost the source, and is ready again once one reaches it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.simulator import Fault

from .support import DaemonProcess, WebhookReceiver, ratio_rule, wait_until, write_config
from .test_process import SPEED, _cycles, _simulator

pytestmark = pytest.mark.timeout(300)


def test_ready_before_the_first_group_finishes(tmp_path: Path) -> None:
    origin = datetime.now(UTC)
    with _simulator(origin) as sim, WebhookReceiver() as hook:
        config = write_config(
            tmp_path, simulator_url=sim.url, hook_port=hook.port, origin=origin, speed=SPEED
        )
        # a stuck job holds its cycle for 5 s of real time (polling runs in real time)
        config.write_text(
            config.read_text().replace("max_retries = 1", 'max_retries = 1\njob_timeout = "5s"')
        )
        (tmp_path / "rules" / "errors.toml").write_text(
            ratio_rule("cdn-5xx", stack="Website", above=0.05, clear_below=0.02)
        )
        sim.add_fault(Fault("job_never_finishes"))
        daemon = DaemonProcess(config)
        try:
            wait_until(lambda: daemon.get("/readyz")[0] == 200, 60, "/readyz 200")
            assert _cycles(daemon) == 0  # no group has finished a cycle yet
            assert not daemon.events("evaluation_crashed")

            # every group that ran lost the source: not ready; one reaches it: ready again
            sim.clear_faults()
            sim.add_fault(Fault("http_status", status=503))
            wait_until(lambda: daemon.get("/readyz")[0] == 503, 90, "/readyz 503")
            sim.clear_faults()
            wait_until(lambda: daemon.get("/readyz")[0] == 200, 90, "/readyz 200 again")
        finally:
            assert daemon.stop() == 0
