"""A firing alert's summary tells today's value, not the value of the moment it fired."""

from __future__ import annotations

from pathlib import Path

from agent.evaluate.testing import run_test_file

RULE = """
[[rule]]
name = "cdn-5xx-volume"
summary = "{{ value | human }} CDN 5xx on {{ labels.stack_name | default(stack) }}"
[rule.query]
metric = "status_codes"
services = ["cdn"]
stacks = ["prod"]
window = "1m"
[rule.value]
function = "sum"
where = { status = "5xx" }
[rule.condition]
type = "threshold"
op = ">"
value = 10
"""

TESTS = """
rule_files = ["rule.toml"]
start = "2024-03-04T10:00:00Z"
evaluation_interval = "1m"
stacks = {{ prod = "blt_prod" }}

[[test]]
name = "{name}"
[[test.series]]
metric = "status_codes"
labels = {{ service = "cdn", status = "503", stack = "blt_prod" }}
values = "20x3 35x3"
[[test.expect]]
at = "2m"
rule = "cdn-5xx-volume"
alerts = [{{ state = "firing", annotations = {{ summary = "20 CDN 5xx on prod" }} }}]
[[test.expect]]
at = "5m"
rule = "cdn-5xx-volume"
alerts = [{{ state = "firing", annotations = {{ summary = "{later}" }} }}]
"""


def _run(tmp_path: Path, later: str) -> list[str]:
    (tmp_path / "rule.toml").write_text(RULE)
    (tmp_path / "rule.test.toml").write_text(TESTS.format(name="current value", later=later))
    return [
        failure
        for result in run_test_file(tmp_path / "rule.test.toml")
        for failure in result.failures
    ]


def test_the_summary_follows_the_value_while_firing(tmp_path: Path):
    assert _run(tmp_path, "35 CDN 5xx on prod") == []


def test_the_summary_of_the_firing_moment_is_not_kept(tmp_path: Path):
    (failure,) = _run(tmp_path, "20 CDN 5xx on prod")
    assert "35 CDN 5xx on prod" in failure
