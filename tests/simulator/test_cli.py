"""``stackwatch simulate`` hooks."""

from __future__ import annotations

import argparse
import threading
import time

import httpx
import pytest

from agent.simulator import cli


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults() -> None:
    args = _args()
    assert (args.scenario, args.host, args.port, args.speed) == ("demo", "127.0.0.1", 8750, 1.0)
    assert args.job_duration == 2.0 and args.organization_uid


def test_run_serves_until_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    args = _args("--port", "0", "--speed", "60", "--authtoken", "T", "--organization-uid", "O")
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(cli.run(args, stop=stop)))
    thread.start()
    try:
        output = ""
        deadline = time.monotonic() + 30
        while "Ctrl-C" not in output and time.monotonic() < deadline:
            time.sleep(0.01)
            output += capsys.readouterr().out
        url = next(word for word in output.split() if word.startswith("http://127.0.0.1:"))
        assert "authtoken" in output and " T" in output and "O" in output
        response = httpx.get(
            f"{url}/v1/projects", headers={"authtoken": "T", "organization_uid": "O"}
        )
        assert response.status_code == 200
    finally:
        stop.set()
        thread.join(5)
    assert result == [0]


def test_run_reports_a_bad_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(_args("--scenario", "/does/not/exist.toml")) == 2
    assert "stackwatch simulate" in capsys.readouterr().err
