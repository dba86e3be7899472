"""A rule on every metric evaluates against the simulator without an error."""

import json

from agent.cli import main

from .conftest import write_config

TEMPLATE = """
[[rule]]
name = "{name}"
[rule.query]
metric = "{metric}"
{services}
window = "{window}"
granularity = "{granularity}"
[rule.value]
function = "{function}"
field = "{field}"
[rule.condition]
type = "threshold"
op = ">"
value = 1e12
"""

CASES = [
    ("status", "status_codes", 'services = ["cdn"]', "10m", "minute", "count", "count"),
    ("cache", "cache", 'services = ["cdn"]', "10m", "minute", "count", "count"),
    ("usage", "usage", "", "1d", "day", "sum", "total_cdn_bandwidth"),
    ("devices", "devices", 'services = ["cdn"]', "1d", "day", "count", "count"),
    ("sdk", "sdk", 'services = ["cdn"]', "1d", "day", "count", "count"),
    ("urls", "top_urls", "", "1d", "day", "count", "count"),
    ("executions", "executions", "", "1d", "minute", "count", "count"),
]


def test_every_metric_is_fetched_and_evaluated(tmp_path, simulator, capsys):
    rules = "\n".join(
        TEMPLATE.format(
            name=name,
            metric=metric,
            services=services,
            window=window,
            granularity=granularity,
            function=function,
            field=field,
        ).replace(
            'granularity = "minute"\n', "" if metric == "executions" else 'granularity = "minute"\n'
        )
        for name, metric, services, window, granularity, function, field in CASES
    )
    config = write_config(tmp_path, simulator, rules=rules)
    code = main(["once", "--config", str(config), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["rule"] for r in rows} == {case[0] for case in CASES}
    assert all(r["state"] == "inactive" and r["error"] is None for r in rows), rows
    assert all(r["value"] is not None and r["value"] > 0 for r in rows), rows
    assert "warning" not in err
