"""The shipped example rules pass their own unit tests through the real CLI."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_stackwatch_test_rules_passes_on_the_shipped_rules():
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "test-rules", str(REPO / "rules")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    passed, failed = (int(part.split()[0]) for part in last.split(", "))
    assert failed == 0 and passed >= 9


def test_a_failing_rule_test_exits_non_zero_with_a_diff(tmp_path):
    rules = tmp_path / "r.toml"
    rules.write_text(
        '[[rule]]\nname = "r"\n[rule.query]\nmetric = "usage"\n'
        '[rule.value]\nfunction = "sum"\nfield = "total_api_count"\n'
        '[rule.condition]\ntype = "threshold"\nop = ">"\nvalue = 10\n'
    )
    test = tmp_path / "r.test.toml"
    test.write_text(
        'rule_files = ["r.toml"]\n[[test]]\nname = "wrong on purpose"\n'
        '[[test.series]]\nmetric = "usage"\nfield = "total_api_count"\nvalues = "50x10"\n'
        '[[test.expect]]\nat = "5m"\nrule = "r"\nalerts = []\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "test-rules", str(test)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 1
    assert "FAIL" in result.stdout and '+ got:      firing {alertname="r"' in result.stdout
    assert result.stdout.strip().endswith("0 passed, 1 failed")
