"""Backtests over CSV series (NAB format) and over history through the engine."""

import json
from pathlib import Path

from agent.cli import main
from agent.evaluate.backtest import backtest_source
from agent.evaluate.planner import plan
from agent.evaluate.sources import MemorySource

from .helpers import MIN, T0, CountingSource, per_minute, rule

SERIES_RULE = """
[[rule]]
name = "high"
for = "10m"
[rule.query]
metric = "series"
[rule.condition]
type = "threshold"
op = ">"
value = 50
[rule.clear]
op = "<"
value = 20
"""


ERRORS_RULE = """
name = "errors"
[query]
metric = "status_codes"
services = ["cdn"]
window = "3m"
[value]
function = "ratio"
numerator = { status = "5xx" }
[condition]
type = "threshold"
op = ">"
value = 0.2
"""


def write_csv(path: Path, values: list[float]) -> Path:
    lines = ["timestamp,value"] + [
        f"2014-04-01 {i // 12:02d}:{i % 12 * 5:02d}:00,{v}" for i, v in enumerate(values)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_backtest_prints_each_transition_at_its_row(tmp_path, capsys):
    rules = tmp_path / "rule.toml"
    rules.write_text(SERIES_RULE)
    csv = write_csv(tmp_path / "a.csv", [10] * 5 + [60] * 4 + [30] * 2 + [10] * 3)
    assert main(["backtest", "--rules", str(rules), "--csv", str(csv), "--format", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["state"], x["at"], x["value"]) for x in lines] == [
        ("pending", "2014-04-01T00:25:00", 60.0),
        ("firing", "2014-04-01T00:35:00", 60.0),
        ("resolved", "2014-04-01T00:55:00", 10.0),
    ]
    assert all(x["series"] == str(csv) and x["rule"] == "high" for x in lines)


def test_csv_backtest_over_several_files_names_each_series(tmp_path, capsys):
    rules = tmp_path / "rule.toml"
    rules.write_text(SERIES_RULE.replace('for = "10m"', 'for = "0s"'))
    first = write_csv(tmp_path / "one.csv", [60, 10])
    second = write_csv(tmp_path / "two.csv", [10, 10, 60])
    args = ["backtest", "--rules", str(rules), "--csv", str(first), "--csv", str(second)]
    assert main(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["series"], x["state"]) for x in lines] == [
        (str(first), "firing"),
        (str(first), "resolved"),
        (str(second), "firing"),
    ]


def test_bad_csv_row_is_a_clear_error(tmp_path, capsys):
    rules = tmp_path / "rule.toml"
    rules.write_text(SERIES_RULE)
    csv = tmp_path / "bad.csv"
    csv.write_text("timestamp,value\n2014-04-01 00:00:00,1\nyesterday,2\n")
    assert main(["backtest", "--rules", str(rules), "--csv", str(csv)]) == 1
    err = capsys.readouterr().err
    assert f"{csv}:3: cannot read" in err and "Traceback" not in err


def test_history_backtest_replays_the_engine_over_fetched_rows():
    labels = {"service": "cdn"}
    rows = per_minute("http-statuses", {**labels, "status": "200"}, [100] * 60)
    rows += per_minute(
        "http-statuses", {**labels, "status": "500"}, [0] * 20 + [100] * 10 + [0] * 30
    )
    transitions = list(
        backtest_source([rule(ERRORS_RULE)], MemorySource(rows), T0 + 5 * MIN, T0 + 50 * MIN, MIN)
    )
    assert [(t["state"], t["at"]) for t in transitions] == [
        ("firing", (T0 + 21 * MIN).isoformat()),
        ("resolved", (T0 + 33 * MIN).isoformat()),
    ]


def test_history_backtest_merges_only_new_rows_and_judges_as_a_full_refetch():
    """MemorySource answers a batch like the live API: rows the engine holds already are
    left out. The replay must equal one that is handed the whole day at every cycle."""
    labels = {"service": "cdn"}
    minutes = 36 * 60  # from noon across midnight: two days of queries
    errors = [100 if 700 <= i < 760 or 1300 <= i < 1310 else 0 for i in range(minutes)]
    rows = per_minute("http-statuses", {**labels, "status": "200"}, [100] * minutes)
    rows += per_minute("http-statuses", {**labels, "status": "500"}, errors)
    memory = MemorySource(rows)
    query = plan([rule(ERRORS_RULE)], T0 + 13 * 60 * MIN).requests[0]
    newer = T0 + 12 * 60 * MIN
    batch = memory.fetch_many([query], {query: newer})[query]
    assert isinstance(batch, list) and batch
    assert min(row.at for row in batch) == newer
    assert sorted(map(id, batch)) == sorted(id(r) for r in memory.fetch(query) if r.at >= newer)

    start, end = T0 + 10 * MIN, T0 + (minutes - 10) * MIN
    batched = list(backtest_source([rule(ERRORS_RULE)], memory, start, end, MIN))
    whole = list(backtest_source([rule(ERRORS_RULE)], CountingSource(memory), start, end, MIN))
    assert [t["state"] for t in batched] == ["firing", "resolved"] * 2
    assert batched == whole
