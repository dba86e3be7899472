"""``stackwatch simulate`` hooks."""

from __future__ import annotations

import httpx
import pytest

from agent.simulator import cli
from tests.simulator.helpers import simulate_args, simulate_running


def test_defaults() -> None:
    args = simulate_args()
    assert (args.scenario, args.host, args.port, args.speed) == ("demo", "127.0.0.1", 8750, 1.0)
    assert args.job_duration == 2.0 and args.organization_uid


def test_run_serves_until_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("--port", "0", "--speed", "60", "--authtoken", "T", "--organization-uid", "O")
    with simulate_running(capsys, *argv) as (url, output):
        assert "authtoken" in output and " T" in output and "O" in output
        response = httpx.get(
            f"{url}/v1/projects", headers={"authtoken": "T", "organization_uid": "O"}
        )
        assert response.status_code == 200


def test_run_reports_a_bad_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(simulate_args("--scenario", "/does/not/exist.toml")) == 2
    assert "stackwatch simulate" in capsys.readouterr().err
