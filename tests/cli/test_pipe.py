"""Output piped into a reader that stops early (``stackwatch backtest … | head``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RULE = """
[[rule]]
name = "high"
[rule.query]
metric = "series"
[rule.condition]
type = "threshold"
op = ">"
value = 50
"""


def test_a_reader_that_stops_early_ends_the_command_without_a_traceback(tmp_path: Path) -> None:
    rules = tmp_path / "rule.toml"
    rules.write_text(RULE)
    # Every other row crosses the threshold: far more transitions than a pipe buffers.
    rows = [f"2014-04-{1 + i // 288:02d} {i % 288 // 12:02d}:{i % 12 * 5:02d}:00,{60 * (i % 2)}"
            for i in range(20 * 288)]  # fmt: skip
    csv = tmp_path / "series.csv"
    csv.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    command = [sys.executable, "-m", "agent.cli", "backtest", "--rules", str(rules)]
    process = subprocess.Popen(
        [*command, "--csv", str(csv), "--format", "jsonl"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # the reader has what it wanted
    errors = process.stderr.read()
    assert process.wait(timeout=60) == 141
    assert '"rule": "high"' in first
    assert errors == ""
