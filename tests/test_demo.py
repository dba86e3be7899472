"""`stackwatch demo` as a newcomer runs it: alerts fire and resolve, printed in the terminal."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_demo_fires_and_resolves_the_cdn_spike_through_apprise(tmp_path):
    # From an empty directory, as an installed tool runs; the duration is only a bound:
    # the demo ends by itself once its incidents are over and every alert has cleared.
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "demo", "--duration", "150", "--speed", "180"],
        capture_output=True,
        text=True,
        timeout=200,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    firing = [line for line in lines if "[FIRING" in line and "cdn-5xx-share" in line]
    resolved = [line for line in lines if "[RESOLVED]" in line and "cdn-5xx-share" in line]
    assert firing and resolved, result.stdout
    assert lines.index(firing[0]) < lines.index(resolved[0])
    assert "on stack Website" in firing[0]
    assert "Traceback" not in result.stderr
    # remediation: the cache-hit drop runs the purge automation by its trigger; the failing
    # automation is disabled, then re-enabled on resolve; each with its verification
    purge = [line for line in lines if "ran automation Purge CDN cache through its HTTP" in line]
    assert len(purge) == 1 and ": success." in purge[0], result.stdout
    disabled = [
        line for line in lines if "Stackwatch disabled automation Notify on publish" in line
    ]
    enabled = [
        line for line in lines if "Stackwatch re-enabled automation Notify on publish" in line
    ]
    assert len(disabled) == len(enabled) == 1, result.stdout
    assert "reads back inactive" in disabled[0] and "reads back active" in enabled[0]
    assert lines.index(disabled[0]) < lines.index(enabled[0])
    assert lines[-2] == "The scenario's incidents are over and every alert has cleared."
    assert lines[-1].startswith("Demo over:")


def test_demo_with_a_missing_config_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "demo", "--config", str(tmp_path / "none.toml")],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert "config file not found" in result.stderr and "Traceback" not in result.stderr
