"""``stackwatch check`` as its own process: it leaves without the interpreter's teardown,
and what it printed must still all arrive, with its exit code."""

from __future__ import annotations

import subprocess
import sys

from bench.rulemix import write_setup


def _check(config) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_valid_setup_is_reported_ok_with_exit_code_0(tmp_path) -> None:
    result = _check(write_setup(tmp_path, 30, 2))
    assert result.returncode == 0
    assert result.stdout == "OK: config valid, 30 rules in 1 files\n"


def test_every_problem_reaches_stderr_with_exit_code_2(tmp_path) -> None:
    config = write_setup(tmp_path, 30, 2)
    rules = tmp_path / "rules" / "bench.toml"
    text = rules.read_text()
    broken = text.replace('window = "', 'window = "-', 3)  # three rules, each a problem
    rules.write_text(broken)
    result = _check(config)
    assert result.returncode == 2
    problems = result.stderr.splitlines()
    assert len(problems) == 3
    assert all(line.startswith(f"{rules}:") and ".window:" in line for line in problems)
